//! tether-cloud: a local control plane for Tether, faithful to the shapes of
//! Entra ID and Azure Resource Manager the way Azurite is faithful to Azure
//! Storage. The agent never special-cases it: it differs from a real cloud
//! only by its endpoints.
//!
//! [`start`] serves it on a loopback address (tests run it in-process);
//! the `tether-cloud` binary serves it from the command line and drives a
//! running one with `tether-cloud admin …`.

mod admin;
mod agent;
mod arm;
mod auth;
mod errors;
mod faults;
mod fleet;
mod gallery;
mod identity;
mod keys;
mod metrics;
mod model;
mod page;
mod run_commands;
mod store;
mod tls;
mod util;
mod verified;

pub mod client;
pub mod simulate;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::{get, post};
use model::Model;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tether_cloud_api::metadata::{Authentication, CloudEndpoints};

pub use arm::{OPERATION_RETENTION, OPERATION_TIMEOUT};
pub use faults::{Fault, RequestRecord};

/// How a tether-cloud is served.
#[derive(Clone)]
pub struct CloudConfig {
    pub listen: SocketAddr,
    /// Keep the state in this SQLite database (created if missing; a JSON
    /// state file of an earlier tether-cloud is migrated) and serve what it
    /// holds; `None` keeps it in memory only.
    pub state_file: Option<PathBuf>,
    /// Keep the state in this PostgreSQL database instead
    /// (`postgres://user:password@host:port/database`).
    pub database_url: Option<String>,
    /// Items per page of ARM lists.
    pub page_size: usize,
    /// The device flow's polling interval, in seconds.
    pub device_code_interval: u64,
    /// Serve HTTPS with a generated CA, writing the CA certificate here.
    pub tls_ca_file: Option<PathBuf>,
    /// The URL clients reach this server by when it is one of several
    /// replicas behind one address: tokens, links and the metadata
    /// document name it. Without it, the address it listens on.
    pub public_url: Option<String>,
}

// By hand: the database URL holds its password.
impl std::fmt::Debug for CloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudConfig")
            .field("listen", &self.listen)
            .field("state_file", &self.state_file)
            .field(
                "database_url",
                &self.database_url.as_deref().map(store::redacted),
            )
            .field("page_size", &self.page_size)
            .field("device_code_interval", &self.device_code_interval)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_file: None,
            database_url: None,
            page_size: 100,
            device_code_interval: 5,
            tls_ca_file: None,
            public_url: None,
        }
    }
}

/// The shared state of a running tether-cloud.
pub(crate) struct Cloud {
    pub base_url: String,
    pub config: CloudConfig,
    /// The RSA key tokens are signed with, and its certificate.
    pub key: keys::TokenKey,
    model: Arc<Mutex<Model>>,
    store: store::Store,
    /// Tokens already verified, so a heartbeat checks no RSA signature.
    pub verified: verified::VerifiedTokens,
    pub faults: faults::Faults,
}

impl Cloud {
    /// Seconds since the epoch, on the cloud's clock (which the admin API
    /// can move forward).
    pub fn now(&self) -> u64 {
        util::real_now() + self.read(|m| m.meta.clock_offset)
    }

    pub fn read<R>(&self, f: impl FnOnce(&Model) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the model and queues what changed for the store; the answer
    /// to the request waits until it is durable
    /// (`store::acknowledge_when_durable`).
    pub fn write<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let mut model = self.lock();
        let result = f(&mut model);
        self.store.record(&mut model, store::Attributed::Yes);
        result
    }

    /// A change made on the way (timing out or forgetting operations), not
    /// what the request asked: if another replica made the same change
    /// first and this one is refused, the request is still answered.
    pub fn write_upkeep<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let mut model = self.lock();
        let result = f(&mut model);
        self.store.record(&mut model, store::Attributed::No);
        result
    }

    fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.base_url)
    }

    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.base_url)
    }

    /// The audience of ARM tokens.
    pub fn arm_audience(&self) -> String {
        format!("{}/", self.base_url)
    }

    /// The audience of agent-service tokens.
    pub fn agent_audience(&self) -> String {
        format!("{}/agent/", self.base_url)
    }

    pub fn endpoints(&self) -> CloudEndpoints {
        CloudEndpoints {
            name: "TetherCloud".into(),
            portal: format!("{}/", self.base_url),
            authentication: Authentication {
                login_endpoint: format!("{}/", self.base_url),
                audiences: vec![self.arm_audience(), self.agent_audience()],
                tenant: "common".into(),
                identity_provider: "AAD".into(),
            },
            resource_manager: format!("{}/", self.base_url),
            agent_service: format!("{}/agent", self.base_url),
            gallery: format!("{}/gallery", self.base_url),
        }
    }
}

/// A tether-cloud serving on a background task.
pub struct RunningCloud {
    /// `http://127.0.0.1:PORT` (or `https://` with TLS), without a
    /// trailing slash: what clients use (the public URL, when given).
    pub url: String,
    /// The address it listens on, as a URL.
    pub listening: String,
    /// The bearer credential of the admin API.
    pub admin_key: String,
    /// Where its state is kept, for people (no password).
    pub state: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningCloud {
    /// The metadata URL the agent is pointed at (`--cloud URL`).
    pub fn metadata_url(&self) -> String {
        format!(
            "{}/metadata/endpoints?api-version={}",
            self.url,
            tether_cloud_api::metadata::METADATA_API_VERSION
        )
    }

    /// Stops serving and waits until the listener is closed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// A tether-cloud on its own thread and runtime, for synchronous callers
/// (tests, the quickstart). Stops when dropped.
pub struct BackgroundCloud {
    pub url: String,
    pub admin_key: String,
    /// The CA certificate to trust, when serving with TLS.
    pub ca_file: Option<PathBuf>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundCloud {
    pub fn start(config: CloudConfig) -> Result<Self> {
        let ca_file = config.tls_ca_file.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(String, String)>>();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tether-cloud".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match start(config).await {
                        Ok(cloud) => {
                            let _ = ready_tx.send(Ok((cloud.url.clone(), cloud.admin_key.clone())));
                            let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                            cloud.stop().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })?;
        let (url, admin_key) = ready_rx
            .recv()
            .context("tether-cloud's thread ended before it started")??;
        Ok(Self {
            url,
            admin_key,
            ca_file,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The metadata URL the agent is pointed at (`--cloud URL`).
    pub fn metadata_url(&self) -> String {
        format!(
            "{}/metadata/endpoints?api-version={}",
            self.url,
            tether_cloud_api::metadata::METADATA_API_VERSION
        )
    }

    /// A client of this cloud's admin API.
    pub fn admin(&self) -> Result<client::AdminClient> {
        let ca = match &self.ca_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("could not read {}", file.display()))?,
            ),
            None => None,
        };
        client::AdminClient::with_ca(&self.url, &self.admin_key, ca.as_deref())
    }
}

impl Drop for BackgroundCloud {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds and serves; returns once the listener is up.
pub async fn start(config: CloudConfig) -> Result<RunningCloud> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("could not listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let tls = match &config.tls_ca_file {
        Some(file) => Some(tls::generate(file)?.0),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base_url = format!("{scheme}://{addr}");
    let place = match (&config.state_file, &config.database_url) {
        (Some(_), Some(_)) => {
            anyhow::bail!("give the state file (--state) or the database (--database), not both")
        }
        (Some(path), None) => store::Place::Sqlite(path.clone()),
        (None, Some(url)) => store::Place::Postgres(url.clone()),
        (None, None) => store::Place::Memory,
    };
    let model = Arc::new(Mutex::new(Model::default()));
    let store = store::Store::open(&place, &model)?;
    let state = place.describe();
    // The keys a fresh state lacks are made now and kept before anything
    // is served; replicas starting together keep the first one's.
    {
        let mut held = model.lock().unwrap_or_else(PoisonError::into_inner);
        let meta = &mut held.meta;
        if meta.admin_key.is_empty() {
            meta.admin_key = util::secret(32);
        }
        if meta.token_key.is_empty() {
            use base64::Engine as _;
            meta.token_key =
                base64::engine::general_purpose::STANDARD.encode(keys::generate_pkcs8()?);
        }
        if meta.metrics_key.is_empty() {
            meta.metrics_key = util::secret(32);
        }
        store.record(&mut held, store::Attributed::Yes);
    }
    store.flush()?;
    let (token_key, admin_key) = {
        use base64::Engine as _;
        let held = model.lock().unwrap_or_else(PoisonError::into_inner);
        let token_key = base64::engine::general_purpose::STANDARD
            .decode(&held.meta.token_key)
            .context("the state's signing key is damaged")?;
        (token_key, held.meta.admin_key.clone())
    };
    let listening = base_url.clone();
    let base_url = config
        .public_url
        .as_deref()
        .map(|url| url.trim_end_matches('/').to_string())
        .unwrap_or(base_url);
    let cloud = Arc::new(Cloud {
        base_url: base_url.clone(),
        key: keys::TokenKey::from_pkcs8(&token_key)?,
        model,
        store,
        verified: verified::VerifiedTokens::default(),
        faults: faults::Faults::default(),
        config,
    });
    let app = router(cloud);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        if let Some(tls) = tls {
            tls::serve(listener, tls, app, rx).await;
            return;
        }
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!("tether-cloud stopped: {e}");
        }
    });
    Ok(RunningCloud {
        url: base_url,
        listening,
        admin_key,
        state,
        shutdown: Some(tx),
        task,
    })
}

fn router(cloud: Arc<Cloud>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/metadata/endpoints", get(metadata))
        .route(
            "/devicelogin",
            get(identity::devicelogin_page).post(identity::devicelogin_submit),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(identity::token))
        .route(
            "/{tenant}/discovery/instance",
            get(identity::instance_discovery),
        )
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(identity::devicecode),
        )
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(identity::authorize_page).post(identity::authorize_submit),
        )
        .route(
            "/{tenant}/oauth2/v2.0/authorize/continue",
            get(identity::authorize_continue),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(identity::keys))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(identity::openid_configuration),
        )
        .route("/subscriptions/{*rest}", axum::routing::any(arm::dispatch))
        .route("/agent/v1/heartbeat", post(agent::heartbeat))
        .route("/agent/v1/extensions", get(agent::desired))
        .route("/agent/v1/extensions/{name}/status", post(agent::report))
        .route("/metrics/v1/ingest", post(metrics::ingest))
        .route("/agent/v1/runcommands", get(run_commands::pending))
        .route(
            "/agent/v1/runcommands/{name}/status",
            post(run_commands::report),
        )
        .route(
            "/gallery/{publisher}/{name}/{version}",
            get(gallery::download),
        )
        .nest("/admin", admin::router(cloud.clone()))
        .layer(axum::middleware::from_fn_with_state(
            cloud.clone(),
            store::acknowledge_when_durable,
        ))
        .layer(axum::middleware::from_fn_with_state(
            cloud.clone(),
            faults::middleware,
        ))
        .with_state(cloud)
}

async fn metadata(
    axum::extract::State(cloud): axum::extract::State<Arc<Cloud>>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !query.contains_key("api-version") {
        return errors::ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
        .into_response();
    }
    axum::Json(cloud.endpoints()).into_response()
}
