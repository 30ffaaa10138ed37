//! The wasmtime engine and the epoch ticker that enforces call deadlines.

use super::AllocatorChoice;
use super::limits::MAX_MEMORY_BYTES;
use super::tiers::CodeTier;
use anyhow::Result;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
    RegallocAlgorithm, Strategy,
};

/// How often the epoch advances while a guest call is running. Deadlines
/// are rounded up to this.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Wasm stack a guest may use before it traps with a stack overflow.
const MAX_WASM_STACK: usize = 512 * 1024;

/// Instances the pool holds at once. Each memory slot reserves address
/// space (not memory) for the default 4 GiB reservation plus guards.
const POOL_INSTANCES: u32 = 128;

pub(crate) struct TetherEngine {
    engine: Engine,
    pooling: bool,
    ticker: EpochTicker,
}

impl TetherEngine {
    pub(crate) fn new(choice: AllocatorChoice, tier: CodeTier) -> Result<Self> {
        let (engine, pooling) = match choice {
            AllocatorChoice::OnDemand => (Engine::new(&base_config(tier))?, false),
            AllocatorChoice::Auto => match Engine::new(&pooling_config(tier)) {
                Ok(engine) => (engine, true),
                Err(e) => {
                    // Typically a limited address space (ulimit -v, some
                    // containers): the pool cannot reserve its slots.
                    tracing::info!(
                        "pooling allocator unavailable ({e:#}); using on-demand allocation"
                    );
                    (Engine::new(&base_config(tier))?, false)
                }
            },
        };
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            pooling,
            ticker,
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn is_pooling(&self) -> bool {
        self.pooling
    }

    pub(crate) fn ticker(&self) -> EpochTicker {
        self.ticker.clone()
    }
}

fn base_config(tier: CodeTier) -> Config {
    let mut config = Config::new();
    match tier {
        CodeTier::Optimized => config
            .strategy(Strategy::Cranelift)
            .cranelift_opt_level(OptLevel::Speed),
        // Winch compiles the functions; Cranelift still compiles the
        // trampolines between host and guest (thousands, in an
        // interpreter's component), here as quickly as it can.
        CodeTier::Baseline => config
            .strategy(Strategy::Winch)
            .cranelift_opt_level(OptLevel::None)
            .cranelift_regalloc_algorithm(RegallocAlgorithm::SinglePass),
    };
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        // Not needed by the contract, and each widens what a guest can do.
        .wasm_memory64(false)
        .wasm_multi_memory(false);
    config
}

fn pooling_config(tier: CodeTier) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 8)
        .total_memories(POOL_INSTANCES)
        .total_tables(POOL_INSTANCES * 4)
        .total_stacks(POOL_INSTANCES)
        .max_memory_size(MAX_MEMORY_BYTES);
    let mut config = base_config(tier);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`], but only while at
/// least one guest call is running: an idle host does not wake up. The
/// thread ends when the last handle is dropped.
///
/// Entering and leaving a call is two atomic operations; the lock is taken
/// only to wake a parked ticker, so it costs the call path nothing.
#[derive(Clone)]
pub(crate) struct EpochTicker {
    handle: Arc<TickerHandle>,
}

struct TickerHandle {
    shared: Arc<TickerShared>,
}

struct TickerShared {
    calls: AtomicUsize,
    parked: AtomicBool,
    stopped: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl TickerShared {
    fn wake(&self) {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.wake.notify_all();
    }

    /// Parks the ticker until a call starts or it is stopped.
    fn park(&self) {
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Announce the park before checking: `enter` increments `calls`
        // before reading `parked`, so (with SeqCst on both sides) either we
        // see its call here, or it sees us parked and wakes us.
        self.parked.store(true, Ordering::SeqCst);
        let _guard = self
            .wake
            .wait_while(guard, |()| {
                self.calls.load(Ordering::SeqCst) == 0 && !self.stopped.load(Ordering::SeqCst)
            })
            .unwrap_or_else(PoisonError::into_inner);
        self.parked.store(false, Ordering::SeqCst);
    }
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let shared = Arc::new(TickerShared {
            calls: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let ticker = shared.clone();
        let spawned = thread::Builder::new()
            .name("tether-epoch".into())
            .spawn(move || {
                while !ticker.stopped.load(Ordering::SeqCst) {
                    if ticker.calls.load(Ordering::SeqCst) == 0 {
                        ticker.park();
                        continue;
                    }
                    thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(
                "could not start the epoch ticker thread, call deadlines will not fire: {e}"
            );
        }
        Self {
            handle: Arc::new(TickerHandle { shared }),
        }
    }

    /// Marks a guest call as running until the guard drops.
    pub(crate) fn enter(&self) -> TickerGuard<'_> {
        let shared = &*self.handle.shared;
        shared.calls.fetch_add(1, Ordering::SeqCst);
        if shared.parked.load(Ordering::SeqCst) {
            shared.wake();
        }
        TickerGuard { shared }
    }
}

impl Drop for TickerHandle {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.wake();
    }
}

pub(crate) struct TickerGuard<'a> {
    shared: &'a TickerShared,
}

impl Drop for TickerGuard<'_> {
    fn drop(&mut self) {
        self.shared.calls.fetch_sub(1, Ordering::SeqCst);
    }
}
