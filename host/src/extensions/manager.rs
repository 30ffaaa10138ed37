//! The extension manager: install (→ enable), update in the VM-extension
//! handler order (disable old → update new → uninstall old → enable new),
//! enable, disable, invoke, remove (its data and key-value store go too).
//! Each change is journaled; a package is admitted before anything is
//! written; removal is always allowed.

use super::admission::{Refusal, admit};
use super::trust::TrustStore;
use crate::config::Settings;
use crate::lifecycle::journal::{self, Journal};
use crate::runtime::{
    Call, CallOutcome, ExtensionSpec, Limits, LoadedExtension, OutboundGrant, Runtime,
    RuntimeOptions, status_name,
};
use crate::state::{Access, StateRoot, write_atomic};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tether_package::{Package, ReadLimits};

/// An installed extension's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Installed {
    pub id: String,
    pub version: String,
    pub category: String,
    pub enabled: bool,
    /// `transitioning | success | warning | error`.
    pub state: String,
    pub message: String,
    pub time: u64,
    /// Public settings (protected settings are never written).
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Set when the cloud asked for it: its extension resource's name and
    /// the desired-state sequence last applied.
    #[serde(default)]
    pub cloud: Option<CloudAssignment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudAssignment {
    pub name: String,
    pub sequence: u64,
}

/// What an install is given besides the package.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Reach the guest only; never written.
    pub protected_settings: serde_json::Map<String, serde_json::Value>,
    pub cloud: Option<CloudAssignment>,
}

/// Protected settings by lowercase extension id, as the cloud last sent
/// them: held in memory only, never written.
pub type ProtectedSettings = HashMap<String, serde_json::Map<String, serde_json::Value>>;

pub struct Manager {
    state: StateRoot,
    runtime: Arc<Runtime>,
    /// Every later call of an extension gets its protected settings, for as
    /// long as this manager lives (the service's whole run).
    protected: ProtectedSettings,
}

fn dir_of(state: &StateRoot, id: &str) -> Result<PathBuf> {
    let (publisher, name) = id
        .split_once('/')
        .with_context(|| format!("`{id}` is not Publisher/Name"))?;
    Ok(state
        .path()
        .join("extensions")
        .join(publisher.to_ascii_lowercase())
        .join(name.to_ascii_lowercase()))
}

fn journal_name(id: &str) -> String {
    format!("extension-{}", id.to_ascii_lowercase().replace('/', "--"))
}

/// The installed extensions' records, read without starting a runtime
/// (for `show`, which runs without root).
pub fn installed(state: &StateRoot) -> Vec<Installed> {
    let root = state.path().join("extensions");
    let mut all = Vec::new();
    for publisher in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for ext in std::fs::read_dir(publisher.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(bytes) = std::fs::read(ext.path().join("state.json"))
                && let Ok(record) = serde_json::from_slice::<Installed>(&bytes)
            {
                all.push(record);
            }
        }
    }
    all.sort_by_key(|e| e.id.to_ascii_lowercase());
    all
}

impl Manager {
    /// A manager with a runtime of its own (one-shot commands), after
    /// finishing or rolling back what a crash interrupted.
    pub fn new(state: StateRoot) -> Result<Self> {
        let runtime = Arc::new(Self::runtime_for(&state)?);
        let manager = Self::with_runtime(state, runtime);
        manager.recover()?;
        Ok(manager)
    }

    /// The runtime this state root's extensions run in: its component
    /// cache, and the CPU share the settings give them.
    pub fn runtime_for(state: &StateRoot) -> Result<Runtime> {
        // A broken settings file must not block removal: the default share applies.
        let cpu = crate::config::SettingsStore::new(state)
            .load()
            .map(|s| s.extensions.agent.cpulimit)
            .unwrap_or(5);
        Runtime::new(RuntimeOptions {
            cache_dir: Some(state.component_cache()),
            cpu_percent: Some(cpu),
            ..Default::default()
        })
    }

    /// A manager on a runtime the host keeps for its whole life (the
    /// service: one engine per process, components compiled once). The
    /// host runs [`Manager::recover`] when it is ready to.
    pub fn with_runtime(state: StateRoot, runtime: Arc<Runtime>) -> Self {
        Self {
            state,
            runtime,
            protected: ProtectedSettings::new(),
        }
    }

    pub fn state(&self) -> &StateRoot {
        &self.state
    }

    /// Every installed extension, sorted by id.
    pub fn list(&self) -> Result<Vec<Installed>> {
        Ok(installed(&self.state))
    }

    pub fn get(&self, id: &str) -> Result<Option<Installed>> {
        let path = dir_of(&self.state, id)?.join("state.json");
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn save(&self, record: &Installed) -> Result<()> {
        write_atomic(
            &dir_of(&self.state, &record.id)?.join("state.json"),
            &serde_json::to_vec_pretty(record)?,
            Access::Public,
        )
    }

    /// Gives the extensions' later calls these protected settings (the
    /// cloud's latest).
    pub fn set_protected_settings(&mut self, protected: ProtectedSettings) {
        self.protected = protected;
    }

    fn load(&self, package: &Package) -> Result<LoadedExtension> {
        let id = package.manifest.id();
        let settings = self.get(&id)?.map(|r| r.settings).unwrap_or_default();
        self.load_with(
            package,
            &InstallOptions {
                settings,
                protected_settings: self
                    .protected
                    .get(&id.to_ascii_lowercase())
                    .cloned()
                    .unwrap_or_default(),
                ..Default::default()
            },
        )
    }

    fn load_with(&self, package: &Package, options: &InstallOptions) -> Result<LoadedExtension> {
        let m = &package.manifest;
        let mut spec = ExtensionSpec::new(m.id(), dir_of(&self.state, &m.id())?.join("data"));
        spec.settings = options.settings.clone();
        spec.protected_settings = options.protected_settings.clone();
        spec.limits = Limits::new(
            m.limits.memory_mib,
            Duration::from_millis(m.limits.call_timeout_ms),
        );
        spec.outbound = OutboundGrant {
            hosts: m
                .capabilities
                .outbound
                .iter()
                .filter_map(|o| o.parse().ok())
                .collect(),
        };
        self.runtime.load(&package.component, spec)
    }

    /// The installed package, verified again: a key no longer trusted
    /// means the extension no longer runs.
    fn installed_package(&self, id: &str) -> Result<Package> {
        let bytes = std::fs::read(dir_of(&self.state, id)?.join("package.tpkg"))
            .with_context(|| format!("{id} is not installed"))?;
        let package = tether_package::read(&bytes, ReadLimits::default())?;
        package
            .verify_signature(&TrustStore::load(&self.state)?.keys_for(&package.manifest.publisher))
            .with_context(|| format!("{id} can no longer run"))?;
        package.check_component()?;
        Ok(package)
    }

    fn call(&self, ext: &LoadedExtension, call: Call) -> Result<CallOutcome> {
        Ok(ext.call(call)?)
    }

    /// Installs (or updates to) a package and enables it.
    pub fn install(&self, bytes: &[u8], settings: &Settings) -> Result<Installed> {
        self.install_with(bytes, settings, InstallOptions::default())
    }

    /// Installs, updates or (same version, new settings) reconfigures.
    pub fn install_with(
        &self,
        bytes: &[u8],
        settings: &Settings,
        options: InstallOptions,
    ) -> Result<Installed> {
        let trust = TrustStore::load(&self.state)?;
        let peek = tether_package::read(bytes, ReadLimits::default()).map_err(|e| Refusal {
            check: "package",
            message: e.to_string(),
        })?;
        let id = peek.manifest.id();
        let current = self.get(&id)?;
        let current_version = current
            .as_ref()
            .and_then(|c| semver::Version::parse(&c.version).ok());
        let package = admit(bytes, settings, &trust, current_version.as_ref())?;
        let dir = dir_of(&self.state, &id)?;
        let mut journal = Journal::begin(
            &self.state,
            &journal_name(&id),
            serde_json::json!({"id": id, "from": current.as_ref().map(|c| c.version.clone())}),
        )?;
        let new = self.load_with(&package, &options)?;
        let same_version = current_version.as_ref() == Some(&package.manifest.version);
        if let (Some(current), true) = (&current, same_version) {
            // Same version: new settings take effect through disable → enable.
            if current.enabled {
                self.call(&new, Call::Disable)?;
            }
            journal.done("old-disabled")?;
        } else if let Some(current) = &current {
            // The VM-extension handler order.
            let old_package = self.installed_package(&id)?;
            let old = self.load(&old_package)?;
            if current.enabled {
                self.call(&old, Call::Disable)?;
            }
            journal.done("old-disabled")?;
            self.call(
                &new,
                Call::Update {
                    from_version: current.version.clone(),
                },
            )?;
            journal.done("new-updated")?;
            self.call(&old, Call::Uninstall)?;
            write_atomic(&dir.join("package.tpkg"), bytes, Access::Public)?;
            journal.done("old-uninstalled")?;
        } else {
            write_atomic(&dir.join("package.tpkg"), bytes, Access::Public)?;
            journal.done("package-written")?;
            self.call(&new, Call::Install)?;
            journal.done("installed")?;
        }
        let outcome = self.call(&new, Call::Enable)?;
        let (state, message) = outcome
            .status
            .map(|s| (status_name(s.state).to_string(), s.message))
            .unwrap_or(("success".into(), "enabled".into()));
        let record = Installed {
            id: id.clone(),
            version: package.manifest.version.to_string(),
            category: package.manifest.category.clone(),
            enabled: true,
            state,
            message,
            time: crate::util::now(),
            settings: options.settings.clone(),
            cloud: options.cloud.clone(),
        };
        self.save(&record)?;
        journal.done("enabled")?;
        journal.finish()?;
        Ok(record)
    }

    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<Installed> {
        let mut record = self
            .get(id)?
            .with_context(|| format!("{id} is not installed"))?;
        let ext = self.load(&self.installed_package(&record.id)?)?;
        self.call(&ext, if enabled { Call::Enable } else { Call::Disable })?;
        record.enabled = enabled;
        record.message = if enabled { "enabled" } else { "disabled" }.into();
        record.time = crate::util::now();
        self.save(&record)?;
        Ok(record)
    }

    pub fn invoke(&self, id: &str, command: &str, args: &[String]) -> Result<CallOutcome> {
        let record = self
            .get(id)?
            .with_context(|| format!("{id} is not installed"))?;
        if !record.enabled {
            bail!(
                "{} is disabled; `tether extension enable {}` first",
                record.id,
                record.id
            );
        }
        let ext = self.load(&self.installed_package(&record.id)?)?;
        self.call(
            &ext,
            Call::Invoke {
                command: command.into(),
                args: args.to_vec(),
            },
        )
    }

    /// Removes an extension: disable, uninstall, data deleted. Always
    /// allowed: a guest that fails on the way out is still removed.
    pub fn remove(&mut self, id: &str) -> Result<Vec<String>> {
        let record = self
            .get(id)?
            .with_context(|| format!("{id} is not installed"))?;
        let mut warnings = Vec::new();
        let mut journal = Journal::begin(
            &self.state,
            &journal_name(&record.id),
            serde_json::json!({"id": record.id, "removing": true}),
        )?;
        match self
            .installed_package(&record.id)
            .and_then(|p| self.load(&p))
        {
            Ok(ext) => {
                for call in [Call::Disable, Call::Uninstall] {
                    let name = call.name();
                    if let Err(e) = ext.call(call) {
                        warnings.push(format!("{name}: {e}"));
                    }
                }
            }
            Err(e) => warnings.push(format!("could not run its uninstall: {e:#}")),
        }
        journal.done("uninstalled")?;
        let dir = dir_of(&self.state, &record.id)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("could not remove {}", dir.display()))?;
        }
        // The publisher's directory goes with its last extension (remove_dir
        // leaves a non-empty one alone).
        if let Some(publisher) = dir.parent() {
            let _ = std::fs::remove_dir(publisher);
        }
        journal.done("removed")?;
        journal.finish()?;
        self.protected.remove(&record.id.to_ascii_lowercase());
        Ok(warnings)
    }

    /// Finishes or rolls back operations a crash interrupted.
    pub fn recover(&self) -> Result<()> {
        let dir = self.state.path().join("journal");
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_string();
            if !name.starts_with("extension-") {
                continue;
            }
            let Some(pending) = journal::pending(&self.state, &name)? else {
                continue;
            };
            let id = pending.data["id"].as_str().unwrap_or_default().to_string();
            let ext_dir = dir_of(&self.state, &id)?;
            let removing = pending.data["removing"].as_bool().unwrap_or(false);
            let fresh_install = pending.data["from"].is_null();
            if removing || (fresh_install && !pending.has("enabled")) {
                // Finish a removal; roll back a half-done first install.
                if ext_dir.exists() {
                    std::fs::remove_dir_all(&ext_dir)?;
                }
            } else if !pending.has("enabled")
                && let Ok(package) = self.installed_package(&id)
                && let Ok(ext) = self.load(&package)
            {
                // An update cut short: the package on disk is whichever one
                // was last written whole; bring it up enabled.
                let _ = ext.call(Call::Enable);
                if let Some(mut record) = self.get(&id)? {
                    record.version = package.manifest.version.to_string();
                    record.enabled = true;
                    record.message = "recovered after an interrupted update".into();
                    self.save(&record)?;
                }
            }
            Journal::begin(&self.state, &name, serde_json::Value::Null)?.finish()?;
        }
        Ok(())
    }
}
