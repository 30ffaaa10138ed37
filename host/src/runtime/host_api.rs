//! The host side of the contract: what a guest's imports do.

use super::ExtensionSpec;
use super::kv::KvStore;
use super::limits::Limiter;
use super::log_capture::{LogCapture, LogSource};
use super::outbound::HttpClient;
use super::wit::latest::{host, outbound_http, types};
use super::wit::{Level, StatusState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use types::{Error as WitError, MachineInfo as WitMachineInfo};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The most a reported document may hold.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The data of one activation's store.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) spec: Arc<ExtensionSpec>,
    pub(crate) kv: Arc<Mutex<KvStore>>,
    pub(crate) capture: Arc<LogCapture>,
    pub(crate) http: Arc<HttpClient>,
    /// When the current call must end; bounds blocking host calls.
    pub(crate) deadline: Instant,
    pub(crate) cpu: Option<Arc<super::CpuGovernor>>,
    /// When the guest last started running, or was last charged for.
    /// Guest execution between epoch checks is charged as wall time: a
    /// thread CPU clock costs a system call per guest call, wall time a
    /// vDSO read, and it can only be stricter.
    pub(crate) cpu_mark: Instant,
    pub(crate) status: Option<(StatusState, String)>,
    /// The JSON document reported during the call (0.2.0).
    pub(crate) document: Option<String>,
    pub(crate) http_ctx: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) http_hooks: super::wasi_http::Hooks,
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        self.http_hooks.deadline = self.deadline;
        wasmtime_wasi_http::WasiHttpCtxView {
            hooks: &mut self.http_hooks,
            table: &mut self.table,
            ctx: &mut self.http_ctx,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The linker every extension is instantiated with: WASI (configured per
/// store to grant nothing but clocks, random, captured stdio and the
/// directories granted), `wasi:http`'s outgoing handler (through the
/// extension's outbound grant), and the `tether:extension` imports.
pub(crate) fn linker(engine: &wasmtime::Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| anyhow::anyhow!("could not link WASI: {e}"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
        .map_err(|e| anyhow::anyhow!("could not link wasi:http: {e}"))?;
    super::deadline_clock::link(&mut linker)?;
    super::wit::add_to_linker(&mut linker)?;
    Ok(linker)
}

impl HostState {
    fn kv(&self) -> std::sync::MutexGuard<'_, KvStore> {
        self.kv.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn kv_error(e: super::kv::KvError) -> WitError {
    WitError {
        code: e.code().into(),
        message: e.to_string(),
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        self.capture.log(level, LogSource::Log, &message);
    }

    fn setting(&mut self, key: String) -> Option<String> {
        self.spec.settings.get(&key).map(|v| v.to_string())
    }

    fn protected_setting(&mut self, key: String) -> Option<String> {
        self.spec
            .protected_settings
            .get(&key)
            .map(|v| v.to_string())
    }

    fn machine(&mut self) -> WitMachineInfo {
        let m = self.spec.machine.now();
        WitMachineInfo {
            resource_id: m.resource_id.clone(),
            name: m.name.clone(),
            location: m.location.clone(),
            os_type: m.os_type.clone(),
            os_name: m.os_name.clone(),
            vm_id: m.vm_id.clone(),
            tenant_id: m.tenant_id.clone(),
            status: m.status,
        }
    }

    fn report_status(&mut self, state: StatusState, message: String) {
        let message: String = message.chars().take(4096).collect();
        self.status = Some((state, message));
    }

    fn report_document(&mut self, json: String) -> Result<(), WitError> {
        let invalid = |message: String| WitError {
            code: "invalid-argument".into(),
            message,
        };
        if json.len() > MAX_DOCUMENT_BYTES {
            return Err(invalid(format!(
                "a document is at most {MAX_DOCUMENT_BYTES} bytes; this one is {}",
                json.len()
            )));
        }
        match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(serde_json::Value::Object(_)) => {
                self.document = Some(json);
                Ok(())
            }
            Ok(_) => Err(invalid("a document is one JSON object".into())),
            Err(e) => Err(invalid(format!("the document is not JSON: {e}"))),
        }
    }

    fn kv_get(&mut self, key: String) -> Option<String> {
        match self.kv().get(&key) {
            Ok(value) => value,
            Err(e) => {
                // `get` has no error in the contract: an unreadable store
                // reads as empty, and the operator is told.
                self.capture
                    .log(Level::Error, LogSource::Host, &e.to_string());
                None
            }
        }
    }

    fn kv_set(&mut self, key: String, value: String) -> Result<(), WitError> {
        self.kv().set(&key, &value).map_err(kv_error)
    }

    fn kv_delete(&mut self, key: String) -> Result<bool, WitError> {
        self.kv().delete(&key).map_err(kv_error)
    }

    fn kv_list(&mut self) -> Vec<String> {
        self.kv().keys().unwrap_or_default()
    }
}

impl outbound_http::Host for HostState {
    fn send(
        &mut self,
        request: outbound_http::Request,
    ) -> Result<outbound_http::Response, WitError> {
        self.http.send(&self.spec.outbound, request, self.deadline)
    }
}
