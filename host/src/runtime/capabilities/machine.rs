//! What an extension may know about its machine.

use super::{Setup, Unit};
use crate::runtime::wit::ConnectionStatus;
use std::sync::Arc;

/// The machine an extension runs on, as the contract's `machine-info`.
#[derive(Debug, Clone)]
pub struct MachineInfo {
    pub resource_id: String,
    pub name: String,
    pub location: String,
    pub os_type: String,
    pub os_name: String,
    pub vm_id: String,
    pub tenant_id: String,
    pub status: ConnectionStatus,
}

impl MachineInfo {
    /// This machine as seen locally, before it is connected anywhere.
    pub fn local() -> Self {
        Self {
            resource_id: String::new(),
            name: hostname(),
            location: String::new(),
            os_type: std::env::consts::OS.to_string(),
            os_name: os_name(),
            vm_id: String::new(),
            tenant_id: String::new(),
            status: ConnectionStatus::NotConnected,
        }
    }
}

/// Where a loaded extension's `machine()` looks at each call: the machine
/// changes under a loaded extension (it connects, heartbeats, goes quiet),
/// and the service keeps extensions loaded for its whole run.
#[derive(Clone)]
pub struct MachineView(Arc<dyn Fn() -> MachineInfo + Send + Sync>);

impl MachineView {
    /// The same machine at every call.
    pub fn fixed(info: MachineInfo) -> Self {
        Self(Arc::new(move || info.clone()))
    }

    /// The machine as `look` finds it at each call.
    pub fn live(look: impl Fn() -> MachineInfo + Send + Sync + 'static) -> Self {
        Self(Arc::new(look))
    }

    pub fn now(&self) -> MachineInfo {
        (self.0)()
    }
}

impl std::fmt::Debug for MachineView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MachineView")
    }
}

/// The machine's host name, or `localhost` when it cannot be read.
pub fn hostname() -> String {
    let from_env = std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty());
    let from_file = || {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    from_env
        .filter(|_| cfg!(windows))
        .or_else(from_file)
        .unwrap_or_else(|| "localhost".to_string())
}

/// A human name of the operating system: `PRETTY_NAME` from
/// /etc/os-release on Linux, the family name elsewhere.
pub fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

/// The machine capability in one instance: the view it reads at each call.
pub(crate) struct Machine {
    view: MachineView,
}

impl Unit for Machine {
    fn prepare(setup: &mut Setup<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            view: setup.spec().machine.clone(),
        })
    }
}

impl Machine {
    pub(crate) fn now(&self) -> MachineInfo {
        self.view.now()
    }
}
