//! Bindings for `tether:extension@0.1.0`, frozen. Its imports are
//! implemented once, for the newest version: each 0.1.0 host function
//! converts its arguments and results to and from the newest types and
//! calls the newest one (the way Zed's extension host keeps old extensions
//! running).

wasmtime::component::bindgen!({
    path: "../wit/since_v0_1_0",
    world: "extension",
});

use self::tether::extension::{host, outbound_http, types};
use super::latest;

impl From<types::Level> for latest::types::Level {
    fn from(level: types::Level) -> Self {
        match level {
            types::Level::Trace => Self::Trace,
            types::Level::Debug => Self::Debug,
            types::Level::Info => Self::Info,
            types::Level::Warn => Self::Warn,
            types::Level::Error => Self::Error,
        }
    }
}

impl From<types::StatusState> for latest::types::StatusState {
    fn from(state: types::StatusState) -> Self {
        match state {
            types::StatusState::Transitioning => Self::Transitioning,
            types::StatusState::Success => Self::Success,
            types::StatusState::Warning => Self::Warning,
            types::StatusState::Error => Self::Error,
        }
    }
}

impl From<latest::types::ConnectionStatus> for types::ConnectionStatus {
    fn from(status: latest::types::ConnectionStatus) -> Self {
        use latest::types::ConnectionStatus as S;
        match status {
            S::Connected => Self::Connected,
            S::Disconnected => Self::Disconnected,
            S::Expired => Self::Expired,
            S::NotConnected => Self::NotConnected,
        }
    }
}

impl From<latest::types::MachineInfo> for types::MachineInfo {
    fn from(m: latest::types::MachineInfo) -> Self {
        Self {
            resource_id: m.resource_id,
            name: m.name,
            location: m.location,
            os_type: m.os_type,
            os_name: m.os_name,
            vm_id: m.vm_id,
            tenant_id: m.tenant_id,
            status: m.status.into(),
        }
    }
}

impl From<latest::types::Error> for types::Error {
    fn from(e: latest::types::Error) -> Self {
        Self {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<types::Error> for latest::types::Error {
    fn from(e: types::Error) -> Self {
        Self {
            code: e.code,
            message: e.message,
        }
    }
}

impl types::Host for crate::runtime::host_api::HostState {}

impl host::Host for crate::runtime::host_api::HostState {
    fn log(&mut self, level: types::Level, message: String) {
        latest::host::Host::log(self, level.into(), message)
    }

    fn setting(&mut self, key: String) -> Option<String> {
        latest::host::Host::setting(self, key)
    }

    fn protected_setting(&mut self, key: String) -> Option<String> {
        latest::host::Host::protected_setting(self, key)
    }

    fn machine(&mut self) -> types::MachineInfo {
        latest::host::Host::machine(self).into()
    }

    fn report_status(&mut self, state: types::StatusState, message: String) {
        latest::host::Host::report_status(self, state.into(), message)
    }

    fn kv_get(&mut self, key: String) -> Option<String> {
        latest::host::Host::kv_get(self, key)
    }

    fn kv_set(&mut self, key: String, value: String) -> Result<(), types::Error> {
        latest::host::Host::kv_set(self, key, value).map_err(Into::into)
    }

    fn kv_delete(&mut self, key: String) -> Result<bool, types::Error> {
        latest::host::Host::kv_delete(self, key).map_err(Into::into)
    }

    fn kv_list(&mut self) -> Vec<String> {
        latest::host::Host::kv_list(self)
    }
}

impl outbound_http::Host for crate::runtime::host_api::HostState {
    fn send(
        &mut self,
        request: outbound_http::Request,
    ) -> Result<outbound_http::Response, types::Error> {
        let request = latest::outbound_http::Request {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        latest::outbound_http::Host::send(self, request)
            .map(|r| outbound_http::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(Into::into)
    }
}
