//! `tether rename NEW-NAME`: the five steps Azure Arc documents for
//! renaming a machine (record the extensions, remove them, delete the
//! resource, connect under the new name, redeploy), as one journaled
//! command. Killed at any step, the next `tether rename NEW-NAME` resumes
//! from the journal: the steps it reuses (disconnect, connect, install)
//! are journaled themselves.
//!
//! Each extension is redeployed the way it came. One the cloud deployed
//! gets its extension record on the new resource (same name, version and
//! public settings), and a reconcile pass installs it from the cloud and
//! reports it, which completes that record's operation. One installed
//! locally is installed again from its package, copied beside the journal
//! before anything is removed, with its settings and enabled state.
//!
//! Protected settings are never written: the process doing the rename
//! fetches the cloud's current ones before removing anything, holds them
//! in memory, and puts them on the new records. The journal records only
//! which extensions had any, so that a rename resumed after a kill (the
//! memory gone) names the ones it could not carry.

use super::connect::{ConnectRequest, connect};
use super::disconnect::{DisconnectRequest, disconnect};
use super::journal::{self, Journal};
use super::{LifecycleError, Registration};
use crate::auth::SignIn;
use crate::cloud::ProxyPolicy;
use crate::cloud::arm::ArmClient;
use crate::config::Settings;
use crate::extensions::manager::{InstallOptions, Manager, ProtectedSettings, parse_id};
use crate::state::{Access, StateRoot, write_atomic};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use tether_cloud_api::arm::{ExtensionProperties, MachineExtension};
use tether_cloud_api::names::{RESOURCE_NAME_RULE, is_valid_resource_name};

const OPERATION: &str = "rename";

pub struct RenameRequest {
    pub new_name: String,
    /// An ARM sign-in that may delete and create machines and extensions.
    pub sign_in: SignIn,
}

/// One extension as it was before the rename.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Carried {
    id: String,
    version: String,
    enabled: bool,
    settings: Map<String, Value>,
    /// Its extension resource's name, when the cloud deployed it.
    cloud_name: Option<String>,
}

/// The machine as it was (what the new resource is made like).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Before {
    resource_id: String,
    resource_name: String,
    subscription_id: String,
    resource_group: String,
    location: String,
    tags: std::collections::BTreeMap<String, String>,
    cloud: String,
    cloud_ca_cert: Option<String>,
    private_link_scope: Option<String>,
    tenant_id: String,
    endpoints: crate::cloud::Endpoints,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Plan {
    new_name: String,
    before: Before,
    extensions: Vec<Carried>,
    /// The extensions that had protected settings (never the values).
    #[serde(default)]
    had_protected: Vec<String>,
    #[serde(default)]
    redeployed: Vec<String>,
}

/// What a rename did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Renamed {
    pub from: String,
    pub to: String,
    pub resource_id: String,
    pub redeployed: Vec<String>,
    /// What the reconcile on the new resource did with each extension the
    /// cloud deployed.
    pub reconciled: Vec<crate::extensions::reconcile::Outcome>,
    /// Extensions whose protected settings could not be carried: set them
    /// again on the new resource.
    pub protected_settings_not_carried: Vec<String>,
}

fn packages_dir(state: &StateRoot) -> PathBuf {
    state.path().join("journal").join("rename-packages")
}

fn package_path(state: &StateRoot, id: &str) -> Result<PathBuf> {
    Ok(packages_dir(state).join(format!("{}.tpkg", parse_id(id)?.key().replace('/', "."))))
}

/// Where a rename signs in: the registration's cloud, or, when a rename
/// was interrupted between deleting the old resource and creating the new
/// one, the cloud its journal recorded. Returns the endpoints, the CA
/// certificate and the tenant.
pub fn sign_in_target(
    state: &StateRoot,
) -> Result<(crate::cloud::Endpoints, Option<String>, String)> {
    if let Some(r) = Registration::load(state)? {
        return Ok((r.endpoints, r.cloud_ca_cert, r.tenant_id));
    }
    let entry = journal::pending(state, OPERATION)?.ok_or(LifecycleError::NotConnected)?;
    let plan: Plan = serde_json::from_value(entry.data)
        .context("the rename journal is damaged; remove it and check `tether show`")?;
    Ok((
        plan.before.endpoints,
        plan.before.cloud_ca_cert,
        plan.before.tenant_id,
    ))
}

/// Records what the rename carries, before anything is removed.
fn record(
    manager: &Manager,
    registration: &Registration,
    new_name: &str,
    protected: &ProtectedSettings,
) -> Result<Plan> {
    let state = manager.state();
    let mut extensions = Vec::new();
    let mut had_protected = Vec::new();
    for installed in manager.list()? {
        let id = parse_id(&installed.id)?;
        if installed.cloud.is_none() {
            // The cloud redeploys its own from the gallery; the rest are
            // installed again from what is installed now.
            let package = state.extension_dir(&id).join("package.tpkg");
            let bytes = std::fs::read(&package)
                .with_context(|| format!("could not read the package of {}", installed.id))?;
            write_atomic(
                &package_path(state, &installed.id)?,
                &bytes,
                Access::Private,
            )?;
        }
        if protected.contains_key(&id.key()) {
            had_protected.push(installed.id.clone());
        }
        extensions.push(Carried {
            id: installed.id,
            version: installed.version,
            enabled: installed.enabled,
            settings: installed.settings,
            cloud_name: installed.cloud.map(|c| c.name),
        });
    }
    Ok(Plan {
        new_name: new_name.to_string(),
        before: Before {
            resource_id: registration.resource_id.clone(),
            resource_name: registration.resource_name.clone(),
            subscription_id: registration.subscription_id.clone(),
            resource_group: registration.resource_group.clone(),
            location: registration.location.clone(),
            tags: registration.tags.clone(),
            cloud: registration.cloud.clone(),
            cloud_ca_cert: registration.cloud_ca_cert.clone(),
            private_link_scope: registration.private_link_scope.clone(),
            tenant_id: registration.tenant_id.clone(),
            endpoints: registration.endpoints.clone(),
        },
        extensions,
        had_protected,
        redeployed: Vec::new(),
    })
}

fn save(journal: &mut Journal, plan: &Plan) -> Result<()> {
    *journal.data_mut() = serde_json::to_value(plan)?;
    Ok(())
}

/// Renames the machine the manager's state root belongs to.
pub fn rename(
    manager: &mut Manager,
    settings: &Settings,
    request: RenameRequest,
    say: &mut dyn FnMut(&str),
) -> Result<Renamed> {
    let state = manager.state().clone();
    // Held in memory only: the cloud's current protected settings while
    // the old resource still exists, else what this process already held.
    let protected: ProtectedSettings =
        match crate::extensions::reconcile::cloud_protected_settings(&state, settings) {
            Ok(cloud) => cloud,
            Err(_) => manager.protected_settings().clone(),
        };
    let pending = journal::pending(&state, OPERATION)?;
    let mut plan: Plan = match &pending {
        Some(entry) => {
            let plan: Plan = serde_json::from_value(entry.data.clone())
                .context("the rename journal is damaged; remove it and check `tether show`")?;
            anyhow::ensure!(
                plan.new_name == request.new_name,
                "an interrupted rename to `{}` is not finished: run `tether rename {}` to finish it first",
                plan.new_name,
                plan.new_name
            );
            say(&format!(
                "resuming the rename to {} (done: {})…",
                plan.new_name,
                entry.done.join(", ")
            ));
            plan
        }
        None => {
            let registration = Registration::load(&state)?.ok_or(LifecycleError::NotConnected)?;
            if !is_valid_resource_name(&request.new_name) {
                anyhow::bail!(LifecycleError::NameTaken(format!(
                    "`{}` is not a valid machine name ({RESOURCE_NAME_RULE})",
                    request.new_name
                )));
            }
            anyhow::ensure!(
                !registration
                    .resource_name
                    .eq_ignore_ascii_case(&request.new_name),
                "the machine is already named `{}`",
                registration.resource_name
            );
            record(manager, &registration, &request.new_name, &protected)?
        }
    };
    let mut journal = Journal::begin(&state, OPERATION, json!({}))?;
    save(&mut journal, &plan)?;
    if !journal.entry().has("recorded") {
        journal.done("recorded")?;
    }

    if !journal.entry().has("old-removed") {
        // Disconnect ends a `tether login` session; a rename keeps it.
        let session_path = state.path().join("login.json");
        let session = std::fs::read(&session_path).ok();
        say(&format!(
            "removing the extensions and deleting {}…",
            plan.before.resource_id
        ));
        disconnect(
            manager,
            settings,
            DisconnectRequest {
                sign_in: Some(request.sign_in.clone()),
                force_local_only: false,
            },
            say,
        )?;
        if let Some(session) = session {
            write_atomic(&session_path, &session, Access::Private)?;
        }
        journal.done("old-removed")?;
    }

    if !journal.entry().has("connected") {
        let already = Registration::load(&state)?
            .is_some_and(|r| r.resource_name.eq_ignore_ascii_case(&plan.new_name));
        if !already {
            let before = &plan.before;
            connect(
                &state,
                settings,
                ConnectRequest {
                    subscription_id: before.subscription_id.clone(),
                    resource_group: before.resource_group.clone(),
                    location: before.location.clone(),
                    resource_name: Some(plan.new_name.clone()),
                    tags: before.tags.clone(),
                    correlation_id: None,
                    private_link_scope: before.private_link_scope.clone(),
                    cloud: before.cloud.clone(),
                    cloud_ca_cert: before.cloud_ca_cert.clone(),
                    ignore_network_check: true,
                    sign_in: request.sign_in.clone(),
                },
                say,
            )?;
        }
        journal.done("connected")?;
    }

    let registration = Registration::load(&state)?.ok_or(LifecycleError::NotConnected)?;
    let proxy = ProxyPolicy::from_settings(settings);
    let token = crate::auth::arm_token(
        &request.sign_in,
        &registration.endpoints,
        &proxy,
        registration.ca_pem(),
        say,
    )?;
    let arm = ArmClient::new(
        &registration.endpoints,
        &proxy,
        registration.ca_pem(),
        token,
    )?;
    let not_carried: Vec<String> = plan
        .had_protected
        .iter()
        .filter(|id| {
            parse_id(id)
                .map(|id| !protected.contains_key(&id.key()))
                .unwrap_or(true)
        })
        .cloned()
        .collect();
    for carried in plan.extensions.clone() {
        if plan.redeployed.contains(&carried.id) {
            continue;
        }
        let id = parse_id(&carried.id)?;
        let secret = protected.get(&id.key()).cloned();
        say(&format!("redeploying {} {}…", carried.id, carried.version));
        match &carried.cloud_name {
            Some(name) => {
                let extension = MachineExtension {
                    location: Some(registration.location.clone()),
                    properties: ExtensionProperties {
                        publisher: id.publisher().to_string(),
                        extension_type: id.name().to_string(),
                        type_handler_version: carried.version.clone(),
                        settings: Value::Object(carried.settings.clone()),
                        protected_settings: secret.map(Value::Object),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                arm.put_extension(
                    &registration.resource_id,
                    name,
                    &extension,
                    &registration.correlation_id,
                )?
                .map_err(|e| {
                    anyhow::anyhow!(
                        "could not create the cloud record of {} on the new resource: {e}",
                        carried.id
                    )
                })?;
            }
            None => {
                let bytes = std::fs::read(package_path(&state, &carried.id)?)
                    .with_context(|| format!("the package kept for {} is gone", carried.id))?;
                manager.install_with(
                    &bytes,
                    settings,
                    InstallOptions {
                        settings: carried.settings.clone(),
                        protected_settings: secret.unwrap_or_default(),
                        ..Default::default()
                    },
                )?;
                if !carried.enabled {
                    manager.set_enabled(&carried.id, false)?;
                }
            }
        }
        plan.redeployed.push(carried.id.clone());
        save(&mut journal, &plan)?;
        journal.done(&format!("redeployed {}", carried.id))?;
    }
    // The cloud's records are deployed like any: by a reconcile, whose
    // reports complete their operations on the new resource.
    let mut reconciled = Vec::new();
    if plan.extensions.iter().any(|c| c.cloud_name.is_some()) {
        say("installing the cloud's extensions on the new resource…");
        reconciled = crate::extensions::reconcile::run(manager, settings)?;
        for carried in plan
            .extensions
            .iter()
            .filter(|c| c.cloud_name.is_some() && !c.enabled)
        {
            manager.set_enabled(&carried.id, false)?;
        }
    }
    journal.finish()?;
    let _ = std::fs::remove_dir_all(packages_dir(&state));
    Ok(Renamed {
        from: plan.before.resource_name,
        to: registration.resource_name,
        resource_id: registration.resource_id,
        redeployed: plan.redeployed,
        reconciled,
        protected_settings_not_carried: not_carried,
    })
}
