//! `tether disconnect`, journaled in three steps: (1) every extension
//! removed, (2) the machine resource deleted (unless --force-local-only),
//! (3) the local registration, identity key, cached tokens and challenge
//! files removed. Operator settings are kept.

use super::journal::{self, Journal};
use super::registration::{Registration, remove_if_exists};
use super::{LifecycleError, machine_key};
use crate::auth::{SignIn, arm_token};
use crate::cloud::ProxyPolicy;
use crate::cloud::arm::ArmClient;
use crate::config::Settings;
use crate::extensions::manager::{Manager, installed};
use crate::state::StateRoot;
use anyhow::Result;
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;

pub struct DisconnectRequest {
    pub sign_in: Option<SignIn>,
    pub force_local_only: bool,
}

/// What a disconnect removes (`--dry-run` prints it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub extensions: Vec<String>,
    /// The resource to delete; `None` with --force-local-only.
    pub resource: Option<String>,
    pub local_files: Vec<PathBuf>,
    /// Steps an interrupted disconnect already did.
    pub already_done: Vec<String>,
}

fn local_files(state: &StateRoot) -> Vec<PathBuf> {
    vec![
        state.path().join("registration.json"),
        machine_key::active_path(state),
        state.path().join("tokens"),
        state.path().join("challenges"),
    ]
}

pub fn plan(state: &StateRoot, force_local_only: bool) -> Result<Plan> {
    let pending = journal::pending(state, "disconnect")?;
    let registration = Registration::load(state)?;
    let resource = registration
        .as_ref()
        .map(|r| r.resource_id.clone())
        .or_else(|| {
            pending.as_ref().and_then(|p| {
                p.data
                    .get("resourceId")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
        });
    if resource.is_none() {
        return Err(LifecycleError::NotConnected.into());
    }
    let extensions = installed(state).into_iter().map(|e| e.id).collect();
    Ok(Plan {
        extensions,
        resource: resource.filter(|_| !force_local_only),
        local_files: local_files(state)
            .into_iter()
            .filter(|p| p.exists())
            .collect(),
        already_done: pending.map(|p| p.done).unwrap_or_default(),
    })
}

/// Disconnects the manager's state root, resuming an interrupted
/// disconnect from its journal. The manager removes the extensions: in the
/// service, the one that hosts them.
pub fn disconnect(
    manager: &mut Manager,
    settings: &Settings,
    request: DisconnectRequest,
    say: &mut dyn FnMut(&str),
) -> Result<Plan> {
    let state = &manager.state().clone();
    let plan = plan(state, request.force_local_only)?;
    let registration = Registration::load(state)?;
    let pending = journal::pending(state, "disconnect")?;
    let data = match (&registration, &pending) {
        (Some(r), _) => json!({
            "resourceId": r.resource_id,
            "endpoints": r.endpoints,
            "caCert": r.cloud_ca_cert,
            "correlationId": r.correlation_id,
        }),
        (None, Some(p)) => p.data.clone(),
        (None, None) => return Err(LifecycleError::NotConnected.into()),
    };
    let resource_id = data["resourceId"].as_str().unwrap_or_default().to_string();
    let resumed = pending.as_ref().is_some_and(|p| !p.done.is_empty());
    if resumed {
        say(&format!(
            "resuming an interrupted disconnect (done: {})…",
            plan.already_done.join(", ")
        ));
    }

    // Sign in first, and delete the resource before touching anything
    // local: a refusal (403) must leave the machine exactly as it was.
    let needs_cloud =
        !request.force_local_only && !pending.as_ref().is_some_and(|p| p.has("resource-deleted"));
    let arm = if needs_cloud {
        let sign_in = request.sign_in.clone().ok_or_else(|| anyhow::anyhow!("sign-in flags are needed to delete the machine resource (or --force-local-only to remove only the local registration)"))?;
        let endpoints: crate::cloud::Endpoints = serde_json::from_value(data["endpoints"].clone())?;
        let ca = data["caCert"].as_str().map(|s| s.as_bytes().to_vec());
        let proxy = ProxyPolicy::from_settings(settings);
        say(&format!("signing in ({})…", sign_in.kind()));
        let token = arm_token(&sign_in, &endpoints, &proxy, ca.as_deref(), say)?;
        Some(ArmClient::new(&endpoints, &proxy, ca.as_deref(), token)?)
    } else {
        None
    };

    // Every cloud deletion first (the extensions' records, then the
    // machine), so that a refusal at any of them leaves everything local
    // as it was; only then the local removal, resumable from the journal.
    let mut journal = Journal::begin(state, "disconnect", data.clone())?;
    let extensions = manager.list()?;
    if let Some(arm) = &arm
        && !journal.entry().has("resource-deleted")
    {
        let correlation = data["correlationId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let give_up = |journal: Journal, error: LifecycleError| -> Result<Plan> {
            if !resumed {
                // Nothing was done yet: leave no trace of this attempt.
                journal.finish()?;
            }
            Err(error.into())
        };
        for ext in &extensions {
            let name = match &ext.cloud {
                Some(cloud) => cloud.name.clone(),
                None => ext.id.rsplit('/').next().unwrap_or(&ext.id).to_string(),
            };
            say(&format!(
                "deleting the cloud record of extension {}…",
                ext.id
            ));
            if let Err(e) = arm.delete_extension(&resource_id, &name, &correlation)? {
                return give_up(
                    journal,
                    LifecycleError::ArmDeleteFailed(format!(
                        "could not delete the cloud record of extension {}: {e}; nothing local was changed",
                        ext.id
                    )),
                );
            }
        }
        say(&format!("deleting {resource_id}…"));
        if let Err(e) = arm.delete_machine(&resource_id, &correlation)? {
            return give_up(
                journal,
                match e.status {
                    403 => LifecycleError::ArmDeleteFailed(format!(
                        "not allowed to delete the machine resource: {}. Deleting needs Microsoft.HybridCompute/machines/delete (the Azure Connected Machine Resource Administrator role); nothing was changed. If the resource is already gone, `tether disconnect --force-local-only` removes the local registration",
                        e.message.trim_end_matches('.')
                    )),
                    _ => LifecycleError::ArmDeleteFailed(format!(
                        "could not delete the machine resource: {e}; nothing local was changed"
                    )),
                },
            );
        }
    }
    if !journal.entry().has("resource-deleted") {
        journal.done("resource-deleted")?;
    }
    if !journal.entry().has("extensions-removed") {
        for ext in manager.list()? {
            say(&format!("removing extension {}…", ext.id));
            for warning in manager.remove(&ext.id)? {
                say(&format!("  {}: {warning}", ext.id));
            }
        }
        journal.done("extensions-removed")?;
    }
    say("removing the local registration…");
    Registration::remove(state)?;
    machine_key::remove_active(state)?;
    for dir in [state.path().join("tokens"), state.path().join("challenges")] {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
    }
    remove_if_exists(&state.path().join("login.json"))?;
    super::status::forget_heartbeat(state);
    journal.done("local-removed")?;
    journal.finish()?;
    Ok(plan)
}
