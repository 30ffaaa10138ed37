//! `tether service run`: the scheduler (heartbeat, reconcile, settings),
//! the metadata service and the control socket, until SIGTERM or Ctrl-C.
//!
//! The scheduler is one thread that sleeps until the next thing is due or
//! something wakes it (a control request, a signal): nothing polls tighter
//! than the heartbeat and reconcile intervals, and failures back off.

mod run_commands;
mod schedules;

use super::backoff::{Backoff, jitter};
use super::challenge::{self, Challenges};
use super::control::{Request, server};
use super::metadata::{self, Metadata};
use super::rate_limit::RateLimit;
use super::tokens::TokenCache;
use super::{LiveStatus, RuntimeStatus, ServiceOptions, notify};
use crate::auth::SignIn;
use crate::cloud::agent::{self, retry_after};
use crate::config::{Settings, SettingsStore};
use crate::extensions::manager::{Manager, installed};
use crate::extensions::reconcile;
use crate::lifecycle::disconnect::{DisconnectRequest, disconnect};
use crate::lifecycle::rename::{RenameRequest, rename};
use crate::lifecycle::{ConnectedMachine, Registration, journal, reset, status};
use crate::runtime::Runtime;
use crate::state::StateRoot;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tether_cloud_api::agent::{ExtensionSummary, HeartbeatRequest, HeartbeatResponse};

/// What wakes the scheduler before its next due time.
enum Wake {
    Stop,
    /// SIGHUP (`systemctl reload`).
    #[cfg(unix)]
    Reload,
    Heartbeat,
    Reconcile,
    /// The reconcile worker finished a pass: when to retry, if it failed.
    Reconciled(Result<(), Option<Duration>>),
}

struct Service {
    state: StateRoot,
    store: SettingsStore,
    options: ServiceOptions,
    settings: Arc<RwLock<Settings>>,
    tokens: Arc<TokenCache>,
    live: Mutex<LiveStatus>,
    /// The extensions, hosted on one runtime for the whole run; the manager
    /// also holds the cloud's protected settings, in memory only. Its lock
    /// makes state-changing operations one at a time: reconcile, invoke,
    /// disconnect, reset.
    extensions: Mutex<Manager>,
    /// The manager's runtime, reachable while an operation holds the
    /// manager: a new CPU share applies to calls already running.
    wasm: Arc<Runtime>,
    /// The manager's loaded extensions, dropped on reload (trust may have
    /// changed) without waiting for the manager.
    loaded: Arc<crate::extensions::manager::LoadedCache>,
    wake: Mutex<Sender<Wake>>,
}

/// The running service's wake channel, for stopping it from outside the
/// scheduler (the Windows Service Control Manager's stop request).
static STOP: OnceLock<Mutex<Sender<Wake>>> = OnceLock::new();

/// Asks the running service to stop, as SIGTERM does.
pub fn request_stop() {
    if let Some(wake) = STOP.get() {
        let _ = lock(wake).send(Wake::Stop);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the service in the foreground until it is told to stop.
pub fn run(state: StateRoot, options: ServiceOptions) -> Result<()> {
    std::fs::create_dir_all(state.path())
        .with_context(|| format!("could not create the state root {}", state.path().display()))?;
    crate::platform::secure_state_root(state.path())?;
    let store = SettingsStore::new(&state);
    let settings = store.load()?;
    let wasm = Arc::new(Manager::runtime_for(
        &state,
        crate::runtime::Tiering::Background,
    )?);
    {
        // Beside the rest of the start, not before it: a call that comes
        // first loads its own code as it would have anyway.
        let (state, wasm) = (state.clone(), wasm.clone());
        let warming = std::thread::Builder::new()
            .name("tether-warm".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let warmed = crate::extensions::manager::warm(&state, &wasm);
                tracing::info!(
                    "code of {warmed} extension(s) loaded in {:.1} ms",
                    started.elapsed().as_secs_f64() * 1000.0
                );
            });
        if let Err(e) = warming {
            tracing::debug!("extensions' code is loaded at their first calls: {e}");
        }
    }
    let extensions = Manager::with_runtime(state.clone(), wasm.clone())?;
    let loaded = extensions.loaded_cache();
    let (wake_tx, wake_rx) = std::sync::mpsc::channel();
    let _ = STOP.set(Mutex::new(wake_tx.clone()));
    let service = Arc::new(Service {
        live: Mutex::new(LiveStatus::new(
            &state,
            &options,
            serde_json::to_value(&settings).unwrap_or(Value::Null),
        )),
        state: state.clone(),
        store,
        options: options.clone(),
        settings: Arc::new(RwLock::new(settings)),
        tokens: Arc::new(TokenCache::default()),
        extensions: Mutex::new(extensions),
        wasm,
        loaded,
        wake: Mutex::new(wake_tx),
    });
    tracing::info!(
        "Tether {} starting (state {}, heartbeat every {}s)",
        env!("CARGO_PKG_VERSION"),
        state.path().display(),
        options.heartbeat_interval.as_secs_f64()
    );
    service.resume_journals();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tether-io")
        .enable_all()
        .build()
        .context("could not start the service's I/O threads")?;
    let control = runtime.block_on(async { server::bind(&state) })?;
    let listeners = runtime.block_on(metadata::bind(options.metadata_port))?;
    let metadata = Arc::new(Metadata {
        state: state.clone(),
        settings: service.settings.clone(),
        tokens: service.tokens.clone(),
        challenges: Challenges::new(
            &options
                .identity_tokens_dir
                .clone()
                .unwrap_or_else(|| state.identity_tokens_dir()),
            challenge::LIFETIME,
        ),
        limit: RateLimit::new(20, 40),
    });
    {
        let mut live = lock(&service.live);
        live.metadata_endpoints = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| format!("http://{a}"))
            .collect();
        live.identity_tokens_dir = metadata.challenges.dir().display().to_string();
        tracing::info!(
            "metadata service on {} (identity key files in {}); control socket {}",
            live.metadata_endpoints.join(" and "),
            live.identity_tokens_dir,
            live.control
        );
    }
    for listener in listeners {
        runtime.spawn(metadata::serve(listener, metadata.clone()));
    }
    let handler: server::Handler = {
        let service = service.clone();
        Arc::new(move |request, progress| service.handle(request, progress))
    };
    runtime.spawn(server::serve(control, handler));
    runtime.spawn(stop_on_signal(lock(&service.wake).clone()));

    notify::ready();
    notify::status("running");
    service.schedule(wake_rx)?;

    tracing::info!("stopping: extensions stop with the service and stay installed");
    notify::stopping();
    // Let an operation in flight (a disconnect, say) finish its step.
    drop(lock(&service.extensions));
    runtime.shutdown_timeout(Duration::from_secs(5));
    tracing::info!("stopped");
    Ok(())
}

async fn stop_on_signal(wake: Sender<Wake>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("could not install signal handlers");
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM"); break; }
                _ = int.recv() => { tracing::info!("interrupted"); break; }
                _ = hup.recv() => { let _ = wake.send(Wake::Reload); }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("interrupted");
    }
    let _ = wake.send(Wake::Stop);
}

impl Service {
    fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn wake(&self, wake: Wake) {
        let _ = lock(&self.wake).send(wake);
    }

    /// Finishes what a crash interrupted, where that needs no sign-in.
    fn resume_journals(&self) {
        if let Err(e) = lock(&self.extensions).recover() {
            tracing::error!("could not recover the extensions' journals: {e:#}");
        }
        match journal::pending(&self.state, "disconnect") {
            Ok(Some(entry)) if entry.has("resource-deleted") => {
                tracing::info!(
                    "finishing a disconnect that was interrupted after the resource was deleted"
                );
                let request = DisconnectRequest {
                    sign_in: None,
                    force_local_only: true,
                };
                let mut say = |text: &str| tracing::info!("{text}");
                let mut extensions = lock(&self.extensions);
                if let Err(e) = disconnect(&mut extensions, &self.settings(), request, &mut say) {
                    tracing::error!("could not finish the interrupted disconnect: {e:#}");
                }
            }
            Ok(Some(_)) => tracing::warn!(
                "a disconnect was interrupted before the machine resource was deleted; run `tether disconnect` to finish it"
            ),
            Ok(None) => {}
            Err(e) => tracing::error!("could not read the disconnect journal: {e:#}"),
        }
        if let Ok(Some(_)) = journal::pending(&self.state, "rename") {
            tracing::warn!(
                "a rename was interrupted; run `tether rename NEW-NAME` with the same name to finish it"
            );
        }
        if let Ok(Some(_)) = journal::pending(&self.state, "connect") {
            tracing::warn!(
                "a connect was interrupted; run `tether connect` again to roll it back or finish it"
            );
        }
    }

    /// Runs reconcile passes on a thread of their own, one at a time, so
    /// that extensions' calls (however long they take within their
    /// deadlines) never hold up heartbeats or the watchdog.
    fn reconcile_worker(self: &Arc<Self>) -> Result<Sender<()>> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let service = self.clone();
        std::thread::Builder::new()
            .name("tether-reconcile".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    let result = service.reconcile().map_err(|e| {
                        let after = retry_after(&e);
                        tracing::warn!("reconcile failed: {e:#}");
                        after
                    });
                    service.wake(Wake::Reconciled(result));
                }
            })
            .context("could not start the reconcile thread")?;
        Ok(tx)
    }

    /// The scheduler loop; returns when told to stop.
    fn schedule(self: &Arc<Self>, wake: Receiver<Wake>) -> Result<()> {
        let reconciler = self.reconcile_worker()?;
        self.schedules_worker()?;
        self.run_commands_worker()?;
        let mut reconciling = false;
        let heartbeat_every = self.options.heartbeat_interval;
        let reconcile_every = self.options.reconcile_interval;
        let mut beat_at = Instant::now();
        let mut reconcile_at = Instant::now();
        let mut beat_backoff = Backoff::for_interval(heartbeat_every);
        let mut reconcile_backoff = Backoff::for_interval(reconcile_every);
        let mut watch = self.store.watch();
        let watchdog = notify::watchdog_interval();
        let mut watchdog_at = Instant::now();
        let mut sequence_seen: Option<u64> = None;
        loop {
            let mut next = beat_at.min(reconcile_at);
            if watchdog.is_some() {
                next = next.min(watchdog_at);
            }
            lock(&self.live).next_heartbeat_at = Some(
                crate::util::now() + beat_at.saturating_duration_since(Instant::now()).as_secs(),
            );
            match wake.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                #[cfg(unix)]
                Ok(Wake::Reload) => {
                    if let Err(e) = self.reload() {
                        tracing::error!("{e:#}");
                    }
                }
                Ok(Wake::Heartbeat) => beat_at = Instant::now(),
                Ok(Wake::Reconcile) => reconcile_at = Instant::now(),
                Ok(Wake::Reconciled(result)) => {
                    reconciling = false;
                    reconcile_at = match result {
                        Ok(()) => {
                            reconcile_backoff.succeeded();
                            Instant::now() + reconcile_every
                        }
                        Err(after) => {
                            let delay = reconcile_backoff.failed(after, jitter());
                            tracing::info!("next reconcile in {:.1}s", delay.as_secs_f64());
                            Instant::now() + delay
                        }
                    };
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if let Some(every) = watchdog
                && now >= watchdog_at
            {
                notify::watchdog();
                watchdog_at = now + every;
            }
            if now >= beat_at {
                // Hand edits to the settings file are noticed on the
                // heartbeat's tick; `tether config` tells the service at once.
                self.reload_if_changed(&mut watch);
                beat_at = match self.heartbeat() {
                    Ok(Some(response)) => {
                        beat_backoff.succeeded();
                        if sequence_seen.replace(response.extensions_sequence)
                            != Some(response.extensions_sequence)
                        {
                            reconcile_at = now;
                        }
                        now + heartbeat_every
                    }
                    Ok(None) => {
                        // Not connected: a later connect reconciles at its
                        // first heartbeat.
                        sequence_seen = None;
                        now + heartbeat_every
                    }
                    Err(e) => {
                        let delay = beat_backoff.failed(retry_after(&e), jitter());
                        tracing::warn!(
                            "heartbeat failed ({} in a row), next try in {:.1}s: {e:#}",
                            beat_backoff.failures(),
                            delay.as_secs_f64()
                        );
                        now + delay
                    }
                };
            }
            if !reconciling && Instant::now() >= reconcile_at {
                reconciling = reconciler.send(()).is_ok();
                // Until the worker answers, the next pass is not due.
                reconcile_at = Instant::now() + reconcile_every;
            }
        }
    }

    fn reload_if_changed(&self, watch: &mut crate::config::Watch) {
        match watch.changed() {
            Some(Ok(settings)) => self.apply(settings),
            Some(Err(e)) => {
                tracing::error!(
                    "the settings file changed but is broken; keeping the settings in effect: {e}"
                );
                lock(&self.live).settings_error = Some(e.to_string());
            }
            None => {}
        }
    }

    /// Re-reads the settings file now (`service reload`, SIGHUP); a broken
    /// file leaves the settings in effect and is reported.
    fn reload(&self) -> Result<()> {
        self.loaded.clear();
        match self.store.load() {
            Ok(settings) => {
                self.apply(settings);
                Ok(())
            }
            Err(e) => {
                lock(&self.live).settings_error = Some(e.to_string());
                Err(anyhow::Error::new(e)
                    .context("the settings in effect are kept until the file is fixed"))
            }
        }
    }

    /// Puts new settings in effect (see the README's "When settings take
    /// effect").
    fn apply(&self, settings: Settings) {
        let before = self.settings();
        let now = crate::util::now();
        if before == settings {
            lock(&self.live).settings_reloaded = Some(now);
            return;
        }
        // Loaded extensions carry grants made from the settings.
        self.loaded.clear();
        if before.proxy != settings.proxy {
            // Tokens were fetched through the old route; the next request
            // builds its client from the new policy.
            tracing::info!("proxy settings changed; new requests use them");
        }
        if before.extensions.agent.cpulimit != settings.extensions.agent.cpulimit {
            self.wasm
                .set_cpu_percent(settings.extensions.agent.cpulimit);
            tracing::info!(
                "extensions.agent.cpulimit is now {}%",
                settings.extensions.agent.cpulimit
            );
        }
        if before.extensions.enabled && !settings.extensions.enabled {
            tracing::info!("extensions.enabled is false: reconciliation stops");
        }
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = settings.clone();
        let mut live = lock(&self.live);
        live.settings = serde_json::to_value(&settings).unwrap_or(Value::Null);
        live.settings_error = None;
        live.settings_reloaded = Some(now);
        tracing::info!("settings reloaded");
    }

    /// One heartbeat; `None` when the machine is not connected.
    fn heartbeat(&self) -> Result<Option<HeartbeatResponse>> {
        let settings = self.settings();
        let Some(machine) = ConnectedMachine::load(&self.state, &settings)? else {
            let mut live = lock(&self.live);
            live.connected = false;
            live.resource_id = None;
            return Ok(None);
        };
        let (registration, identity) = (&machine.registration, machine.identity());
        let audience = registration.endpoints.agent_audience();
        let beat = HeartbeatRequest {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            service_statuses: serde_json::to_value(super::report::service_statuses())
                .unwrap_or_default(),
            agent_configuration: serde_json::to_value(super::report::agent_configuration(
                &settings,
            ))
            .unwrap_or_default(),
            extensions: installed(&self.state)
                .into_iter()
                .map(|e| ExtensionSummary {
                    name: e.id,
                    version: e.version,
                    state: e.state,
                })
                .collect(),
        };
        let send = || -> Result<HeartbeatResponse> {
            let token = self.tokens.get(&identity, &audience)?;
            agent::heartbeat(
                &registration.endpoints,
                &machine.proxy,
                registration.ca_pem(),
                &token.access_token,
                &beat,
            )
        };
        let result = send().or_else(|e| {
            // A token the cloud no longer takes (its clock moved, its keys
            // rolled): renew once and try again.
            if agent::refused_status(&e) == Some(401) {
                self.tokens.clear();
                send()
            } else {
                Err(e)
            }
        });
        let mut live = lock(&self.live);
        live.connected = true;
        live.resource_id = Some(registration.resource_id.clone());
        match result {
            Ok(response) => {
                status::record_heartbeat(&self.state);
                live.last_heartbeat = Some(crate::util::now());
                live.cloud_status = Some(response.status.clone());
                live.consecutive_failures = 0;
                live.last_heartbeat_error = None;
                tracing::debug!("heartbeat: {}", response.status);
                Ok(Some(response))
            }
            Err(e) => {
                status::record_error(&self.state, "heartbeat", &format!("{e:#}"));
                live.consecutive_failures += 1;
                live.last_heartbeat_error = Some(format!("{e:#}"));
                Err(e)
            }
        }
    }

    fn reconcile(&self) -> Result<()> {
        let settings = self.settings();
        if !settings.extensions.enabled || Registration::load(&self.state)?.is_none() {
            return Ok(());
        }
        // Downloads and compiles happen before the extensions are taken,
        // so scheduled runs and invokes meanwhile do not wait for them.
        let fetched = reconcile::fetch(&self.state, &settings, Some(&self.wasm))?;
        let outcomes = reconcile::apply(&mut lock(&self.extensions), &settings, fetched)?;
        for outcome in outcomes.iter().filter(|o| o.action != "unchanged") {
            tracing::info!(
                "extension {}: {} {}",
                outcome.name,
                outcome.action,
                outcome.message
            );
        }
        let mut live = lock(&self.live);
        live.last_reconcile = Some(crate::util::now());
        live.reconcile_outcomes = serde_json::to_value(&outcomes).unwrap_or(Value::Null);
        Ok(())
    }

    fn status(&self) -> Result<Value> {
        let mut live = lock(&self.live);
        live.extension_runtime = Some(RuntimeStatus::of(&self.wasm));
        Ok(serde_json::to_value(&*live)?)
    }

    /// After the machine's registration ended or changed: its tokens and
    /// what the service showed of it are no longer the machine's.
    fn forget_registration(&self) {
        self.tokens.clear();
        let mut live = lock(&self.live);
        live.connected = false;
        live.resource_id = None;
        live.cloud_status = None;
    }

    /// Runs one control request.
    fn handle(self: &Arc<Self>, request: Request, progress: &dyn Fn(&str)) -> Result<Value> {
        match request {
            Request::Status => self.status(),
            Request::Reload => {
                self.reload()?;
                self.status()
            }
            Request::Heartbeat => {
                self.wake(Wake::Heartbeat);
                Ok(json!({"scheduled": "heartbeat"}))
            }
            Request::Reconcile => {
                self.wake(Wake::Reconcile);
                Ok(json!({"scheduled": "reconcile"}))
            }
            Request::Extension(op) => {
                let settings = self.settings();
                // Compiled before the extensions are taken: a large
                // component's compile holds up nobody's calls.
                if let Some(package) = op.package() {
                    crate::extensions::manager::precompile(&self.state, &self.wasm, &package);
                }
                crate::extensions::owner::apply(&mut lock(&self.extensions), &settings, op)
            }
            Request::Disconnect {
                arm_token,
                force_local_only,
            } => {
                let mut extensions = lock(&self.extensions);
                let request = DisconnectRequest {
                    sign_in: arm_token.map(SignIn::AccessToken),
                    force_local_only,
                };
                let mut say = |text: &str| {
                    tracing::info!("disconnect: {text}");
                    progress(text);
                };
                let plan = disconnect(&mut extensions, &self.settings(), request, &mut say)?;
                extensions.set_protected_settings(Default::default());
                drop(extensions);
                self.forget_registration();
                Ok(serde_json::to_value(plan)?)
            }
            Request::Rename {
                arm_token,
                new_name,
            } => {
                let mut extensions = lock(&self.extensions);
                let request = RenameRequest {
                    new_name,
                    sign_in: SignIn::AccessToken(arm_token),
                };
                let mut say = |text: &str| {
                    tracing::info!("rename: {text}");
                    progress(text);
                };
                let renamed = rename(&mut extensions, &self.settings(), request, &mut say);
                drop(extensions);
                // Whatever step it reached, the machine's identity changed.
                self.forget_registration();
                let renamed = renamed?;
                self.wake(Wake::Heartbeat);
                Ok(serde_json::to_value(renamed)?)
            }
            Request::Reset { arm_token } => {
                let started = reset::prepare(&self.state, arm_token)?;
                tracing::info!("reset {} started in the service", started.id);
                let service = self.clone();
                let id = started.id.clone();
                // The reset runs on after this answer, holding the extensions.
                std::thread::spawn(move || {
                    let mut extensions = lock(&service.extensions);
                    if let Err(e) = reset::run(&mut extensions, &service.settings(), &id) {
                        tracing::error!("reset failed: {e:#}");
                    }
                    service.forget_registration();
                });
                Ok(serde_json::to_value(started)?)
            }
        }
    }
}
