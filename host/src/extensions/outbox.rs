//! Status reports the cloud has not acknowledged yet. A report is kept
//! here before it is sent and dropped only when the agent service has
//! answered it, so one failed report never leaves the cloud's operation
//! waiting forever: every reconcile pass sends what is still here first.
//! A newer report for an extension replaces its older one.

use crate::state::{Access, StateRoot, write_atomic};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tether_cloud_api::agent::ExtensionStatusReport;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Outbox {
    #[serde(default = "schema")]
    schema: u32,
    /// By the extension resource's name, lowercase.
    #[serde(default)]
    pending: BTreeMap<String, Pending>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    name: String,
    report: ExtensionStatusReport,
}

fn schema() -> u32 {
    1
}

fn load(state: &StateRoot) -> Result<Outbox> {
    let path = state.report_outbox();
    match std::fs::read(&path) {
        // A damaged outbox only costs reports the next pass sends anew.
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!("{} is damaged ({e}); starting it afresh", path.display());
            Outbox::default()
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Outbox::default()),
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

fn save(state: &StateRoot, outbox: &Outbox) -> Result<()> {
    write_atomic(
        &state.report_outbox(),
        &serde_json::to_vec_pretty(outbox)?,
        Access::Private,
    )
}

/// Keeps `report` until it is acknowledged.
pub fn put(state: &StateRoot, name: &str, report: ExtensionStatusReport) -> Result<()> {
    let mut outbox = load(state)?;
    outbox.schema = schema();
    outbox.pending.insert(
        name.to_ascii_lowercase(),
        Pending {
            name: name.to_string(),
            report,
        },
    );
    save(state, &outbox)
}

/// Sends every kept report with `send`; drops those it acknowledged and
/// returns the failures (name, error) of the others, which stay.
pub fn flush(
    state: &StateRoot,
    send: &dyn Fn(&str, &ExtensionStatusReport) -> Result<()>,
) -> Result<Vec<(String, anyhow::Error)>> {
    let mut outbox = load(state)?;
    if outbox.pending.is_empty() {
        return Ok(Vec::new());
    }
    let mut failures = Vec::new();
    outbox
        .pending
        .retain(|_, pending| match send(&pending.name, &pending.report) {
            Ok(()) => false,
            Err(e) => {
                failures.push((pending.name.clone(), e));
                true
            }
        });
    save(state, &outbox)?;
    Ok(failures)
}

/// How many reports wait for the cloud.
pub fn len(state: &StateRoot) -> usize {
    load(state).map(|o| o.pending.len()).unwrap_or(0)
}
