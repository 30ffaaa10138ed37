//! Where tether-cloud's state is kept: one interface, [`Backend`], and its
//! implementations (SQLite, the embedded default, in `sqlite`; PostgreSQL
//! in `postgres`).
//!
//! The model stays in memory, behind one lock, and is the state requests
//! read. A change is the rows it touched (`Model::written`), queued in
//! order under that lock; one writer thread commits whatever is queued in
//! one transaction (group commit: many requests, one fsync), and an answer
//! leaves only once everything written before it is durable
//! ([`acknowledge_when_durable`]). So every acknowledged write survives a
//! `kill -9`, and the disk's sync rate is shared by every request in flight
//! rather than paid by each.

mod postgres;
mod sqlite;

use crate::model::{Model, Row};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

pub(crate) use postgres::redacted;

/// Where the state is kept (no `Debug`: a database URL holds its
/// password; [`Place::describe`] says it without).
#[derive(Clone)]
pub enum Place {
    /// Nowhere beyond this process.
    Memory,
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its URL.
    Postgres(String),
}

impl Place {
    /// For messages: never the database's password.
    pub fn describe(&self) -> String {
        match self {
            Place::Memory => "memory only (--state FILE or --database URL keeps it)".into(),
            Place::Sqlite(path) => format!("SQLite {}", path.display()),
            Place::Postgres(url) => format!("PostgreSQL {}", postgres::redacted(url)),
        }
    }
}

/// A place the model's rows are kept.
pub(crate) trait Backend: Send {
    /// Every row, to build the model at start.
    fn load(&mut self) -> Result<Vec<Row>>;
    /// Writes `writes` (a later row of the same key wins) in one
    /// transaction, durable when this returns. Returns the writes it
    /// refused because another server changed what they changed first
    /// (whose rows it has put back in the model as the store holds them).
    fn commit(&mut self, writes: &[Write]) -> Result<Vec<u64>>;
}

/// One change: the rows it wrote, numbered in the order changes were made.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub seq: u64,
    pub rows: Vec<Row>,
}

tokio::task_local! {
    /// The changes the request being answered made, by number.
    static REQUEST_WRITES: std::cell::RefCell<Vec<u64>>;
}

/// How long an answer waits for its writes to be durable before it is
/// refused as unavailable (the writer keeps retrying them).
const DURABLE_WITHIN: Duration = Duration::from_secs(10);

/// The writes in flight, numbered in the order they were made.
#[derive(Default)]
struct Queue {
    writes: Vec<Write>,
    /// The number of the last write queued.
    enqueued: u64,
    stopping: bool,
}

pub(crate) struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// The number of the last write that is durable.
    durable: tokio::sync::watch::Sender<u64>,
    /// Writes refused for a conflict (never durable), by number.
    refused: Mutex<std::collections::BTreeSet<u64>>,
}

impl Shared {
    /// The number of the last write queued.
    pub fn enqueued(&self) -> u64 {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .enqueued
    }
}

/// Refused writes remembered, past which the oldest are forgotten (their
/// requests were answered long ago).
const REFUSED_KEPT: usize = 10_000;

/// The store of a running tether-cloud: in memory only, or a backend
/// written by its own thread.
pub(crate) struct Store {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// With PostgreSQL: what this server knows of the others' writes.
    replica: Option<Arc<postgres::Replica>>,
}

impl Store {
    /// Opens the state `at` says and fills `model` with what it holds.
    pub fn open(at: &Place, model: &Arc<Mutex<Model>>) -> Result<Store> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            durable: tokio::sync::watch::Sender::new(0),
            refused: Mutex::new(Default::default()),
        });
        let mut replica = None;
        let open: Box<dyn FnOnce() -> Result<Box<dyn Backend>> + Send> = match at {
            Place::Memory => {
                return Ok(Store {
                    shared,
                    writer: None,
                    replica,
                });
            }
            Place::Sqlite(path) => {
                let path = path.clone();
                Box::new(move || {
                    Ok(Box::new(sqlite::Sqlite::open_or_migrate(&path)?) as Box<dyn Backend>)
                })
            }
            Place::Postgres(url) => {
                let known = Arc::new(postgres::Replica::new(url));
                replica = Some(known.clone());
                let (model, shared) = (model.clone(), shared.clone());
                Box::new(move || {
                    Ok(Box::new(postgres::Postgres::open(known, model, shared)?)
                        as Box<dyn Backend>)
                })
            }
        };
        // The backend is opened and read on a thread of its own: PostgreSQL's
        // client runs on a runtime of its own, never inside the server's.
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("tether-cloud-open".into())
            .spawn(move || {
                let opened = open().and_then(|mut backend| {
                    let rows = backend.load()?;
                    Ok((backend, rows))
                });
                let _ = opened_tx.send(opened);
            })
            .context("could not start the store's thread")?;
        let (backend, rows) = opened_rx
            .recv()
            .context("the store's thread ended before it opened the state")??;
        {
            let mut model = model.lock().unwrap_or_else(PoisonError::into_inner);
            for row in rows {
                model
                    .load(row.table, row.key, row.doc.as_deref())
                    .with_context(|| format!("could not read the state in {}", at.describe()))?;
            }
            model.index_operations();
        }
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("tether-cloud-store".into())
                .spawn(move || write_loop(&shared, backend))
                .context("could not start the store's writer thread")?
        };
        Ok(Store {
            shared,
            writer: Some(writer),
            replica,
        })
    }

    #[cfg(test)]
    fn with_backend(backend: Box<dyn Backend>) -> Result<Store> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            durable: tokio::sync::watch::Sender::new(0),
            refused: Mutex::new(Default::default()),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::spawn(move || write_loop(&shared, backend))
        };
        Ok(Store {
            shared,
            writer: Some(writer),
            replica: None,
        })
    }

    /// Brings the model up to what the other servers on the same database
    /// have written (PostgreSQL), before a request reads it.
    pub async fn catch_up(&self, model: &Mutex<Model>) -> Result<()> {
        match &self.replica {
            Some(replica) => replica.catch_up(model).await,
            None => Ok(()),
        }
    }

    /// Whether anything outlives this process.
    pub fn persistent(&self) -> bool {
        self.writer.is_some()
    }

    /// Queues what `model` has written since it was last asked (or, when
    /// nothing is kept, forgets it); called under the model's lock.
    pub fn record(&self, model: &mut Model, attributed: Attributed) {
        if !self.persistent() {
            model.forget_written();
            return;
        }
        match model.written() {
            Ok(rows) => self.enqueue(rows, attributed),
            Err(e) => tracing::error!("could not serialize a change for the store: {e}"),
        }
    }

    /// Queues one change's rows; called under the model's lock, so the
    /// queue is in the order the changes were made. The request being
    /// answered learns whether they were kept (see [`Self::durable`]).
    fn enqueue(&self, rows: Vec<Row>, attributed: Attributed) {
        if rows.is_empty() {
            return;
        }
        if let Some(replica) = &self.replica {
            replica.pending(&rows);
        }
        let mut queue = self.queue();
        queue.enqueued += 1;
        let seq = queue.enqueued;
        if attributed == Attributed::Yes {
            let _ = REQUEST_WRITES.try_with(|mine| mine.borrow_mut().push(seq));
        }
        if !self.persistent() {
            // Nothing keeps it: it is as durable as it will be.
            self.shared.durable.send_replace(seq);
            return;
        }
        queue.writes.push(Write { seq, rows });
        self.shared.wake.notify_one();
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until every write queued so far is durable; whether `mine`
    /// (a request's writes) were all kept.
    pub async fn durable(&self, mine: &[u64]) -> Result<Kept> {
        let target = self.queue().enqueued;
        let mut durable = self.shared.durable.subscribe();
        match tokio::time::timeout(DURABLE_WITHIN, durable.wait_for(|d| *d >= target)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => anyhow::bail!("the store's writer stopped"),
            Err(_) => anyhow::bail!(
                "the state could not be written within {} s",
                DURABLE_WITHIN.as_secs()
            ),
        }
        let refused = self
            .shared
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(if mine.iter().any(|seq| refused.contains(seq)) {
            Kept::Conflict
        } else {
            Kept::All
        })
    }

    /// Waits (blocking) until every write queued so far is durable: for
    /// the start, before anything is served.
    pub fn flush(&self) -> Result<()> {
        let target = self.queue().enqueued;
        let mut durable = self.shared.durable.subscribe();
        let deadline = std::time::Instant::now() + DURABLE_WITHIN;
        while *durable.borrow_and_update() < target {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the state could not be written within {} s",
                DURABLE_WITHIN.as_secs()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.queue().stopping = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Whether a change is the request's own: a request is answered 409 only
/// for its own changes that were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attributed {
    Yes,
    No,
}

/// Whether a request's writes were kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    All,
    /// Another server changed what it changed first: nothing of it was kept.
    Conflict,
}

/// The writer thread: commits what is queued, all of it at once, until the
/// store is dropped and the queue is empty.
fn write_loop(shared: &Shared, mut backend: Box<dyn Backend>) {
    let mut failed: Vec<Write> = Vec::new();
    let mut failed_through = 0;
    loop {
        let (mut writes, through, stopping) = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            while queue.writes.is_empty() && failed.is_empty() && !queue.stopping {
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            (
                std::mem::take(&mut queue.writes),
                queue.enqueued,
                queue.stopping,
            )
        };
        if writes.is_empty() && failed.is_empty() {
            return;
        }
        // What failed last time goes first: a newer row of the same key
        // comes after it and wins.
        if !failed.is_empty() {
            failed.append(&mut writes);
            writes = std::mem::take(&mut failed);
        }
        let through = through.max(failed_through);
        match backend.commit(&writes) {
            Ok(refused) => {
                if !refused.is_empty() {
                    let mut kept = shared
                        .refused
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    kept.extend(refused);
                    while kept.len() > REFUSED_KEPT {
                        kept.pop_first();
                    }
                }
                shared.durable.send_replace(through);
            }
            Err(e) => {
                tracing::error!("could not write the state (retrying): {e:#}");
                failed = writes;
                failed_through = through;
                if stopping {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Holds each answer until what it (and everything before it) wrote is
/// durable; an answer whose writes cannot be made durable becomes a 503.
pub(crate) async fn acknowledge_when_durable(
    axum::extract::State(cloud): axum::extract::State<Arc<crate::Cloud>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Err(e) = cloud.store.catch_up(&cloud.model).await {
        tracing::error!("could not read the other servers' changes: {e:#}");
        return crate::errors::ArmError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "StateNotRead",
            "tether-cloud could not read its state from its store. Retry later.",
        )
        .into_response();
    }
    let (response, mine) = REQUEST_WRITES
        .scope(Default::default(), async {
            let response = next.run(request).await;
            (response, REQUEST_WRITES.with(|mine| mine.take()))
        })
        .await;
    match cloud.store.durable(&mine).await {
        Ok(Kept::All) => response,
        Ok(Kept::Conflict) => crate::errors::ArmError::new(
            axum::http::StatusCode::CONFLICT,
            "Conflict",
            "Another tether-cloud server sharing this database changed the same resource at the same moment; nothing of this request was kept. Read it again and retry.",
        )
        .into_response(),
        Err(e) => {
            tracing::error!("refusing an answer whose writes are not durable: {e:#}");
            crate::errors::ArmError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "StateNotWritten",
                "tether-cloud could not write its state to its store; the change may not have been kept. Retry later.",
            )
            .into_response()
        }
    }
}

/// The file an earlier tether-cloud's JSON state is kept as once migrated.
pub(crate) fn migrated_json(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".json-before-sqlite");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend whose commits wait for the test to let them through, and
    /// whose first `fail` commits fail.
    #[derive(Clone, Default)]
    struct Gated {
        open: Arc<(Mutex<bool>, Condvar)>,
        committed: Arc<Mutex<Vec<Row>>>,
        fail: Arc<Mutex<u32>>,
    }

    impl Gated {
        fn open(&self) {
            let (open, changed) = &*self.open;
            *open.lock().unwrap_or_else(PoisonError::into_inner) = true;
            changed.notify_all();
        }

        fn committed(&self) -> Vec<Row> {
            self.committed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }
    }

    impl Backend for Gated {
        fn load(&mut self) -> Result<Vec<Row>> {
            Ok(Vec::new())
        }

        fn commit(&mut self, writes: &[Write]) -> Result<Vec<u64>> {
            let rows: Vec<Row> = writes.iter().flat_map(|w| w.rows.clone()).collect();
            let (open, changed) = &*self.open;
            let mut is_open = open.lock().unwrap_or_else(PoisonError::into_inner);
            while !*is_open {
                is_open = changed
                    .wait(is_open)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let mut fail = self.fail.lock().unwrap_or_else(PoisonError::into_inner);
            if *fail > 0 {
                *fail -= 1;
                anyhow::bail!("the disk is full");
            }
            self.committed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(rows);
            Ok(Vec::new())
        }
    }

    fn row(key: &str, doc: &str) -> Row {
        Row {
            table: "machines",
            key: key.into(),
            doc: Some(doc.into()),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_is_acknowledged_only_once_committed() -> Result<()> {
        let backend = Gated::default();
        *backend.fail.lock().unwrap_or_else(PoisonError::into_inner) = 1;
        let store = Store::with_backend(Box::new(backend.clone()))?;
        store.enqueue(vec![row("a", "1")], Attributed::Yes);
        store.enqueue(vec![row("a", "2"), row("b", "1")], Attributed::Yes);
        let waiting =
            tokio::time::timeout(Duration::from_millis(300), store.durable(&[1, 2])).await;
        assert!(waiting.is_err(), "acknowledged before it was committed");
        assert!(backend.committed().is_empty());
        // The first commit fails and is retried with what came since.
        backend.open();
        assert_eq!(store.durable(&[1, 2]).await?, Kept::All);
        let committed = backend.committed();
        assert_eq!(committed.last(), Some(&row("b", "1")), "{committed:?}");
        assert!(committed.contains(&row("a", "2")), "{committed:?}");
        Ok(())
    }
}
