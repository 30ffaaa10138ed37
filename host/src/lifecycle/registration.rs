//! What connect records about the machine (public: no secrets), and the
//! machine's stable VM id.

use crate::cloud::agent::MachineIdentity;
use crate::cloud::{Endpoints, ProxyPolicy};
use crate::config::Settings;
use crate::state::{Access, StateRoot, record, write_atomic};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
/// Read tolerantly (`state::record`): fields a newer Tether adds are
/// ignored here, so a rollback keeps the machine connected.
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub resource_id: String,
    pub resource_name: String,
    pub resource_group: String,
    pub subscription_id: String,
    pub tenant_id: String,
    pub location: String,
    /// As the operator named it (`AzureCloud`, or a metadata URL).
    pub cloud: String,
    pub endpoints: Endpoints,
    pub vm_id: String,
    pub principal_id: String,
    pub correlation_id: String,
    pub private_link_scope: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub connected_at: u64,
    pub agent_version: String,
    /// A CA certificate (PEM) the cloud's endpoints are trusted with.
    pub cloud_ca_cert: Option<String>,
}

fn path(state: &StateRoot) -> PathBuf {
    state.path().join("registration.json")
}

impl Registration {
    pub fn load(state: &StateRoot) -> Result<Option<Self>> {
        record::read(
            &path(state),
            "run `tether disconnect --force-local-only` to clear it",
        )
    }

    pub fn save(&self, state: &StateRoot) -> Result<()> {
        record::write(&path(state), self, Access::Public)
    }

    pub fn remove(state: &StateRoot) -> Result<()> {
        remove_if_exists(&path(state))
    }

    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.cloud_ca_cert.as_deref().map(str::as_bytes)
    }
}

/// What a connected machine signs in to the cloud with: its registration,
/// its active key, and the route the settings in force give it.
pub struct ConnectedMachine {
    pub registration: Registration,
    pub proxy: ProxyPolicy,
    key: super::machine_key::MachineKey,
}

impl ConnectedMachine {
    /// `None` when the machine is not connected.
    pub fn load(state: &StateRoot, settings: &Settings) -> Result<Option<Self>> {
        let Some(registration) = Registration::load(state)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            registration,
            proxy: ProxyPolicy::from_settings(settings),
            key: super::machine_key::load_active(state)?,
        }))
    }

    /// Like [`ConnectedMachine::load`], with "not connected" as the error.
    pub fn require(state: &StateRoot, settings: &Settings) -> Result<Self> {
        Ok(Self::load(state, settings)?.ok_or(super::LifecycleError::NotConnected)?)
    }

    /// The identity whose tokens are asked for.
    pub fn identity(&self) -> MachineIdentity<'_> {
        MachineIdentity {
            endpoints: &self.registration.endpoints,
            proxy: &self.proxy,
            ca_pem: self.registration.ca_pem(),
            tenant: &self.registration.tenant_id,
            principal_id: &self.registration.principal_id,
            key: &self.key,
        }
    }
}

pub fn remove_if_exists(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("could not remove {}", path.display())),
    }
}

/// The machine's VM id: generated once, kept across connects.
pub fn vm_id(state: &StateRoot) -> Result<String> {
    let path = state.path().join("vmid");
    if let Ok(id) = std::fs::read_to_string(&path)
        && !id.trim().is_empty()
    {
        return Ok(id.trim().to_string());
    }
    let id = crate::util::guid();
    write_atomic(&path, id.as_bytes(), Access::Public)?;
    Ok(id)
}
