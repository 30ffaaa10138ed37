//! The store in PostgreSQL (`--database postgres://…`): the same rows as
//! SQLite's, in a server that outlives and is shared beyond one machine.
//!
//! One tether-cloud holds a database at a time (a session advisory lock,
//! taken at start): replicas that share one, each keeping the others'
//! changes in view, are the next step, and until then a second server on
//! the same database is refused rather than allowed to overwrite the
//! first's writes with its own stale copy.
//!
//! Everything here runs on the store's writer thread, on a runtime of its
//! own: the requests never wait on the database, only on their commit.

use super::Backend;
use crate::model::{Model, Row};
use anyhow::{Context, Result};
use std::collections::HashMap;

/// The advisory lock a tether-cloud holds on its database ("tether").
const LOCK_KEY: i64 = 0x0000_7465_7468_6572;

/// The schema's versions, each the statements that bring the one before it
/// forward (`tether_schema` records how far a database has come).
const MIGRATIONS: &[&str] = &[
    // 1: one row per entry of the model, its JSON as it serializes.
    "CREATE TABLE tether_rows (
        tbl TEXT NOT NULL,
        key TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (tbl, key)
    );",
];

pub(crate) struct Postgres {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Postgres {
    /// Connects to `url`, takes the database for this server and brings its
    /// schema forward.
    pub fn open(url: &str) -> Result<Self> {
        let shown = redacted(url);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (client, connection) = runtime
            .block_on(tokio_postgres::connect(url, tokio_postgres::NoTls))
            .with_context(|| format!("could not connect to PostgreSQL at {shown}"))?;
        runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!("the PostgreSQL connection ended: {e}");
            }
        });
        let store = Self { runtime, client };
        let held: bool = store
            .runtime
            .block_on(
                store
                    .client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY]),
            )?
            .get(0);
        anyhow::ensure!(
            held,
            "the database at {shown} is in use by another tether-cloud; stop it, or give this one another --database (replicas sharing one are not supported yet)"
        );
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<()> {
        self.runtime.block_on(async {
            self.client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS tether_schema (version INTEGER NOT NULL);",
                )
                .await?;
            let version: i32 = self
                .client
                .query_opt("SELECT version FROM tether_schema", &[])
                .await?
                .map_or(0, |row| row.get(0));
            let version = usize::try_from(version).unwrap_or(usize::MAX);
            anyhow::ensure!(
                version <= MIGRATIONS.len(),
                "the database has schema {version}, newer than this tether-cloud's ({}); run a newer tether-cloud, or give this one another --database",
                MIGRATIONS.len()
            );
            for (i, step) in MIGRATIONS.iter().enumerate().skip(version) {
                let next = i32::try_from(i + 1)?;
                let script = format!(
                    "BEGIN; {step} DELETE FROM tether_schema; INSERT INTO tether_schema VALUES ({next}); COMMIT;"
                );
                self.client
                    .batch_execute(&script)
                    .await
                    .with_context(|| format!("could not bring the database to schema {next}"))?;
            }
            Ok(())
        })
    }
}

impl Backend for Postgres {
    fn load(&mut self) -> Result<Vec<Row>> {
        let rows = self.runtime.block_on(
            self.client
                .query("SELECT tbl, key, doc FROM tether_rows", &[]),
        )?;
        rows.into_iter()
            .map(|row| {
                let table: String = row.get(0);
                Ok(Row {
                    table: Model::table_name(&table).with_context(|| {
                        format!("the state has a table `{table}` this tether-cloud does not know; run a newer tether-cloud")
                    })?,
                    key: row.get(1),
                    doc: Some(row.get(2)),
                })
            })
            .collect()
    }

    fn commit(&mut self, rows: &[Row]) -> Result<()> {
        // The last write of each key is the one that counts; one statement
        // puts them and one removes them (two round trips a batch, however
        // large).
        let mut last: HashMap<(&str, &str), Option<&str>> = HashMap::new();
        for row in rows {
            last.insert((row.table, &row.key), row.doc.as_deref());
        }
        let (mut put_tables, mut put_keys, mut put_docs) = (Vec::new(), Vec::new(), Vec::new());
        let (mut gone_tables, mut gone_keys) = (Vec::new(), Vec::new());
        for ((table, key), doc) in last {
            match doc {
                Some(doc) => {
                    put_tables.push(table);
                    put_keys.push(key);
                    put_docs.push(doc);
                }
                None => {
                    gone_tables.push(table);
                    gone_keys.push(key);
                }
            }
        }
        let client = &mut self.client;
        self.runtime.block_on(async move {
            let tx = client.transaction().await?;
            if !put_keys.is_empty() {
                tx.execute(
                    "INSERT INTO tether_rows (tbl, key, doc)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                     ON CONFLICT (tbl, key) DO UPDATE SET doc = excluded.doc",
                    &[&put_tables, &put_keys, &put_docs],
                )
                .await?;
            }
            if !gone_keys.is_empty() {
                tx.execute(
                    "DELETE FROM tether_rows
                     WHERE (tbl, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                    &[&gone_tables, &gone_keys],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// `url` without its password, for messages and logs.
pub(crate) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "the --database URL (which is not a valid URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_a_message() {
        let shown = redacted("postgres://tether:s3cret@127.0.0.1:5432/cloud");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("127.0.0.1:5432/cloud"), "{shown}");
        assert!(!redacted("not a url s3cret").contains("s3cret"));
    }
}
