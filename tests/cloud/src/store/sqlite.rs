//! The embedded store: one SQLite database (`--state FILE`), in WAL mode,
//! each commit synced, held by one tether-cloud at a time.

use super::{Backend, Write};
use crate::model::{Model, Row};
use anyhow::{Context, Result};
use rusqlite::{Connection, params};
use std::path::Path;

/// The schema's versions, each the statements that bring the one before it
/// forward (`PRAGMA user_version` records how far a database has come).
const MIGRATIONS: &[&str] = &[
    // 1: one row per entry of the model, its JSON as it serializes.
    "CREATE TABLE rows (
        tbl TEXT NOT NULL,
        key TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (tbl, key)
    ) WITHOUT ROWID;",
];

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

pub(crate) struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    /// Opens (or creates) the database at `path`. A JSON state file an
    /// earlier tether-cloud wrote there is migrated into a database first,
    /// and kept beside it.
    pub fn open_or_migrate(path: &Path) -> Result<Self> {
        if is_json_state(path)? {
            migrate_json(path)?;
        }
        Self::open(path)
    }

    fn open(path: &Path) -> Result<Self> {
        create_private(path)?;
        let conn = Connection::open(path)
            .with_context(|| format!("could not open the state database {}", path.display()))?;
        Self::prepare(conn).map_err(|e| {
            let code = e.chain().find_map(|cause| {
                cause
                    .downcast_ref::<rusqlite::Error>()
                    .and_then(rusqlite::Error::sqlite_error_code)
            });
            match code {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    anyhow::anyhow!(
                        "{} is in use by another tether-cloud; stop it, or give this one another --state",
                        path.display()
                    )
                }
                Some(rusqlite::ErrorCode::NotADatabase) => anyhow::anyhow!(
                    "{} is not a tether-cloud state file (start with another --state, or remove it to start afresh)",
                    path.display()
                ),
                _ => e.context(format!("could not open the state database {}", path.display())),
            }
        })
    }

    fn prepare(conn: Connection) -> Result<Self> {
        // WAL: readers never wait on the writer; FULL: a commit is on disk
        // when it returns. EXCLUSIVE: a second tether-cloud on the same
        // file is refused at its start instead of both writing it.
        conn.busy_timeout(std::time::Duration::from_millis(200))?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        anyhow::ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "the database could not be put in WAL mode (it is in {mode} mode)"
        );
        conn.pragma_update(None, "synchronous", "FULL")?;
        let mut store = Self { conn };
        store.migrate()?;
        Ok(store)
    }

    /// Brings the schema to this version's, refusing a newer one.
    fn migrate(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        anyhow::ensure!(
            version <= MIGRATIONS.len(),
            "the state database has schema {version}, newer than this tether-cloud's ({}); run a newer tether-cloud, or start with another --state",
            MIGRATIONS.len()
        );
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(step).with_context(|| {
                format!("could not bring the state database to schema {}", i + 1)
            })?;
            tx.pragma_update(None, "user_version", i64::try_from(i + 1)?)?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl Backend for Sqlite {
    fn load(&mut self) -> Result<Vec<Row>> {
        let mut statement = self.conn.prepare("SELECT tbl, key, doc FROM rows")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (table, key, doc) = row?;
            out.push(Row {
                table: Model::table_name(&table)
                    .with_context(|| format!("the state has a table `{table}` this tether-cloud does not know; run a newer tether-cloud"))?,
                key,
                doc: Some(doc),
            });
        }
        Ok(out)
    }

    fn commit(&mut self, writes: &[Write]) -> Result<Vec<u64>> {
        // One server holds the file: nothing can conflict.
        let rows: Vec<&Row> = writes.iter().flat_map(|w| &w.rows).collect();
        self.put(&rows)?;
        Ok(Vec::new())
    }
}

impl Sqlite {
    fn put(&mut self, rows: &[&Row]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO rows (tbl, key, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tbl, key) DO UPDATE SET doc = excluded.doc",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM rows WHERE tbl = ?1 AND key = ?2")?;
            for row in rows {
                match &row.doc {
                    Some(doc) => put.execute(params![row.table, row.key, doc])?,
                    None => delete.execute(params![row.table, row.key])?,
                };
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Whether `path` holds something other than a SQLite database: an
/// earlier tether-cloud's JSON state (or something that is neither, which
/// the migration refuses, leaving it as it is).
fn is_json_state(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    let mut head = [0u8; SQLITE_MAGIC.len()];
    let n = file.read(&mut head)?;
    Ok(n > 0 && head[..n] != SQLITE_MAGIC[..n])
}

/// Turns an earlier tether-cloud's JSON state file into a database at the
/// same path, keeping the JSON beside it. Safe to interrupt: until the
/// final rename the JSON is where it was, and the next start migrates it
/// again.
fn migrate_json(path: &Path) -> Result<()> {
    let bytes =
        std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let mut model: Model = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a tether-cloud state file (start with another --state, or remove it to start afresh)",
            path.display()
        )
    })?;
    let kept = super::migrated_json(path);
    std::fs::copy(path, &kept)
        .with_context(|| format!("could not keep the JSON state as {}", kept.display()))?;
    let mut building = path.as_os_str().to_owned();
    building.push(".migrating");
    let building = std::path::PathBuf::from(building);
    for leftover in [&building, &wal_of(&building), &shm_of(&building)] {
        match std::fs::remove_file(leftover) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("could not remove {}", leftover.display()));
            }
        }
    }
    {
        let mut db = Sqlite::open(&building)?;
        model.mark_all_written();
        let rows = model.written()?;
        db.put(&rows.iter().collect::<Vec<_>>())?;
        // Closing the only connection folds the WAL into the database
        // file, which is then the whole of it.
        db.conn
            .close()
            .map_err(|(_, e)| e)
            .context("could not close the migrated database")?;
    }
    std::fs::rename(&building, path)
        .with_context(|| format!("could not put the migrated database at {}", path.display()))?;
    tracing::info!(
        "migrated the JSON state {} to SQLite; the JSON is kept as {}",
        path.display(),
        kept.display()
    );
    Ok(())
}

/// Creates the database file readable by its owner only, if it is not
/// there: it holds the signing key, the admin key and protected settings,
/// and SQLite gives its WAL the database file's mode.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("could not create {}", path.display())),
    }
}

fn wal_of(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

fn shm_of(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-shm");
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::OptionalExtension;

    fn row(table: &'static str, key: &str, doc: Option<&str>) -> Row {
        Row {
            table,
            key: key.into(),
            doc: doc.map(String::from),
        }
    }

    #[test]
    fn rows_are_kept_replaced_and_removed() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.db");
        {
            let mut db = Sqlite::open(&path)?;
            db.put(&[
                &row("machines", "a", Some("1")),
                &row("machines", "b", Some("2")),
                &row("machines", "a", Some("3")),
            ])?;
            db.put(&[&row("machines", "b", None)])?;
        }
        let mut db = Sqlite::open(&path)?;
        assert_eq!(db.load()?, vec![row("machines", "a", Some("3"))]);
        Ok(())
    }

    #[test]
    fn a_second_server_on_the_same_file_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.db");
        let _first = Sqlite::open(&path)?;
        let err = match Sqlite::open(&path) {
            Ok(_) => anyhow::bail!("two servers opened one database"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("in use by another tether-cloud"), "{err}");
        Ok(())
    }

    #[test]
    fn a_newer_schema_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path)?;
            conn.pragma_update(None, "user_version", 99)?;
        }
        let err = match Sqlite::open(&path) {
            Ok(_) => anyhow::bail!("a newer schema was opened"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("schema 99, newer"), "{err}");
        let found = Connection::open(&path)?
            .query_row(
                "SELECT name FROM sqlite_master WHERE name = 'rows'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?;
        assert_eq!(found, None, "nothing was created in it");
        Ok(())
    }
}
