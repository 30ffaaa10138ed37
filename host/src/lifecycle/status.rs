//! What `show` reports about the agent's recent life: its last heartbeat
//! and its last error. Public (no secrets: errors never carry them).

use crate::state::{Access, StateRoot, record};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub last_heartbeat: Option<u64>,
    pub last_error: Option<LastError>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub code: String,
    pub details: String,
    pub time: u64,
}

fn path(state: &StateRoot) -> std::path::PathBuf {
    state.path().join("agent-status.json")
}

pub fn load(state: &StateRoot) -> AgentStatus {
    // Damaged is as good as absent: it only feeds `show`.
    record::read(&path(state), "")
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn save(state: &StateRoot, status: &AgentStatus) {
    // Best effort: failing to record status must not fail the operation.
    let _ = record::write(&path(state), status, Access::Public);
}

pub fn record_heartbeat(state: &StateRoot) {
    let mut status = load(state);
    status.last_heartbeat = Some(crate::util::now());
    save(state, &status);
}

pub fn record_error(state: &StateRoot, code: &str, details: &str) {
    let mut status = load(state);
    status.last_error = Some(LastError {
        code: code.into(),
        details: details.into(),
        time: crate::util::now(),
    });
    save(state, &status);
}

/// A disconnected machine has no heartbeat to show.
pub fn forget_heartbeat(state: &StateRoot) {
    let mut status = load(state);
    status.last_heartbeat = None;
    save(state, &status);
}

/// Azure's rule: a machine is Connected while it heartbeats within 15
/// minutes, Disconnected after, and Expired after 45 days without one.
const DISCONNECTED_AFTER: u64 = 15 * 60;
const EXPIRED_AFTER: u64 = 45 * 24 * 3600;

/// The machine an extension sees: its registration (resource id, name,
/// location, VM id, tenant) and its connection status from the last
/// heartbeat, read now.
pub fn machine_info(state: &StateRoot) -> crate::runtime::MachineInfo {
    use crate::runtime::ConnectionStatus;
    let mut info = crate::runtime::MachineInfo::local();
    // Unreadable is as good as absent: the extension is told not connected.
    let Ok(Some(registration)) = super::Registration::load(state) else {
        return info;
    };
    let since = load(state)
        .last_heartbeat
        .map(|at| crate::util::now().saturating_sub(at));
    info.status = match since {
        Some(age) if age <= DISCONNECTED_AFTER => ConnectionStatus::Connected,
        Some(age) if age > EXPIRED_AFTER => ConnectionStatus::Expired,
        _ => ConnectionStatus::Disconnected,
    };
    info.resource_id = registration.resource_id;
    info.name = registration.resource_name;
    info.location = registration.location;
    info.vm_id = registration.vm_id;
    info.tenant_id = registration.tenant_id;
    info
}
