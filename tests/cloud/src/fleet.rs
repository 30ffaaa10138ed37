//! The fleet at a glance: machines by status, their extensions, and what
//! serving them costs this process (for the operator's page, the admin API
//! and the simulator's report).

use crate::Cloud;
use crate::arm::status_of;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    pub machines: usize,
    pub connected: usize,
    pub disconnected: usize,
    pub expired: usize,
    pub extensions: usize,
    pub operations_in_progress: usize,
    /// This process's resident memory, where the system says (Linux).
    pub resident_bytes: Option<u64>,
}

pub fn summary(cloud: &Cloud) -> Fleet {
    let now = cloud.now();
    let mut fleet = cloud.read(|m| {
        let mut fleet = Fleet {
            extensions: m.extensions.count(),
            operations_in_progress: m
                .operations
                .values()
                .filter(|op| op.status == "InProgress")
                .count(),
            ..Fleet::default()
        };
        for record in m.machines.values() {
            fleet.machines += 1;
            match status_of(record, now) {
                "Connected" => fleet.connected += 1,
                "Disconnected" => fleet.disconnected += 1,
                _ => fleet.expired += 1,
            }
        }
        fleet
    });
    fleet.resident_bytes = resident_bytes();
    fleet
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
