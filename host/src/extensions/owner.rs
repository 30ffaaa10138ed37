//! Changing extensions with their one owner: the running service when
//! there is one (the CLI sends it the operation over the control channel),
//! otherwise a manager that holds the extensions lock for the command.
//! Either way the same [`apply`] runs, so a command behaves the same
//! whether the service runs or not.

use super::manager::Manager;
use crate::config::{Settings, SettingsStore};
use crate::exit::{Exit, coded};
use crate::service::control::{Request, client};
use crate::state::StateRoot;
use anyhow::{Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An operation on the installed extensions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ExtensionOp {
    /// Install or update a signed package (base64 of its bytes).
    #[serde(rename_all = "camelCase")]
    Install {
        package: String,
        allow_downgrade: bool,
    },
    Remove {
        ids: Vec<String>,
    },
    Enable {
        id: String,
    },
    Disable {
        id: String,
    },
    /// Match the cloud's desired extensions now.
    Reconcile,
    Invoke {
        id: String,
        command: String,
        args: Vec<String>,
    },
}

impl ExtensionOp {
    pub fn install(bytes: &[u8], allow_downgrade: bool) -> Self {
        ExtensionOp::Install {
            package: base64::engine::general_purpose::STANDARD.encode(bytes),
            allow_downgrade,
        }
    }
}

/// The package an install sent.
fn decode_package(package: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(package)
        .map_err(|e| {
            coded(
                Exit::BadInput,
                format!("the package was not sent whole: {e}"),
            )
        })
}

impl ExtensionOp {
    /// The package an install carries, if it is one and was sent whole.
    pub fn package(&self) -> Option<Vec<u8>> {
        match self {
            ExtensionOp::Install { package, .. } => decode_package(package).ok(),
            _ => None,
        }
    }
}

/// A refusal by admission becomes the `refused` exit code.
fn refused(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<super::admission::Refusal>().is_some() {
        return coded(Exit::Refused, format!("{e:#}"));
    }
    e
}

/// Runs `op` on `manager` (in the service, or in a command holding the
/// lock); the answer is the operation's result as JSON.
pub fn apply(manager: &mut Manager, settings: &Settings, op: ExtensionOp) -> Result<Value> {
    Ok(match op {
        ExtensionOp::Install {
            package,
            allow_downgrade,
        } => {
            let bytes = decode_package(&package)?;
            let options = super::manager::InstallOptions {
                allow_downgrade,
                ..Default::default()
            };
            serde_json::to_value(
                manager
                    .install_with(&bytes, settings, options)
                    .map_err(refused)?,
            )?
        }
        ExtensionOp::Remove { ids } => {
            let mut warnings = Vec::new();
            for id in &ids {
                warnings.extend(
                    manager
                        .remove(id)?
                        .into_iter()
                        .map(|w| format!("{id}: {w}")),
                );
            }
            json!({"removed": ids, "warnings": warnings})
        }
        ExtensionOp::Enable { id } => serde_json::to_value(manager.set_enabled(&id, true)?)?,
        ExtensionOp::Disable { id } => serde_json::to_value(manager.set_enabled(&id, false)?)?,
        ExtensionOp::Reconcile => serde_json::to_value(super::reconcile::run(manager, settings)?)?,
        ExtensionOp::Invoke { id, command, args } => {
            tracing::info!("invoke {id} {command}");
            let outcome = manager.invoke(&id, &command, &args)?;
            serde_json::to_value(crate::service::InvokeResult::from(outcome))?
        }
    })
}

/// Runs `op` with the extensions' owner: through the running service, or
/// here under the lock when none runs.
pub fn run(state: &StateRoot, op: ExtensionOp) -> Result<Value> {
    let request = Request::Extension(op);
    if let Some(answer) = client::ask(state, &request, &mut |_| {})? {
        return Ok(answer);
    }
    let Request::Extension(op) = request else {
        unreachable!("built above")
    };
    let settings = SettingsStore::new(state)
        .load()
        .context("the settings could not be read")?;
    apply(&mut Manager::new(state.clone())?, &settings, op)
}
