//! The host side of the contract: each import a guest calls, handed to the
//! capability unit that serves it (`capabilities/`).

use super::capabilities::Units;
use super::limits::Limiter;
use super::wit::latest::{host, outbound_http, types};
use super::wit::{Level, StatusState};
use std::time::Instant;
use types::{Error as WitError, MachineInfo as WitMachineInfo};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The data of one activation's store.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// When the current call must end; bounds blocking host calls.
    pub(crate) deadline: Instant,
    pub(crate) cpu: Option<std::sync::Arc<super::CpuGovernor>>,
    /// When the guest last started running, or was last charged for.
    /// Guest execution between epoch checks is charged as wall time: a
    /// thread CPU clock costs a system call per guest call, wall time a
    /// vDSO read, and it can only be stricter.
    pub(crate) cpu_mark: Instant,
    pub(crate) units: Units,
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        let outbound = &mut self.units.outbound;
        wasmtime_wasi_http::WasiHttpCtxView {
            hooks: &mut outbound.wasi_hooks,
            table: &mut self.table,
            ctx: &mut outbound.wasi_ctx,
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
/// store to grant nothing but clocks, random, captured stdio and what the
/// units add), its clock bound to the call's deadline, each unit's own
/// interfaces (`wasi:http`'s outgoing handler), and every version of the
/// `tether:extension` imports.
pub(crate) fn linker(engine: &wasmtime::Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| anyhow::anyhow!("could not link WASI: {e}"))?;
    super::deadline_clock::link(&mut linker)?;
    Units::link(&mut linker)?;
    super::wit::add_to_linker(&mut linker)?;
    Ok(linker)
}

fn invalid_argument(message: String) -> WitError {
    WitError {
        code: "invalid-argument".into(),
        message,
    }
}

fn kv_error(e: super::capabilities::kv::KvError) -> WitError {
    WitError {
        code: e.code().into(),
        message: e.to_string(),
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        self.units.logging.log(level, &message);
    }

    fn setting(&mut self, key: String) -> Option<String> {
        self.units.settings.public(&key)
    }

    fn protected_setting(&mut self, key: String) -> Option<String> {
        self.units.settings.protected(&key)
    }

    fn machine(&mut self) -> WitMachineInfo {
        let m = self.units.machine.now();
        WitMachineInfo {
            resource_id: m.resource_id,
            name: m.name,
            location: m.location,
            os_type: m.os_type,
            os_name: m.os_name,
            vm_id: m.vm_id,
            tenant_id: m.tenant_id,
            status: m.status,
        }
    }

    fn report_status(&mut self, state: StatusState, message: String) {
        self.units.status.report(state, &message);
    }

    fn report_document(&mut self, json: String) -> Result<(), WitError> {
        self.units.status.document(json).map_err(invalid_argument)
    }

    fn kv_get(&mut self, key: String) -> Option<String> {
        let read = self.units.kv.store().get(&key);
        read.unwrap_or_else(|e| {
            // `get` has no error in the contract: an unreadable store
            // reads as empty, and the operator is told.
            self.units.logging.host(Level::Error, &e.to_string());
            None
        })
    }

    fn kv_set(&mut self, key: String, value: String) -> Result<(), WitError> {
        self.units.kv.store().set(&key, &value).map_err(kv_error)
    }

    fn kv_delete(&mut self, key: String) -> Result<bool, WitError> {
        self.units.kv.store().delete(&key).map_err(kv_error)
    }

    fn kv_list(&mut self) -> Vec<String> {
        self.units.kv.store().keys().unwrap_or_default()
    }
}

impl outbound_http::Host for HostState {
    fn send(
        &mut self,
        request: outbound_http::Request,
    ) -> Result<outbound_http::Response, WitError> {
        self.units.outbound.send(request)
    }
}
