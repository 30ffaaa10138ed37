//! Status reports the cloud has not acknowledged yet. A report is kept
//! here before it is sent and dropped only when the agent service has
//! answered it, so one failed report never leaves the cloud's operation
//! waiting forever: every reconcile pass sends what is still here first.
//! A newer report for an extension replaces its older one.

use crate::state::{Access, StateRoot, record};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tether_cloud_api::agent::ExtensionStatusReport;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Outbox {
    /// By the extension resource's name, lowercase.
    #[serde(default)]
    pending: BTreeMap<String, Pending>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    name: String,
    report: ExtensionStatusReport,
}

fn load(state: &StateRoot) -> Result<Outbox> {
    let path = state.report_outbox();
    match record::read(&path, "starting it afresh") {
        Ok(outbox) => Ok(outbox.unwrap_or_default()),
        Err(e) if e.downcast_ref::<record::NewerState>().is_some() => Err(e),
        // A damaged outbox only costs reports the next pass sends anew.
        Err(e) => {
            tracing::warn!("{e:#}");
            Ok(Outbox::default())
        }
    }
}

fn save(state: &StateRoot, outbox: &Outbox) -> Result<()> {
    record::write(&state.report_outbox(), outbox, Access::Private)
}

/// Keeps `report` until it is acknowledged.
pub fn put(state: &StateRoot, name: &str, report: ExtensionStatusReport) -> Result<()> {
    let mut outbox = load(state)?;
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
