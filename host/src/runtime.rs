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
mod tiers;
mod wit;

pub use activation::{Activation, Call, CallOutcome, ReportedStatus};
pub use cache::{CacheOutcome, CacheStats, ComponentDigest};
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
pub use tiers::{BASELINE_FROM_BYTES, CodeTier, Tiering};
pub use wit::{ConnectionStatus, Level, PROVIDED as CONTRACTS_PROVIDED, StatusState};

use anyhow::{Context, Result};
use bytes::Bytes;
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
    /// Whether large components start on the baseline tier.
    pub tiering: Tiering,
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

/// The process's engines (one per tier), linkers and component caches.
pub struct Runtime {
    optimized: Arc<tiers::Tier>,
    /// Winch, for large components until their optimized code is ready.
    baseline: Option<Arc<tiers::Tier>>,
    /// Compiles their optimized code, when there is a cache to keep it in.
    optimizer: Option<tiers::Optimizer>,
    http: Arc<outbound::HttpClient>,
    cpu: Option<Arc<CpuGovernor>>,
    /// One key-value store per data directory, shared by every load of it
    /// (an update has the old and the new version loaded at once): two
    /// in-memory copies of one file would overwrite each other's writes.
    kv_stores: Mutex<HashMap<PathBuf, Weak<Mutex<KvStore>>>>,
}

fn tier(options: &RuntimeOptions, kind: CodeTier) -> Result<tiers::Tier> {
    // The baseline tier's code runs only until the optimized code is
    // ready: allocated on demand, it reserves no second pool.
    let allocator = match kind {
        CodeTier::Optimized => options.allocator,
        CodeTier::Baseline => AllocatorChoice::OnDemand,
    };
    let engine = engine::TetherEngine::new(allocator, kind)?;
    let linker = host_api::linker(engine.engine())?;
    let cache = cache::ArtifactCache::new(options.cache_dir.clone(), engine.engine());
    Ok(tiers::Tier {
        engine,
        linker,
        cache,
        kind,
    })
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Result<Self> {
        let optimized = Arc::new(tier(&options, CodeTier::Optimized)?);
        let baseline = match options.tiering {
            Tiering::OptimizedOnly => None,
            Tiering::Background | Tiering::BaselineOnly => {
                Some(Arc::new(tier(&options, CodeTier::Baseline)?))
            }
        };
        let optimizer = match (&baseline, options.tiering, &options.cache_dir) {
            (Some(baseline), Tiering::Background, Some(_)) => Some(tiers::Optimizer::start(
                optimized.clone(),
                baseline.clone(),
            )?),
            _ => None,
        };
        Ok(Self {
            optimized,
            baseline,
            optimizer,
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

    /// The optimized tier's engine, for embedders that measure or extend it.
    pub fn engine(&self) -> &wasmtime::Engine {
        self.optimized.engine.engine()
    }

    /// Whether instances of optimized code come from the pooling allocator.
    pub fn is_pooling(&self) -> bool {
        self.optimized.engine.is_pooling()
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

    fn tiers(&self) -> impl Iterator<Item = &tiers::Tier> {
        std::iter::once(&*self.optimized).chain(self.baseline.as_deref())
    }

    /// How loads were served so far, both tiers together.
    pub fn cache_stats(&self) -> CacheStats {
        let mut total = CacheStats::default();
        for tier in self.tiers() {
            let stats = tier.cache.stats();
            total.compiled += stats.compiled;
            total.loaded_from_disk += stats.loaded_from_disk;
            total.from_memory += stats.from_memory;
            total.kept_in_memory += stats.kept_in_memory;
        }
        total.awaiting_optimized_code = self.optimizer.as_ref().map_or(0, |o| o.pending());
        total
    }

    /// Drops the compiled components kept in memory: the next load reads
    /// the disk cache.
    pub fn forget_compiled(&self) {
        for tier in self.tiers() {
            tier.cache.forget();
        }
    }

    /// The optimized engine's fingerprint: what its artifacts are keyed by.
    pub fn fingerprint(&self) -> &str {
        self.optimized.cache.fingerprint()
    }

    /// Waits up to `max` until every large component loaded so far has its
    /// optimized code; whether that happened.
    pub fn settle(&self, max: std::time::Duration) -> bool {
        self.optimizer.as_ref().is_none_or(|o| o.settle(max))
    }

    /// Compiles a component ahead of its load (which then finds it in
    /// memory), so that a caller holding a lock others wait on need not
    /// compile while holding it.
    pub fn precompile(&self, id: &str, component: &[u8]) -> Result<()> {
        let digest = ComponentDigest::of(component);
        self.code(id, digest, &mut || Ok(Bytes::copy_from_slice(component)))
            .map(|_| ())
    }

    /// Loads the code compiled of the component whose SHA-256 is `digest`
    /// into memory, if this host's cache holds it; compiles nothing.
    /// Whether it did.
    pub fn warm(&self, digest: ComponentDigest) -> bool {
        self.tiers()
            .any(|tier| tier.cache.find(tier.engine.engine(), &digest).is_ok())
    }

    /// Compiles (or loads from the cache) and links a component.
    pub fn load(&self, component: &[u8], spec: ExtensionSpec) -> Result<LoadedExtension> {
        let digest = ComponentDigest::of(component);
        self.load_installed(digest, spec, || Ok(component.to_vec()))
    }

    /// Loads the component whose SHA-256 is `digest` (as its signed
    /// manifest names it): from its compiled code if this host holds it,
    /// which needs none of its bytes; else compiled from what `component`
    /// reads, which must be the component that digest names.
    pub fn load_installed(
        &self,
        digest: ComponentDigest,
        spec: ExtensionSpec,
        component: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<LoadedExtension> {
        let mut once = Some(component);
        let (code, cache) = self.code(&spec.id, digest, &mut || {
            let read = once
                .take()
                .ok_or_else(|| anyhow::anyhow!("the component was read once already"))?;
            Ok(Bytes::from(read()?))
        })?;
        Ok(LoadedExtension {
            code,
            kv: self.kv_store(&spec.data_dir),
            spec: Arc::new(spec),
            cache,
            http: self.http.clone(),
            cpu: self.cpu.clone(),
        })
    }

    /// The code to run a component with now: what is compiled of it
    /// (optimized first), else compiled now: optimized if it is small,
    /// else baseline with its optimized code queued.
    fn code(
        &self,
        id: &str,
        digest: ComponentDigest,
        component: &mut dyn FnMut() -> Result<Bytes>,
    ) -> Result<(Arc<tiers::CodeSlot>, CacheOutcome)> {
        let optimized = &self.optimized;
        let engine = optimized.engine.engine();
        let optimized_missing = match optimized.cache.find(engine, &digest) {
            Ok((compiled, outcome)) => {
                return Ok((
                    tiers::CodeSlot::new(optimized.code(&compiled, id)?),
                    outcome,
                ));
            }
            Err(missing) => missing,
        };
        let queue = |bytes: Bytes, slot: &Arc<tiers::CodeSlot>| {
            if let Some(optimizer) = &self.optimizer {
                optimizer.queue(id, bytes, digest, slot);
            }
        };
        let baseline_missing = match &self.baseline {
            Some(baseline) => match baseline.cache.find(baseline.engine.engine(), &digest) {
                Ok((compiled, outcome)) => {
                    let slot = tiers::CodeSlot::new(baseline.code(&compiled, id)?);
                    if self.optimizer.is_some() {
                        queue(component()?, &slot);
                    }
                    return Ok((slot, outcome));
                }
                Err(missing) => Some((baseline, missing)),
            },
            None => None,
        };
        let bytes = component()?;
        let context = || format!("could not compile extension `{id}`");
        match baseline_missing {
            Some((baseline, missing)) if bytes.len() >= BASELINE_FROM_BYTES => {
                // Under the optimizer, the baseline code lives until the
                // optimized code replaces it: writing tens of MB of it to
                // disk would only delay the first call (a restart before
                // then compiles it again). A command keeps it for the next.
                let keep = if self.optimizer.is_some() {
                    cache::Keep::InMemory
                } else {
                    cache::Keep::OnDisk
                };
                let (compiled, outcome) = baseline
                    .cache
                    .compile(baseline.engine.engine(), &bytes, &digest, keep, missing)
                    .with_context(context)?;
                let slot = tiers::CodeSlot::new(baseline.code(&compiled, id)?);
                queue(bytes, &slot);
                Ok((slot, outcome))
            }
            _ => {
                let (compiled, outcome) = optimized
                    .cache
                    .compile(
                        engine,
                        &bytes,
                        &digest,
                        cache::Keep::OnDisk,
                        optimized_missing,
                    )
                    .with_context(context)?;
                Ok((
                    tiers::CodeSlot::new(optimized.code(&compiled, id)?),
                    outcome,
                ))
            }
        }
    }
}

/// A compiled, linked extension, ready to be activated any number of times.
pub struct LoadedExtension {
    code: Arc<tiers::CodeSlot>,
    kv: Arc<Mutex<KvStore>>,
    spec: Arc<ExtensionSpec>,
    cache: CacheOutcome,
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

    /// Which compiler's code its next activation runs.
    pub fn tier(&self) -> CodeTier {
        self.code.current().tier
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
