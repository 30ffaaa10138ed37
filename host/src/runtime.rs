//! The sandboxed component runtime.
//!
//! One [`Runtime`] per process owns the wasmtime `Engine` (component model,
//! Cranelift, epoch interruption, pooling allocator when the address space
//! allows), the linker with every host function, and the on-disk cache of
//! compiled components. [`Runtime::load`] turns a component into a
//! [`LoadedExtension`] (an `InstancePre`); each [`Activation`] is a `Store`
//! with its own limits and a WASI context that inherits nothing.
//!
//! Whatever a guest does (trap, panic, overflow its stack, run past its
//! deadline, exhaust its memory, flood the log) comes back as a
//! [`GuestError`] naming the extension, the call and the cause; the host
//! never panics because of a guest.

mod activation;
mod cache;
mod capabilities;
mod cpu;
mod deadline_clock;
mod engine;
mod error;
mod host_api;
mod limits;
mod log_capture;
mod wit;

pub use activation::{Activation, Call, CallOutcome, ReportedStatus};
pub use cache::{CacheOutcome, CacheStats};
pub use capabilities::files::grants::{FileGrant, FilePolicy};
pub use capabilities::machine::{MachineInfo, MachineView};
pub use capabilities::outbound::client::{HostPattern, OutboundGrant};
pub use cpu::{CpuGovernor, thread_cpu as thread_cpu_time};
pub use error::{GuestError, GuestErrorKind};
pub use limits::{Limits, MAX_MEMORY_BYTES, MAX_OUTPUT_BYTES};
pub use log_capture::{
    LogRecord, LogSource, MAX_CALL_BYTES as MAX_LOG_BYTES_PER_CALL,
    MAX_RECORDS as MAX_LOG_LINES_PER_CALL, level_str as log_level_name, status_name,
};
pub use wit::{ConnectionStatus, Level, PROVIDED as CONTRACTS_PROVIDED, StatusState};

use anyhow::{Context, Result};
use capabilities::kv::KvStore;
use capabilities::outbound::client as outbound;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

/// How a [`Runtime`] is set up.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Which instance allocator to use.
    pub allocator: AllocatorChoice,
    /// The share of one CPU all extensions together may use (percent);
    /// `None`: no cap (development runs, benchmarks).
    pub cpu_percent: Option<u8>,
}

/// The instance allocator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AllocatorChoice {
    /// Pooling when the address space allows it, on-demand otherwise.
    #[default]
    Auto,
    /// Always on-demand (`mmap` per instance).
    OnDemand,
}

/// Everything the host knows about one extension it is about to run.
#[derive(Debug, Clone)]
pub struct ExtensionSpec {
    /// `Publisher/Name`, or a file name for development runs.
    pub id: String,
    pub limits: Limits,
    /// Public settings: a JSON object.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Protected settings: a JSON object, never logged nor shown.
    pub protected_settings: serde_json::Map<String, serde_json::Value>,
    pub machine: MachineView,
    pub outbound: OutboundGrant,
    /// Directories preopened for it (canonical; granted by the operator).
    pub files: Vec<FileGrant>,
    /// Where the extension's private key-value store is persisted.
    pub data_dir: PathBuf,
}

impl ExtensionSpec {
    /// A spec with default limits, no settings, nothing granted, and this
    /// machine as seen locally.
    pub fn new(id: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            id: id.into(),
            limits: Limits::default(),
            settings: Default::default(),
            protected_settings: Default::default(),
            machine: MachineView::fixed(MachineInfo::local()),
            outbound: OutboundGrant::default(),
            files: Vec::new(),
            data_dir: data_dir.into(),
        }
    }
}

/// The process's one engine, linker and component cache.
pub struct Runtime {
    engine: engine::TetherEngine,
    linker: wasmtime::component::Linker<host_api::HostState>,
    cache: cache::ArtifactCache,
    http: Arc<outbound::HttpClient>,
    cpu: Option<Arc<CpuGovernor>>,
    /// One key-value store per data directory, shared by every load of it
    /// (an update has the old and the new version loaded at once): two
    /// in-memory copies of one file would overwrite each other's writes.
    kv_stores: Mutex<HashMap<PathBuf, Weak<Mutex<KvStore>>>>,
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Result<Self> {
        let engine = engine::TetherEngine::new(options.allocator)?;
        let linker = host_api::linker(engine.engine())?;
        let cache = cache::ArtifactCache::new(options.cache_dir, engine.engine());
        Ok(Self {
            engine,
            linker,
            cache,
            http: Arc::new(outbound::HttpClient::default()),
            cpu: options.cpu_percent.map(|p| Arc::new(CpuGovernor::new(p))),
            kv_stores: Mutex::new(HashMap::new()),
        })
    }

    fn kv_store(&self, data_dir: &std::path::Path) -> Arc<Mutex<KvStore>> {
        let mut stores = self
            .kv_stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stores.retain(|_, store| store.strong_count() > 0);
        if let Some(store) = stores.get(data_dir).and_then(Weak::upgrade) {
            return store;
        }
        let store = Arc::new(Mutex::new(KvStore::new(data_dir.join("kv.json"))));
        stores.insert(data_dir.to_path_buf(), Arc::downgrade(&store));
        store
    }

    /// The process's engine, for embedders that measure or extend it.
    pub fn engine(&self) -> &wasmtime::Engine {
        self.engine.engine()
    }

    /// Whether instances come from the pooling allocator.
    pub fn is_pooling(&self) -> bool {
        self.engine.is_pooling()
    }

    /// The CPU share all extensions together may use, if capped.
    pub fn cpu_percent(&self) -> Option<u8> {
        self.cpu.as_ref().map(|c| c.percent())
    }

    /// Changes the CPU share for every call from now on, running ones
    /// included (no effect on an uncapped runtime).
    pub fn set_cpu_percent(&self, percent: u8) {
        if let Some(cpu) = &self.cpu {
            cpu.set_percent(percent);
        }
    }

    /// How loads were served so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Drops the compiled components kept in memory: the next load reads
    /// the disk cache.
    pub fn forget_compiled(&self) {
        self.cache.forget();
    }

    /// The engine's fingerprint: what compiled artifacts are keyed by.
    pub fn fingerprint(&self) -> &str {
        self.cache.fingerprint()
    }

    /// Compiles (or loads from the cache) and links a component.
    pub fn load(&self, component: &[u8], spec: ExtensionSpec) -> Result<LoadedExtension> {
        let (component, cache) = self
            .cache
            .load_or_compile(self.engine.engine(), component)
            .with_context(|| format!("could not compile extension `{}`", spec.id))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!(wit::explain_link_error(&spec.id, &e)))?;
        let pre = wit::BindingsPre::new(pre).map_err(|e| {
            anyhow::anyhow!(
                "extension `{}` does not export the tether:extension/lifecycle interface of a version this host provides ({}): {e}",
                spec.id,
                wit::PROVIDED.join(", ")
            )
        })?;
        Ok(LoadedExtension {
            pre,
            engine: self.engine.engine().clone(),
            kv: self.kv_store(&spec.data_dir),
            spec: Arc::new(spec),
            cache,
            ticker: self.engine.ticker(),
            http: self.http.clone(),
            cpu: self.cpu.clone(),
        })
    }
}

/// A compiled, linked extension, ready to be activated any number of times.
pub struct LoadedExtension {
    pre: wit::BindingsPre,
    engine: wasmtime::Engine,
    kv: Arc<Mutex<KvStore>>,
    spec: Arc<ExtensionSpec>,
    cache: CacheOutcome,
    ticker: engine::EpochTicker,
    http: Arc<outbound::HttpClient>,
    cpu: Option<Arc<CpuGovernor>>,
}

impl LoadedExtension {
    /// What it was loaded with: its limits, settings and grants.
    pub fn spec(&self) -> &ExtensionSpec {
        &self.spec
    }
}

impl LoadedExtension {
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// Whether the compiled component came from the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// A fresh activation: a new store with the extension's limits.
    pub fn activate(&self) -> Activation<'_> {
        Activation::new(self)
    }

    /// Runs one call in a fresh activation.
    pub fn call(&self, call: Call) -> Result<CallOutcome, GuestError> {
        self.activate().call(call)
    }

    /// Runs one call in a fresh activation, ending by `max` if that is
    /// sooner than the extension's call timeout.
    pub fn call_within(
        &self,
        call: Call,
        max: Option<std::time::Duration>,
    ) -> Result<CallOutcome, GuestError> {
        self.activate().call_within(call, max)
    }
}
