//! The extension manager: install (→ enable), update in the VM-extension
//! handler order (disable old → update new → uninstall old → enable new),
//! enable, disable, invoke, remove (its data and key-value store go too).
//! Each change is journaled; a package is admitted before anything is
//! written; removal is always allowed.
//!
//! One owner: a manager holds the state root's extensions lock for its
//! life (the service for its whole run, a command while it runs), so a
//! journal found by the manager that holds the lock has no live owner left
//! and may be recovered. Paths come from parsed [`ExtensionId`]s only, and
//! removal deletes nothing but `extensions/<publisher>/<name>`.

use super::admission::{Refusal, admit};
use super::trust::TrustStore;
use crate::config::Settings;
use crate::exit::{Exit, coded};
use crate::lifecycle::journal::{self, Journal};
use crate::runtime::{
    Call, CallOutcome, ComponentDigest, ExtensionSpec, Limits, LoadedExtension, Runtime,
    RuntimeOptions, Tiering, status_name,
};
use crate::state::{Access, StateRoot, record, write_atomic};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tether_package::{ExtensionId, Manifest, Package, ReadLimits};

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
    /// What it was granted at its last install (`extension show`).
    #[serde(default)]
    pub granted: Granted,
    /// Its `[[schedule]]` entries' runs, in the manifest's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<super::schedule::ScheduleRun>,
}

/// The capabilities reaching outside the sandbox that an extension holds:
/// directories (canonical) and outbound origins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Granted {
    pub read_paths: Vec<String>,
    pub write_paths: Vec<String>,
    pub outbound: Vec<String>,
    /// `extensions.outbound.allowlocal` at the time.
    pub local_addresses: bool,
    /// The `[[schedule]]` entries the service runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<tether_package::Schedule>,
}

impl Granted {
    fn of(spec: &crate::runtime::ExtensionSpec, schedules: &[tether_package::Schedule]) -> Self {
        let paths = |write: bool| {
            spec.files
                .iter()
                .filter(|g| g.write == write)
                .map(|g| g.guest.display().to_string())
                .collect()
        };
        Self {
            read_paths: paths(false),
            write_paths: paths(true),
            outbound: spec.outbound.hosts.iter().map(|h| h.to_string()).collect(),
            local_addresses: spec.outbound.allow_local,
            schedules: schedules.to_vec(),
        }
    }
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
    /// What the package must be (the cloud's assignment): checked before
    /// anything is written, so a download cannot substitute another.
    pub expect: Option<(ExtensionId, semver::Version)>,
    /// A local operator's explicit choice; never set from the cloud.
    pub allow_downgrade: bool,
}

/// Protected settings by extension id key ([`ExtensionId::key`]), as the
/// cloud last sent them: held in memory only, never written.
pub type ProtectedSettings = HashMap<String, serde_json::Map<String, serde_json::Value>>;

pub struct Manager {
    state: StateRoot,
    runtime: Arc<Runtime>,
    /// Every later call of an extension gets its protected settings, for as
    /// long as this manager lives (the service's whole run).
    protected: ProtectedSettings,
    /// One loaded extension per id, verified when it was loaded: calls
    /// reuse its `InstancePre` and its one key-value store.
    loaded: Arc<LoadedCache>,
    _lock: std::fs::File,
}

/// The loaded extensions by id key. Shared with the host so that it can
/// drop them (after a reload) without waiting for a running operation.
#[derive(Default)]
pub struct LoadedCache(Mutex<HashMap<String, Arc<LoadedExtension>>>);

impl LoadedCache {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LoadedExtension>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops them all: the next call loads and verifies each package again
    /// (a publisher's key may be gone).
    pub fn clear(&self) {
        self.map().clear();
    }
}

/// Parses an id that came from outside (the command line, the socket, the
/// cloud); the error says what a valid one looks like.
pub fn parse_id(id: &str) -> Result<ExtensionId> {
    ExtensionId::parse(id).map_err(|e| coded(Exit::Usage, e.to_string()))
}

fn journal_name(id: &ExtensionId) -> String {
    let [publisher, name] = id.dir_parts();
    format!("extension-{publisher}--{name}")
}

/// How long a command waits for another one that changes extensions.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Takes the extensions lock, waiting up to `wait` for another command;
/// the running service holds it for its whole run.
fn take_lock(state: &StateRoot, wait: Duration) -> Result<std::fs::File> {
    let path = state.extensions_lock();
    std::fs::create_dir_all(state.path())
        .with_context(|| format!("could not create {}", state.path().display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("could not open the lock {}", path.display()))?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another Tether process holds {} (a Tether service is already running, or a command is changing extensions); wait for it, or stop the service first",
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("could not lock {}", path.display()));
            }
        }
    }
}

/// Removes `extensions/<publisher>/<name>` and nothing else: the directory
/// must be exactly that, below the state root's extensions directory, and
/// neither it nor its publisher directory a link.
fn remove_extension_dir(state: &StateRoot, id: &ExtensionId) -> Result<()> {
    let dir = state.extension_dir(id);
    let publisher = dir
        .parent()
        .context("an extension directory has a parent")?;
    if publisher.parent() != Some(state.extensions_dir().as_path()) {
        bail!(
            "refusing to remove {}: it is not an extension's directory",
            dir.display()
        );
    }
    for path in [publisher, dir.as_path()] {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => bail!(
                "refusing to remove {}: it is a link, not an extension's directory",
                path.display()
            ),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
        }
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("could not remove {}", dir.display()))?;
    // The publisher's directory goes with its last extension (remove_dir
    // leaves a non-empty one alone).
    let _ = std::fs::remove_dir(publisher);
    Ok(())
}

/// The highest version each extension ever had on this machine, by id key.
#[derive(Debug, Default, Serialize, Deserialize)]
struct VersionHistory {
    #[serde(default)]
    highest: BTreeMap<String, String>,
}

impl VersionHistory {
    fn load(state: &StateRoot) -> Result<Self> {
        Ok(
            record::read(&state.extension_versions(), "restore it or remove it")?
                .unwrap_or_default(),
        )
    }

    fn highest(&self, id: &ExtensionId) -> Option<semver::Version> {
        self.highest
            .get(&id.key())
            .and_then(|v| semver::Version::parse(v).ok())
    }

    fn record(state: &StateRoot, id: &ExtensionId, version: &semver::Version) -> Result<()> {
        let mut history = Self::load(state)?;
        if history.highest(id).is_some_and(|h| h >= *version) {
            return Ok(());
        }
        history.highest.insert(id.key(), version.to_string());
        record::write(&state.extension_versions(), &history, Access::Public)
    }
}

/// The installed extensions' records, read without starting a runtime
/// (for `show`, which runs without root).
pub fn installed(state: &StateRoot) -> Vec<Installed> {
    let root = state.extensions_dir();
    let mut all = Vec::new();
    for publisher in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for ext in std::fs::read_dir(publisher.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(Some(record)) = record::read::<Installed>(&ext.path().join("state.json"), "")
            {
                all.push(record);
            }
        }
    }
    all.sort_by_key(|e| e.id.to_ascii_lowercase());
    all
}

fn document_path(state: &StateRoot, id: &ExtensionId) -> std::path::PathBuf {
    state.extension_dir(id).join("document.json")
}

/// The latest document the extension reported (contract 0.2.0), read
/// without the lock (for `extension show`).
pub fn document(state: &StateRoot, id: &ExtensionId) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(document_path(state, id)).ok()?).ok()
}

/// Compiles a package's component ahead of its install, without the
/// extensions lock, so that the install (which holds it) finds the code
/// in memory and other extensions' calls do not wait for a compile. Only a
/// package that verifies against the trusted publishers is compiled; any
/// other is left to the install, which refuses it and says why.
pub fn precompile(state: &StateRoot, runtime: &Runtime, bytes: &[u8]) {
    let verified = || -> Result<Package> {
        let package = tether_package::read(bytes, ReadLimits::default())?;
        package
            .verify_signature(&TrustStore::load(state)?.keys_for(&package.manifest.publisher))?;
        package.check_component()?;
        Ok(package)
    };
    let Ok(package) = verified() else {
        return;
    };
    if let Err(e) = runtime.precompile(&package.manifest.id(), &package.component) {
        tracing::debug!("{}: not compiled ahead: {e:#}", package.manifest.id());
    }
}

/// Loads the compiled code of every enabled extension into `runtime`'s
/// memory, so that the first call after a service start finds it there
/// rather than read and deserialize tens of MB of module metadata first.
/// Nothing runs and nothing is compiled: an extension whose code is not
/// cached, or whose package no longer verifies, is left to its first
/// call, which compiles it or refuses it and says why. Returns how many
/// were warmed.
pub fn warm(state: &StateRoot, runtime: &Runtime) -> usize {
    let trust = TrustStore::load(state).ok();
    let mut warmed = 0;
    for record in installed(state).into_iter().filter(|r| r.enabled) {
        let Ok(id) = ExtensionId::parse(&record.id) else {
            continue;
        };
        let Some(head) = installed_head(state, &id) else {
            continue;
        };
        // Only a package its load would accept: the same check, done twice
        // for a few kilobytes, spares deserializing code nobody may call.
        let trusted = trust.as_ref().is_some_and(|t| {
            head.verify_signature(&t.keys_for(&head.manifest.publisher))
                .is_ok()
        });
        let digest = ComponentDigest::from_hex(&head.manifest.component.sha256);
        if let (true, Some(digest)) = (trusted, digest)
            && runtime.warm(digest)
        {
            warmed += 1;
        }
    }
    warmed
}

/// The manifest and signature of an installed package, read without its
/// component; none for a package without them first (written before
/// packages carried them there) or that cannot be read.
fn installed_head(state: &StateRoot, id: &ExtensionId) -> Option<tether_package::Head> {
    let path = state.extension_dir(id).join("package.tpkg");
    let file = std::fs::File::open(path).ok()?;
    tether_package::read_head(std::io::BufReader::new(file), ReadLimits::default())
        .ok()
        .flatten()
}

/// One installed extension's record, read without starting a runtime or
/// taking the lock (for `extension show`).
pub fn installed_one(state: &StateRoot, id: &ExtensionId) -> Result<Option<Installed>> {
    record::read(
        &state.extension_dir(id).join("state.json"),
        "remove the extension with `tether extension remove` and install it again",
    )
}

impl Manager {
    /// A manager with a runtime of its own (one-shot commands): takes the
    /// extensions lock, then finishes or rolls back what a crash
    /// interrupted.
    pub fn new(state: StateRoot) -> Result<Self> {
        let lock = take_lock(&state, LOCK_WAIT)?;
        // A command's manager: the service optimizes large components.
        let runtime = Arc::new(Self::runtime_for(&state, Tiering::BaselineOnly)?);
        let manager = Self::build(state, runtime, lock);
        manager.recover()?;
        Ok(manager)
    }

    /// The runtime this state root's extensions run in: its component
    /// cache, and the CPU share the settings give them.
    pub fn runtime_for(state: &StateRoot, tiering: Tiering) -> Result<Runtime> {
        // A broken settings file must not block removal: the default share applies.
        let cpu = crate::config::SettingsStore::new(state)
            .load()
            .map(|s| s.extensions.agent.cpulimit)
            .unwrap_or(5);
        Runtime::new(RuntimeOptions {
            cache_dir: Some(state.component_cache()),
            cpu_percent: Some(cpu),
            tiering,
            ..Default::default()
        })
    }

    /// A manager on a runtime the host keeps for its whole life (the
    /// service: one engine per process, components compiled once). It
    /// holds the extensions lock until dropped. The host runs
    /// [`Manager::recover`] when it is ready to.
    pub fn with_runtime(state: StateRoot, runtime: Arc<Runtime>) -> Result<Self> {
        // A second service does not wait for the first.
        let lock = take_lock(&state, Duration::ZERO)?;
        Ok(Self::build(state, runtime, lock))
    }

    fn build(state: StateRoot, runtime: Arc<Runtime>, lock: std::fs::File) -> Self {
        Self {
            state,
            runtime,
            protected: ProtectedSettings::new(),
            loaded: Arc::default(),
            _lock: lock,
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
        installed_one(&self.state, &parse_id(id)?)
    }

    fn save(&self, id: &ExtensionId, installed: &Installed) -> Result<()> {
        record::write(
            &self.state.extension_dir(id).join("state.json"),
            installed,
            Access::Public,
        )
    }

    /// Gives the extensions' later calls these protected settings (the
    /// cloud's latest).
    /// The protected settings this manager holds (the cloud's latest, in
    /// memory only).
    pub fn protected_settings(&self) -> &ProtectedSettings {
        &self.protected
    }

    pub fn set_protected_settings(&mut self, protected: ProtectedSettings) {
        if protected != self.protected {
            self.forget_loaded();
        }
        self.protected = protected;
    }

    /// Drops the loaded extensions: the next call loads and verifies each
    /// package again.
    pub fn forget_loaded(&self) {
        self.loaded.clear();
    }

    /// The loaded extensions, for a host that drops them on reload.
    pub fn loaded_cache(&self) -> Arc<LoadedCache> {
        self.loaded.clone()
    }

    fn loaded_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LoadedExtension>>> {
        self.loaded.map()
    }

    /// The installed extension, loaded once and kept: its package is read
    /// and verified again only when it was not loaded yet.
    fn loaded(&self, id: &ExtensionId) -> Result<Arc<LoadedExtension>> {
        if let Some(ext) = self.loaded_map().get(&id.key()) {
            return Ok(ext.clone());
        }
        let ext = Arc::new(self.load_installed(id)?);
        self.loaded_map().insert(id.key(), ext.clone());
        Ok(ext)
    }

    /// The installed extension, loaded. Its signature is verified again
    /// (a key no longer trusted means it no longer runs), from the
    /// package's head alone when the host holds the code compiled from the
    /// component the signed manifest names: a restart then reads a few
    /// kilobytes of an 18 MB package, not all of it.
    fn load_installed(&self, id: &ExtensionId) -> Result<LoadedExtension> {
        let Some(head) = installed_head(&self.state, id) else {
            let package = self.installed_package(id)?;
            let manifest = package.manifest.clone();
            return self.load(id, &manifest, move || Ok(package.component));
        };
        head.verify_signature(&TrustStore::load(&self.state)?.keys_for(&head.manifest.publisher))
            .with_context(|| format!("{id} can no longer run"))?;
        if head.manifest.extension_id().ok().as_ref() != Some(id) {
            bail!(
                "{id} can no longer run: its directory holds a package of {}",
                head.manifest.id()
            );
        }
        let digest = &head.manifest.component.sha256;
        self.load(id, &head.manifest, || {
            // Compiled from the whole package, checked whole.
            let package = self.installed_package(id)?;
            anyhow::ensure!(
                package
                    .manifest
                    .component
                    .sha256
                    .eq_ignore_ascii_case(digest),
                "{id}'s package changed while it was loaded"
            );
            Ok(package.component)
        })
    }

    fn load(
        &self,
        id: &ExtensionId,
        manifest: &Manifest,
        component: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<LoadedExtension> {
        let settings = installed_one(&self.state, id)?
            .map(|r| r.settings)
            .unwrap_or_default();
        self.load_with(
            id,
            manifest,
            component,
            &InstallOptions {
                settings,
                protected_settings: self.protected.get(&id.key()).cloned().unwrap_or_default(),
                ..Default::default()
            },
        )
    }

    fn load_with(
        &self,
        id: &ExtensionId,
        m: &Manifest,
        component: impl FnOnce() -> Result<Vec<u8>>,
        options: &InstallOptions,
    ) -> Result<LoadedExtension> {
        let mut spec =
            ExtensionSpec::new(id.to_string(), self.state.extension_dir(id).join("data"));
        spec.settings = options.settings.clone();
        spec.protected_settings = options.protected_settings.clone();
        let state = self.state.clone();
        spec.machine = crate::runtime::MachineView::live(move || {
            crate::lifecycle::status::machine_info(&state)
        });
        spec.limits = Limits::new(
            m.limits.memory_mib,
            Duration::from_millis(m.limits.call_timeout_ms),
        );
        // A broken settings file grants nothing extra. Granted again at
        // every load, on the settings and paths as they are now: a link
        // planted since admission, or a narrowed setting, takes hold.
        let settings = crate::config::SettingsStore::new(&self.state)
            .load()
            .unwrap_or_default();
        let files = self.file_policy(&settings);
        let operator = super::capabilities::Operator {
            settings: &settings,
            files: &files,
        };
        super::capabilities::grant_all(m, &operator, &mut spec).map_err(|(_, why)| {
            anyhow::anyhow!("{id} is no longer granted what it declares: {why}")
        })?;
        let digest = ComponentDigest::from_hex(&m.component.sha256)
            .with_context(|| format!("{id}'s manifest names no SHA-256 digest"))?;
        self.runtime.load_installed(digest, spec, component)
    }

    /// What extensions on this machine may be granted of its files.
    fn file_policy(&self, settings: &crate::config::Settings) -> crate::runtime::FilePolicy {
        crate::runtime::FilePolicy {
            allowed: settings.extensions.files.allowed.clone(),
            own: vec![
                self.state.path().to_path_buf(),
                self.state.identity_tokens_dir(),
                crate::state::arc_tokens_dir(),
            ],
        }
    }

    /// The installed package, verified again: a key no longer trusted
    /// means the extension no longer runs; a package whose manifest is not
    /// this id's is not this extension.
    fn installed_package(&self, id: &ExtensionId) -> Result<Package> {
        let bytes = std::fs::read(self.state.extension_dir(id).join("package.tpkg"))
            .with_context(|| format!("{id} is not installed"))?;
        let package = tether_package::read(&bytes, ReadLimits::default())?;
        package
            .verify_signature(&TrustStore::load(&self.state)?.keys_for(&package.manifest.publisher))
            .with_context(|| format!("{id} can no longer run"))?;
        package.check_component()?;
        if package.manifest.extension_id().ok().as_ref() != Some(id) {
            bail!(
                "{id} can no longer run: its directory holds a package of {}",
                package.manifest.id()
            );
        }
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
        let id = peek.manifest.extension_id().map_err(|e| Refusal {
            check: "package",
            message: e.to_string(),
        })?;
        if let Some((want, version)) = &options.expect
            && (want != &id || version != &peek.manifest.version)
        {
            return Err(Refusal {
                check: "assignment",
                message: format!(
                    "the cloud assigned {want} {version}, but the package it served is {id} {}; nothing was installed",
                    peek.manifest.version
                ),
            }
            .into());
        }
        let current = installed_one(&self.state, &id)?;
        let current_version = current
            .as_ref()
            .and_then(|c| semver::Version::parse(&c.version).ok());
        let highest = VersionHistory::load(&self.state)?.highest(&id);
        let floor = if options.allow_downgrade {
            None
        } else {
            current_version.clone().max(highest)
        };
        let package = admit(
            bytes,
            settings,
            &self.file_policy(settings),
            &trust,
            floor.as_ref(),
        )?;
        let dir = self.state.extension_dir(&id);
        let mut journal = Journal::begin(
            &self.state,
            &journal_name(&id),
            serde_json::json!({
                "id": id.to_string(),
                "from": current.as_ref().map(|c| c.version.clone()),
                "owner": std::process::id(),
            }),
        )?;
        self.loaded_map().remove(&id.key());
        let new = self.load_with(
            &id,
            &package.manifest,
            || Ok(package.component.clone()),
            &options,
        )?;
        let same_version = current_version.as_ref() == Some(&package.manifest.version);
        if let (Some(current), true) = (&current, same_version) {
            // Same version: new settings take effect through disable → enable.
            if current.enabled {
                self.call(&new, Call::Disable)?;
            }
            journal.done("old-disabled")?;
        } else if let Some(current) = &current {
            // The VM-extension handler order.
            let old = self.load_installed(&id)?;
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
            id: id.to_string(),
            version: package.manifest.version.to_string(),
            category: package.manifest.category.clone(),
            enabled: true,
            state,
            message,
            time: crate::util::now(),
            settings: options.settings.clone(),
            cloud: options.cloud.clone(),
            granted: Granted::of(new.spec(), &package.manifest.schedules),
            runs: package
                .manifest
                .schedules
                .iter()
                .map(super::schedule::ScheduleRun::of)
                .collect(),
        };
        self.save(&id, &record)?;
        VersionHistory::record(&self.state, &id, &package.manifest.version)?;
        journal.done("enabled")?;
        journal.finish()?;
        self.loaded_map().insert(id.key(), Arc::new(new));
        Ok(record)
    }

    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<Installed> {
        let id = parse_id(id)?;
        let mut record =
            installed_one(&self.state, &id)?.with_context(|| format!("{id} is not installed"))?;
        let ext = self.loaded(&id)?;
        self.call(&ext, if enabled { Call::Enable } else { Call::Disable })?;
        record.enabled = enabled;
        record.message = if enabled { "enabled" } else { "disabled" }.into();
        record.time = crate::util::now();
        self.save(&id, &record)?;
        Ok(record)
    }

    pub fn invoke(&self, id: &str, command: &str, args: &[String]) -> Result<CallOutcome> {
        self.invoke_within(id, command, args, None)
    }

    /// Runs `command` if the extension is installed, enabled and still
    /// allowed by the operator's policy, ending by `max` if sooner than
    /// its own call timeout.
    pub fn invoke_within(
        &self,
        id: &str,
        command: &str,
        args: &[String],
        max: Option<Duration>,
    ) -> Result<CallOutcome> {
        let id = parse_id(id)?;
        let mut record =
            installed_one(&self.state, &id)?.with_context(|| format!("{id} is not installed"))?;
        let outcome = self.call_command(&id, &record, command, args, max)?;
        if let Some(status) = &outcome.status {
            record.state = status_name(status.state).to_string();
            record.message = status.message.clone();
            record.time = crate::util::now();
            self.save(&id, &record)?;
        }
        if outcome.status.is_some() || outcome.document.is_some() {
            self.queue_report(&record, record.message.clone());
        }
        Ok(outcome)
    }

    /// Runs one command of an extension that may run now (see
    /// [`runnable`](Self::runnable)) and keeps the document it reported.
    /// The guest's error names the extension and the call itself.
    fn call_command(
        &self,
        id: &ExtensionId,
        record: &Installed,
        command: &str,
        args: &[String],
        max: Option<Duration>,
    ) -> Result<CallOutcome> {
        self.runnable(record)?;
        let call = Call::Invoke {
            command: command.into(),
            args: args.to_vec(),
        };
        let outcome = self.loaded(id)?.call_within(call, max)?;
        if let Some(document) = &outcome.document {
            self.keep_document(id, document)?;
        }
        Ok(outcome)
    }

    /// Keeps the latest document the extension reported.
    fn keep_document(&self, id: &ExtensionId, json: &str) -> Result<()> {
        write_atomic(
            &document_path(&self.state, id),
            json.as_bytes(),
            Access::Public,
        )
    }

    /// Queues the record's status for the cloud, when the cloud assigned
    /// it (the next reconcile pass sends it).
    fn queue_report(&self, record: &Installed, message: String) {
        let Some(cloud) = &record.cloud else {
            return;
        };
        let report = tether_cloud_api::agent::ExtensionStatusReport {
            sequence: cloud.sequence,
            state: record.state.clone(),
            version: record.version.clone(),
            message,
            document: parse_id(&record.id)
                .ok()
                .and_then(|id| document(&self.state, &id)),
        };
        if let Err(e) = super::outbox::put(&self.state, &cloud.name, report) {
            tracing::warn!("could not keep {}'s report for the cloud: {e:#}", record.id);
        }
    }

    /// Whether the extension may run now: enabled, and allowed by the
    /// policy in effect (it may have changed since the install).
    fn runnable(&self, record: &Installed) -> Result<()> {
        if !record.enabled {
            bail!(
                "{} is disabled; `tether extension enable {}` first",
                record.id,
                record.id
            );
        }
        let settings = crate::config::SettingsStore::new(&self.state)
            .load()
            .context("the settings could not be read, so nothing runs")?;
        settings.policy_allows(&record.id).map_err(|why| {
            coded(
                Exit::Refused,
                format!("{} may no longer run: {why}", record.id),
            )
        })
    }

    /// Runs entry `index` of the extension's schedule now (or skips it),
    /// and records the run and the status it left; `next_run` is when the
    /// service will run it again. `None` when the entry is gone (the
    /// extension was removed or updated since it was scheduled).
    pub fn run_scheduled(
        &self,
        id: &ExtensionId,
        index: usize,
        next_run: u64,
    ) -> Result<Option<Installed>> {
        use super::schedule;
        let Some(mut record) = installed_one(&self.state, id)? else {
            return Ok(None);
        };
        let Some(entry) = record.granted.schedules.get(index).cloned() else {
            return Ok(None);
        };
        let connection = crate::lifecycle::status::machine_info(&self.state).status;
        let now = crate::util::now();
        let mut run = record
            .runs
            .get(index)
            .cloned()
            .unwrap_or_else(|| schedule::ScheduleRun::of(&entry));
        run.last_run = Some(now);
        run.next_run = Some(next_run);
        if let Some(why) = schedule::skip_reason(&entry, record.enabled, connection) {
            run.result = Some("skipped".into());
            run.message = why.into();
        } else {
            let result = self.call_command(id, &record, &entry.command, &entry.args, None);
            let (result, state, message, output) = schedule::outcome(&entry, &result);
            run.result = Some(result.into());
            run.message = message.clone();
            run.output = output;
            record.state = state;
            record.message = message;
            record.time = now;
        }
        let skipped = run.result.as_deref() == Some("skipped");
        let note = format!(
            "{} (`{}` ran {}; next run {})",
            record.message,
            run.schedule,
            crate::util::rfc3339(now),
            crate::util::rfc3339(next_run)
        );
        if record.runs.len() <= index {
            record.runs.resize(index + 1, Default::default());
        }
        record.runs[index] = run;
        self.save(id, &record)?;
        if !skipped {
            self.queue_report(&record, note);
        }
        Ok(Some(record))
    }

    /// Records when the service will first run entry `index`.
    pub fn schedule_next(&self, id: &ExtensionId, index: usize, at: u64) -> Result<()> {
        let Some(mut record) = installed_one(&self.state, id)? else {
            return Ok(());
        };
        let Some(entry) = record.granted.schedules.get(index) else {
            return Ok(());
        };
        if record.runs.len() <= index {
            let fresh = super::schedule::ScheduleRun::of(entry);
            record.runs.resize(index + 1, fresh);
        }
        record.runs[index].next_run = Some(at);
        self.save(id, &record)
    }

    /// Removes an extension: disable, uninstall, data deleted. Always
    /// allowed: a guest that fails on the way out is still removed.
    pub fn remove(&mut self, id: &str) -> Result<Vec<String>> {
        let id = parse_id(id)?;
        installed_one(&self.state, &id)?.with_context(|| format!("{id} is not installed"))?;
        let mut warnings = Vec::new();
        let mut journal = Journal::begin(
            &self.state,
            &journal_name(&id),
            serde_json::json!({"id": id.to_string(), "removing": true, "owner": std::process::id()}),
        )?;
        match self.loaded(&id) {
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
        self.loaded_map().remove(&id.key());
        remove_extension_dir(&self.state, &id)?;
        journal.done("removed")?;
        journal.finish()?;
        self.protected.remove(&id.key());
        Ok(warnings)
    }

    /// Finishes or rolls back operations a crash interrupted. Runs only
    /// under the extensions lock, so whoever wrote a journal found here is
    /// gone.
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
            let text = pending.data["id"].as_str().unwrap_or_default();
            let id = match ExtensionId::parse(text) {
                Ok(id) if journal_name(&id) == name => id,
                _ => {
                    tracing::warn!(
                        "journal {name} names `{text}`, which is not its extension; left alone, nothing deleted"
                    );
                    continue;
                }
            };
            let removing = pending.data["removing"].as_bool().unwrap_or(false);
            let fresh_install = pending.data["from"].is_null();
            if removing || (fresh_install && !pending.has("enabled")) {
                // Finish a removal; roll back a half-done first install.
                remove_extension_dir(&self.state, &id)?;
            } else if !pending.has("enabled")
                && let Ok(package) = self.installed_package(&id)
                && let Ok(ext) = self.load(&id, &package.manifest, || Ok(package.component.clone()))
            {
                // An update cut short: the package on disk is whichever one
                // was last written whole; bring it up enabled.
                let _ = ext.call(Call::Enable);
                if let Some(mut record) = installed_one(&self.state, &id)? {
                    record.version = package.manifest.version.to_string();
                    record.enabled = true;
                    record.message = "recovered after an interrupted update".into();
                    self.save(&id, &record)?;
                }
            }
            Journal::begin(&self.state, &name, serde_json::Value::Null)?.finish()?;
        }
        Ok(())
    }
}
