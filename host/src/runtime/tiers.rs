//! Two tiers of compiled code, so that a large component is ready to call
//! soon after it is installed and runs optimized code from then on.
//!
//! Cranelift (the optimized tier) compiles a Python or JavaScript
//! extension, whose interpreter is inside the component (12–18 MB), in
//! several seconds; Winch (the baseline tier) compiles it in a fraction
//! of that, to slower code. A component of at least
//! [`BASELINE_FROM_BYTES`] that has no optimized artifact yet is loaded
//! with Winch's code, and one background thread compiles it with
//! Cranelift: activations made after that take Cranelift's code, and its
//! artifact is cached, so a restart loads it and compiles nothing (the
//! baseline artifact is removed then). Smaller components, every Rust one
//! so far, compile with Cranelift at once: Winch would save them little.
//! Only a long-lived host optimizes ([`Tiering::Background`], the service).

use super::cache::{ArtifactCache, Keep};
use super::engine::{EpochTicker, TetherEngine};
use super::host_api::HostState;
use super::wit;
use anyhow::Result;
use serde::Serialize;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};

/// Components this large or larger start on the baseline tier. Cranelift
/// compiles the Rust samples (at most a few MB) in well under a second.
pub const BASELINE_FROM_BYTES: usize = 4 * 1024 * 1024;

/// Which compiler made the code an extension runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CodeTier {
    /// Winch: compiled quickly, runs slower; replaced in the background.
    Baseline,
    /// Cranelift, optimizing.
    Optimized,
}

/// How a runtime compiles large components.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tiering {
    /// Baseline first, optimized in the background: a long-lived host (the
    /// service). Without a cache to keep it in, the optimized code would
    /// serve this process only, so then it is as `BaselineOnly`.
    #[default]
    Background,
    /// Baseline only, in this process: a command that makes a call or two
    /// and exits leaves the optimizing to the service, rather than compete
    /// with its own call for the CPU and be stopped halfway.
    BaselineOnly,
    /// Cranelift only, whatever the size (the benchmark's comparison).
    OptimizedOnly,
}

/// One compiler's engine, linker and artifact cache.
pub(crate) struct Tier {
    pub(crate) engine: TetherEngine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) cache: ArtifactCache,
    pub(crate) kind: CodeTier,
}

impl Tier {
    /// Links compiled code: what an activation instantiates.
    pub(crate) fn code(&self, component: &Component, id: &str) -> Result<Code> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| anyhow::anyhow!(wit::explain_link_error(id, &e)))?;
        let pre = wit::BindingsPre::new(pre).map_err(|e| {
            anyhow::anyhow!(
                "extension `{id}` does not export the tether:extension/lifecycle interface of a version this host provides ({}): {e}",
                wit::PROVIDED.join(", ")
            )
        })?;
        Ok(Code {
            pre,
            engine: self.engine.engine().clone(),
            ticker: self.engine.ticker(),
            tier: self.kind,
        })
    }
}

/// Linked code of one tier: a store is made on its engine, deadlines come
/// from its ticker.
pub(crate) struct Code {
    pub(crate) pre: wit::BindingsPre,
    pub(crate) engine: wasmtime::Engine,
    pub(crate) ticker: EpochTicker,
    pub(crate) tier: CodeTier,
}

/// The code a loaded extension runs now; the optimizer replaces it.
/// An activation holds the code it was made with to its end.
pub(crate) struct CodeSlot(RwLock<Arc<Code>>);

impl CodeSlot {
    pub(crate) fn new(code: Code) -> Arc<Self> {
        Arc::new(Self(RwLock::new(Arc::new(code))))
    }

    pub(crate) fn current(&self) -> Arc<Code> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, code: Code) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(code);
    }
}

/// A large component waiting for its optimized code.
struct Job {
    id: String,
    component: bytes::Bytes,
    digest: super::cache::ComponentDigest,
    /// Loads of it that are still alive, to be given the optimized code.
    slot: Weak<CodeSlot>,
}

/// The background thread that compiles large components with Cranelift,
/// one at a time, in the order they were loaded.
pub(crate) struct Optimizer {
    jobs: Mutex<Sender<Job>>,
    pending: Arc<Pending>,
}

#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    settled: Condvar,
}

impl Pending {
    fn count(&self) -> std::sync::MutexGuard<'_, usize> {
        self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn done(&self) {
        let mut count = self.count();
        *count = count.saturating_sub(1);
        self.settled.notify_all();
    }
}

impl Optimizer {
    /// Starts the thread; it ends with the runtime (when the last sender
    /// goes), after the compile it is in.
    pub(crate) fn start(optimized: Arc<Tier>, baseline: Arc<Tier>) -> Result<Self> {
        let (jobs, queue) = channel();
        let pending = Arc::new(Pending::default());
        let settled = pending.clone();
        std::thread::Builder::new()
            .name("tether-optimizer".into())
            .spawn(move || run(&optimized, &baseline, &queue, &settled))?;
        Ok(Self {
            jobs: Mutex::new(jobs),
            pending,
        })
    }

    pub(crate) fn queue(
        &self,
        id: &str,
        component: bytes::Bytes,
        digest: super::cache::ComponentDigest,
        slot: &Arc<CodeSlot>,
    ) {
        *self.pending.count() += 1;
        let job = Job {
            id: id.to_string(),
            component,
            digest,
            slot: Arc::downgrade(slot),
        };
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job);
        if sent.is_err() {
            // The thread is gone (it could not start, or panicked): the
            // extension keeps its baseline code, which is correct, slower.
            tracing::warn!("{id} keeps its baseline code: the optimizer is not running");
            self.pending.done();
        }
    }

    /// Components still waiting for their optimized code.
    pub(crate) fn pending(&self) -> usize {
        *self.pending.count()
    }

    /// Waits until nothing is waiting, or `max` has passed; whether it
    /// settled.
    pub(crate) fn settle(&self, max: Duration) -> bool {
        let until = Instant::now() + max;
        let mut count = self.pending.count();
        while *count > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            count = self
                .pending
                .settled
                .wait_timeout(count, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

fn run(optimized: &Tier, baseline: &Tier, queue: &Receiver<Job>, pending: &Pending) {
    for job in queue {
        let started = Instant::now();
        match optimize(optimized, &job) {
            Ok(()) => {
                baseline.cache.discard(&job.digest);
                tracing::info!(
                    "{}: optimized code ready after {:.1} s",
                    job.id,
                    started.elapsed().as_secs_f64()
                );
            }
            Err(e) => tracing::warn!("{} keeps its baseline code: {e:#}", job.id),
        }
        pending.done();
    }
}

fn optimize(optimized: &Tier, job: &Job) -> Result<()> {
    let (component, _) = optimized.cache.load_or_compile(
        optimized.engine.engine(),
        &job.component,
        &job.digest,
        Keep::OnDisk,
    )?;
    // Compiled and cached even when that load is gone: the next one, or
    // the next start, finds it.
    if let Some(slot) = job.slot.upgrade() {
        slot.replace(optimized.code(&component, &job.id)?);
    }
    Ok(())
}
