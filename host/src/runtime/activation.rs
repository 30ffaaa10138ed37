//! One activation of an extension: a store with its limits, an instance,
//! and the calls made into it.

use super::LoadedExtension;
use super::capabilities::{Harvest, Setup, Units};
use super::error::{GuestError, GuestErrorKind, classify};
use super::host_api::HostState;
use super::limits::{Limiter, MAX_OUTPUT_BYTES};
use super::log_capture::{LogCapture, LogRecord};
use super::tiers::Code;
use super::wit::{Bindings, StatusState, lifecycle_call};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

/// A call into the extension's `lifecycle` export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Install,
    Enable,
    Disable,
    Update { from_version: String },
    Uninstall,
    Invoke { command: String, args: Vec<String> },
}

impl Call {
    /// The call as an operator would name it: `enable`, `invoke greet`.
    pub fn name(&self) -> String {
        match self {
            Call::Install => "install".into(),
            Call::Enable => "enable".into(),
            Call::Disable => "disable".into(),
            Call::Update { .. } => "update".into(),
            Call::Uninstall => "uninstall".into(),
            Call::Invoke { command, .. } => format!("invoke {command}"),
        }
    }
}

/// A status the extension reported during the call.
#[derive(Debug, Clone)]
pub struct ReportedStatus {
    pub state: StatusState,
    pub message: String,
}

/// What a successful call produced.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// `invoke`'s output; `None` for the other calls.
    pub output: Option<String>,
    /// What the extension logged during the call, within the log budget.
    pub logs: Vec<LogRecord>,
    /// Lines past the budget, counted but not kept.
    pub dropped_logs: usize,
    pub status: Option<ReportedStatus>,
    /// The JSON document the extension reported, if it did (0.2.0).
    pub document: Option<String>,
}

/// A store and an instance, reused across calls until a call traps; a
/// trapped instance is never entered again, and the next call starts from
/// a fresh instance.
pub struct Activation<'a> {
    extension: &'a LoadedExtension,
    live: Option<Live>,
    /// Logs of the last failed call, for callers that show them.
    last_logs: Vec<LogRecord>,
}

struct Live {
    /// The code the store's instance runs (the extension's may move on to
    /// a newer tier meanwhile; this instance stays on its own).
    code: Arc<Code>,
    store: Store<HostState>,
    bindings: Bindings,
    capture: Arc<LogCapture>,
}

impl<'a> Activation<'a> {
    pub(crate) fn new(extension: &'a LoadedExtension) -> Self {
        Self {
            extension,
            live: None,
            last_logs: Vec::new(),
        }
    }

    /// What the extension logged during the last call that failed.
    pub fn last_failure_logs(&self) -> &[LogRecord] {
        &self.last_logs
    }

    fn error(&self, call: &Call, kind: GuestErrorKind) -> GuestError {
        GuestError {
            extension: self.extension.spec.id.clone(),
            call: call.name(),
            kind,
        }
    }

    fn instantiate(&self, call: &Call) -> Result<Live, GuestError> {
        let ext = self.extension;
        let capture = Arc::new(LogCapture::new(&ext.spec.id));
        let deadline = Instant::now() + ext.spec.limits.call_timeout;
        // Nothing is inherited: no environment, arguments, network or name
        // lookups. Clocks and random are WASI's; the rest is what the
        // capability units add from the grants.
        let mut builder = WasiCtxBuilder::new();
        builder
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let units = Units::prepare(&mut Setup {
            extension: ext,
            capture: &capture,
            wasi: &mut builder,
            deadline,
        })
        .map_err(|e| self.error(call, GuestErrorKind::Instantiate(format!("{e:#}"))))?;
        let state = HostState {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(ext.spec.limits.memory_bytes),
            deadline,
            cpu: ext.cpu.clone(),
            cpu_mark: Instant::now(),
            units,
        };
        let code = ext.code.current();
        let mut store = Store::new(&code.engine, state);
        store.limiter(|state| &mut state.limiter);
        // At every epoch tick: past the call's deadline, stop the guest;
        // past the CPU budget, make it wait; else carry on to the next tick.
        store.epoch_deadline_callback(|mut ctx| {
            let data = ctx.data_mut();
            if Instant::now() >= data.deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            if let Some(governor) = &data.cpu {
                let used = data.cpu_mark.elapsed();
                if let Some(wait) = governor.charge(used) {
                    std::thread::sleep(
                        wait.min(data.deadline.saturating_duration_since(Instant::now())),
                    );
                }
                data.cpu_mark = Instant::now();
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store.set_epoch_deadline(1);
        let running = code.ticker.enter();
        let instance = code.pre.instantiate(&mut store);
        drop(running);
        match instance {
            Ok(bindings) => Ok(Live {
                code,
                store,
                bindings,
                capture,
            }),
            Err(e) => {
                let tail = capture.take().stderr_tail;
                let kind = match classify(&e, ext.spec.limits.call_timeout, &tail) {
                    GuestErrorKind::Trap(text) => GuestErrorKind::Instantiate(text),
                    other => other,
                };
                Err(self.error(call, kind))
            }
        }
    }

    /// Instantiates now rather than at the first call.
    pub fn prepare(&mut self) -> Result<(), GuestError> {
        if self.live.is_none() {
            self.live = Some(self.instantiate(&Call::Install)?);
        }
        Ok(())
    }

    /// Makes one call, instantiating first if needed.
    pub fn call(&mut self, call: Call) -> Result<CallOutcome, GuestError> {
        self.call_within(call, None)
    }

    /// Makes one call that ends by `max` if that is sooner than the
    /// extension's own call timeout (a run command's `timeoutInSeconds`).
    pub fn call_within(
        &mut self,
        call: Call,
        max: Option<std::time::Duration>,
    ) -> Result<CallOutcome, GuestError> {
        let mut live = match self.live.take() {
            Some(live) => live,
            None => self.instantiate(&call)?,
        };
        let own = self.extension.spec.limits.call_timeout;
        let timeout = max.map_or(own, |max| max.min(own));
        live.store.set_epoch_deadline(1);
        let now = Instant::now();
        let data = live.store.data_mut();
        data.deadline = now + timeout;
        data.cpu_mark = now;
        data.units.begin_call(now + timeout);

        let result = {
            let _running = live.code.ticker.enter();
            let store = &mut live.store;
            match &call {
                Call::Install => lifecycle_call!(&live.bindings, store, |l, s| l.call_install(s))
                    .map(|r| r.map(|()| None)),
                Call::Enable => lifecycle_call!(&live.bindings, store, |l, s| l.call_enable(s))
                    .map(|r| r.map(|()| None)),
                Call::Disable => lifecycle_call!(&live.bindings, store, |l, s| l.call_disable(s))
                    .map(|r| r.map(|()| None)),
                Call::Update { from_version } => lifecycle_call!(&live.bindings, store, |l, s| l
                    .call_update(s, from_version))
                .map(|r| r.map(|()| None)),
                Call::Uninstall => lifecycle_call!(&live.bindings, store, |l, s| l
                    .call_uninstall(s))
                .map(|r| r.map(|()| None)),
                Call::Invoke { command, args } => lifecycle_call!(&live.bindings, store, |l, s| l
                    .call_invoke(s, command, args))
                .map(|r| r.map(Some)),
            }
        };
        let captured = live.capture.take();
        let Harvest { status, document } = live.store.data_mut().units.end_call();

        let kind = match result {
            Ok(Ok(output)) => {
                if let Some(size) = output
                    .as_ref()
                    .map(String::len)
                    .filter(|&n| n > MAX_OUTPUT_BYTES)
                {
                    GuestErrorKind::OutputTooLarge {
                        size,
                        limit: MAX_OUTPUT_BYTES,
                    }
                } else {
                    self.live = Some(live);
                    self.last_logs.clear();
                    return Ok(CallOutcome {
                        output,
                        logs: captured.records,
                        dropped_logs: captured.dropped,
                        status,
                        document,
                    });
                }
            }
            Ok(Err((code, message))) => GuestErrorKind::Returned { code, message },
            Err(trap) => classify(&trap, timeout, &captured.stderr_tail),
        };
        if !kind.is_trap() {
            self.live = Some(live);
        }
        // A trapped instance is dropped here and never entered again.
        self.last_logs = captured.records;
        Err(self.error(&call, kind))
    }
}
