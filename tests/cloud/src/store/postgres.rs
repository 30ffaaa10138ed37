//! The store in PostgreSQL (`--database postgres://…`): the same rows as
//! SQLite's, in a server several tether-cloud replicas share.
//!
//! Each row carries the revision that last wrote it (one sequence, drawn
//! only under a transaction-scoped advisory lock, so revisions become
//! visible in the order they were drawn) and which server wrote it; a
//! removal leaves a tombstone, so the others learn of it. A replica keeps
//! the model in memory as SQLite's server does, and before each request
//! reads the rows written since the last revision it saw ([`Replica`]).
//! A write says which revision of each row it was made on; if another
//! replica wrote the row since, the write is refused whole (the request
//! answers 409), its rows are read back from the database, and any later
//! write of this server made on top of it is refused too. Concurrent
//! changes to one resource through two replicas therefore never overwrite
//! each other unseen; different resources never conflict.
//!
//! The database work runs on the store's writer thread, on a runtime of its
//! own; the catch-up runs on the server's runtime, on a connection of its
//! own.

use super::{Backend, Shared, Write};
use crate::model::{Model, Row};
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The advisory lock writers take for each transaction ("tether").
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
    // 2: revisions, writers and tombstones, for replicas sharing it.
    "ALTER TABLE tether_rows ALTER COLUMN doc DROP NOT NULL;
     ALTER TABLE tether_rows ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
     ALTER TABLE tether_rows ADD COLUMN writer TEXT NOT NULL DEFAULT '';
     CREATE SEQUENCE tether_rev;
     CREATE INDEX tether_rows_by_rev ON tether_rows (rev);",
];

/// A row's identity: its table and key.
type RowKey = (String, String);

/// Rows written, with the revisions they were given.
type Written = Vec<(RowKey, i64)>;

/// What this server knows of the database beside its model.
#[derive(Default)]
struct Known {
    /// The revision of each row as the model holds it.
    revs: HashMap<RowKey, i64>,
    /// Rows this server has written and not yet committed, with how many
    /// writes: another server's version of them is not taken in meanwhile
    /// (the commit will find it and refuse the write).
    pending: HashMap<RowKey, u32>,
    /// The newest revision read.
    last_rev: i64,
    /// Rows whose local changes were refused, and the number of the last
    /// write made before they were read back: a write up to that number
    /// touching them was made on the refused one, and is refused too.
    tainted: HashSet<RowKey>,
    tainted_through: u64,
}

/// This server's view of a database it shares with other replicas.
pub(crate) struct Replica {
    url: String,
    /// Who this server is, in the rows it writes (new at every start).
    me: String,
    known: Mutex<Known>,
    feed: tokio::sync::Mutex<Feed>,
}

#[derive(Default)]
struct Feed {
    client: Option<tokio_postgres::Client>,
    /// When the last catch-up that completed had started.
    last_started: Option<Instant>,
}

impl Replica {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            me: crate::util::guid(),
            known: Mutex::new(Known::default()),
            feed: tokio::sync::Mutex::new(Feed::default()),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes rows this server has just written (under the model's lock).
    pub fn pending(&self, rows: &[Row]) {
        let mut known = self.known();
        for row in rows {
            *known
                .pending
                .entry((row.table.to_string(), row.key.clone()))
                .or_default() += 1;
        }
    }

    /// Takes in what the other servers wrote since the last revision read.
    /// Requests that arrive while one is under way wait for the next, which
    /// then serves them all.
    pub async fn catch_up(&self, model: &Mutex<Model>) -> Result<()> {
        let arrived = Instant::now();
        let mut feed = self.feed.lock().await;
        if feed.last_started.is_some_and(|started| started >= arrived) {
            return Ok(());
        }
        let started = Instant::now();
        if feed.client.is_none() {
            let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .with_context(|| {
                    format!("could not connect to PostgreSQL at {}", redacted(&self.url))
                })?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!("the PostgreSQL connection ended: {e}");
                }
            });
            feed.client = Some(client);
        }
        let Some(client) = &feed.client else {
            return Ok(());
        };
        let since = self.known().last_rev;
        let rows = match client
            .query(
                "SELECT tbl, key, doc, rev, writer FROM tether_rows WHERE rev > $1 ORDER BY rev",
                &[&since],
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                // A connection that broke is made again next time.
                feed.client = None;
                return Err(e.into());
            }
        };
        {
            let mut model = model.lock().unwrap_or_else(PoisonError::into_inner);
            let mut known = self.known();
            for row in rows {
                let (table, key, doc, rev, writer): (String, String, Option<String>, i64, String) =
                    (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
                known.last_rev = known.last_rev.max(rev);
                let id = (table, key);
                if writer == self.me
                    || known.pending.contains_key(&id)
                    || known.revs.get(&id).is_some_and(|&have| have >= rev)
                {
                    continue;
                }
                if let Err(e) = model.load(&id.0, id.1.clone(), doc.as_deref()) {
                    tracing::warn!("ignoring a row another server wrote: {e:#}");
                    continue;
                }
                known.revs.insert(id, rev);
            }
        }
        feed.last_started = Some(started);
        Ok(())
    }
}

pub(crate) struct Postgres {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    replica: Arc<Replica>,
    /// The model, to put back the rows of a refused write.
    model: Arc<Mutex<Model>>,
    shared: Arc<Shared>,
}

impl Postgres {
    /// Connects to `url`, takes the database for this server and brings its
    /// schema forward.
    pub fn open(
        replica: Arc<Replica>,
        model: Arc<Mutex<Model>>,
        shared: Arc<Shared>,
    ) -> Result<Self> {
        let url = replica.url.clone();
        let shown = redacted(&url);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (client, connection) = runtime
            .block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls))
            .with_context(|| format!("could not connect to PostgreSQL at {shown}"))?;
        runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!("the PostgreSQL connection ended: {e}");
            }
        });
        let store = Self {
            runtime,
            client,
            replica,
            model,
            shared,
        };
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
                .query("SELECT tbl, key, doc, rev FROM tether_rows", &[]),
        )?;
        let mut known = self.replica.known();
        let mut out = Vec::new();
        for row in rows {
            let (table, key, doc, rev): (String, String, Option<String>, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            known.last_rev = known.last_rev.max(rev);
            let table_name = Model::table_name(&table).with_context(|| {
                format!("the state has a table `{table}` this tether-cloud does not know; run a newer tether-cloud")
            })?;
            known.revs.insert((table, key.clone()), rev);
            if let Some(doc) = doc {
                out.push(Row {
                    table: table_name,
                    key,
                    doc: Some(doc),
                });
            }
        }
        Ok(out)
    }

    fn commit(&mut self, writes: &[Write]) -> Result<Vec<u64>> {
        let (candidates, mut refused) = self.untainted(writes);
        let committed = match self.commit_all(&candidates)? {
            Some(revs) => revs,
            None => {
                // Someone else wrote one of these rows first: one write at
                // a time, to keep every write that can be kept.
                let (revs, conflicts) = self.commit_each(&candidates)?;
                refused.extend(conflicts);
                revs
            }
        };
        let mut known = self.replica.known();
        for (id, rev) in committed {
            known.revs.insert(id, rev);
        }
        for write in writes {
            for row in &write.rows {
                let id = (row.table.to_string(), row.key.clone());
                if let Some(n) = known.pending.get_mut(&id) {
                    *n -= 1;
                    if *n == 0 {
                        known.pending.remove(&id);
                    }
                }
            }
        }
        drop(known);
        if !refused.is_empty() {
            let refused_rows: Vec<&Row> = writes
                .iter()
                .filter(|w| refused.contains(&w.seq))
                .flat_map(|w| &w.rows)
                .collect();
            self.read_back(&refused_rows)?;
        }
        Ok(refused)
    }
}

/// A row to write as one statement sees it: the last version of its key in
/// a batch, and the revision it must still have.
struct Put<'a> {
    id: RowKey,
    doc: Option<&'a str>,
    expected: Option<i64>,
}

impl Postgres {
    /// The writes not made on a refused one (those are refused too, and
    /// their rows join the tainted).
    fn untainted<'a>(&self, writes: &'a [Write]) -> (Vec<&'a Write>, Vec<u64>) {
        let mut known = self.replica.known();
        let (mut keep, mut refused) = (Vec::new(), Vec::new());
        for write in writes {
            let on_refused = write.seq <= known.tainted_through
                && write.rows.iter().any(|r| {
                    known
                        .tainted
                        .contains(&(r.table.to_string(), r.key.clone()))
                });
            if on_refused {
                refused.push(write.seq);
                for row in &write.rows {
                    known
                        .tainted
                        .insert((row.table.to_string(), row.key.clone()));
                }
            } else {
                keep.push(write);
            }
        }
        if writes.last().is_some_and(|w| w.seq > known.tainted_through) {
            known.tainted.clear();
        }
        (keep, refused)
    }

    /// The rows of `writes` as statements: the last version of each key,
    /// and the revision it was made on.
    fn puts<'a>(&self, writes: &[&'a Write]) -> Vec<Put<'a>> {
        let known = self.replica.known();
        let mut order: Vec<RowKey> = Vec::new();
        let mut last: HashMap<RowKey, Option<&'a str>> = HashMap::new();
        for row in writes.iter().flat_map(|w| &w.rows) {
            let id = (row.table.to_string(), row.key.clone());
            if last.insert(id.clone(), row.doc.as_deref()).is_none() {
                order.push(id);
            }
        }
        order
            .into_iter()
            .map(|id| Put {
                expected: known.revs.get(&id).copied(),
                doc: last.get(&id).copied().flatten(),
                id,
            })
            .collect()
    }

    /// All of `writes` in one transaction, or `None` (nothing written) if
    /// any row changed since this server read it.
    fn commit_all(&mut self, writes: &[&Write]) -> Result<Option<Written>> {
        let puts = self.puts(writes);
        if puts.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let me = self.replica.me.clone();
        let client = &mut self.client;
        self.runtime.block_on(async move {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
                .await?;
            let written = write_rows(&tx, &puts, &me).await?;
            if written.len() < writes_of(&puts) {
                tx.rollback().await?;
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(written))
        })
    }

    /// `writes` one at a time in one transaction, each kept or refused
    /// whole; what was written, and the writes refused.
    fn commit_each(&mut self, writes: &[&Write]) -> Result<(Written, Vec<u64>)> {
        let each: Vec<(u64, Vec<Put>)> = writes.iter().map(|w| (w.seq, self.puts(&[w]))).collect();
        let me = self.replica.me.clone();
        let client = &mut self.client;
        self.runtime.block_on(async move {
            let mut tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
                .await?;
            let (mut written, mut refused) = (Vec::new(), Vec::new());
            // A later write of a row this batch already wrote expects the
            // revision this batch gave it.
            let mut given: HashMap<RowKey, i64> = HashMap::new();
            for (seq, mut puts) in each {
                for put in &mut puts {
                    if let Some(rev) = given.get(&put.id) {
                        put.expected = Some(*rev);
                    }
                }
                let savepoint = tx.savepoint("one_write").await?;
                let rows = write_rows(&savepoint, &puts, &me).await?;
                if rows.len() < writes_of(&puts) {
                    savepoint.rollback().await?;
                    refused.push(seq);
                    continue;
                }
                savepoint.commit().await?;
                for (id, rev) in &rows {
                    given.insert(id.clone(), *rev);
                }
                written.extend(rows);
            }
            tx.commit().await?;
            Ok((written, refused))
        })
    }

    /// Puts the rows of refused writes back in the model as the database
    /// holds them, and marks them tainted until every write made before
    /// now has been through the writer.
    fn read_back(&mut self, rows: &[&Row]) -> Result<()> {
        let ids: Vec<RowKey> = rows
            .iter()
            .map(|r| (r.table.to_string(), r.key.clone()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let tables: Vec<&str> = ids.iter().map(|(t, _)| t.as_str()).collect();
        let keys: Vec<&str> = ids.iter().map(|(_, k)| k.as_str()).collect();
        let found = self.runtime.block_on(self.client.query(
            "SELECT tbl, key, doc, rev FROM tether_rows
             WHERE (tbl, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            &[&tables, &keys],
        ))?;
        let mut current: HashMap<RowKey, (Option<String>, i64)> = HashMap::new();
        for row in found {
            current.insert((row.get(0), row.get(1)), (row.get(2), row.get(3)));
        }
        let mut model = self.model.lock().unwrap_or_else(PoisonError::into_inner);
        let mut known = self.replica.known();
        for id in ids {
            let (doc, rev) = match current.remove(&id) {
                Some((doc, rev)) => (doc, Some(rev)),
                None => (None, None),
            };
            if let Err(e) = model.load(&id.0, id.1.clone(), doc.as_deref()) {
                tracing::warn!("could not read back {}/{}: {e:#}", id.0, id.1);
            }
            match rev {
                Some(rev) => known.revs.insert(id.clone(), rev),
                None => known.revs.remove(&id),
            };
            known.tainted.insert(id);
        }
        known.tainted_through = self.shared.enqueued();
        Ok(())
    }
}

/// How many of `puts` write a row (one made and removed before it was
/// ever stored writes none): fewer written than this is a conflict.
fn writes_of(puts: &[Put]) -> usize {
    puts.iter()
        .filter(|p| p.doc.is_some() || p.expected.is_some())
        .count()
}

/// Writes `puts`: an update where the row must still have its expected
/// revision, an insert where it must not exist yet. Returns the rows
/// written with their new revisions (fewer than asked: a conflict).
async fn write_rows(
    tx: &tokio_postgres::Transaction<'_>,
    puts: &[Put<'_>],
    me: &str,
) -> Result<Written> {
    let (mut up_t, mut up_k, mut up_d, mut up_r) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut new_t, mut new_k, mut new_d) = (Vec::new(), Vec::new(), Vec::new());
    for put in puts {
        match put.expected {
            Some(rev) => {
                up_t.push(put.id.0.as_str());
                up_k.push(put.id.1.as_str());
                up_d.push(put.doc);
                up_r.push(rev);
            }
            // A row made and removed before it was ever stored: nothing
            // to write.
            None if put.doc.is_none() => {}
            None => {
                new_t.push(put.id.0.as_str());
                new_k.push(put.id.1.as_str());
                new_d.push(put.doc);
            }
        }
    }
    let mut written = Vec::new();
    if !up_k.is_empty() {
        let rows = tx
            .query(
                "UPDATE tether_rows AS t
                 SET doc = i.doc, rev = nextval('tether_rev'), writer = $5
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS i(tbl, key, doc, expected)
                 WHERE t.tbl = i.tbl AND t.key = i.key AND t.rev = i.expected
                 RETURNING t.tbl, t.key, t.rev",
                &[&up_t, &up_k, &up_d, &up_r, &me],
            )
            .await?;
        written.extend(rows.into_iter().map(|r| ((r.get(0), r.get(1)), r.get(2))));
    }
    if !new_k.is_empty() {
        let rows = tx
            .query(
                "INSERT INTO tether_rows (tbl, key, doc, rev, writer)
                 SELECT i.tbl, i.key, i.doc, nextval('tether_rev'), $4
                 FROM unnest($1::text[], $2::text[], $3::text[]) AS i(tbl, key, doc)
                 ON CONFLICT (tbl, key) DO NOTHING
                 RETURNING tbl, key, rev",
                &[&new_t, &new_k, &new_d, &me],
            )
            .await?;
        written.extend(rows.into_iter().map(|r| ((r.get(0), r.get(1)), r.get(2))));
    }
    Ok(written)
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
