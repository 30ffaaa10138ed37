//! The host service: the long-running process that keeps a connected
//! machine connected (heartbeats, identity renewal), keeps its extensions
//! as the cloud wants them (reconciliation), serves local metadata and
//! identity tokens, and answers the CLI on its control socket.

mod backoff;
mod challenge;
pub mod control;
mod daemon;
mod interfaces;
pub mod logfile;
pub mod metadata;
pub mod notify;
pub mod proxy_env;
mod rate_limit;
mod report;
mod tokens;
pub mod unit;
pub mod windows;

pub use daemon::{request_stop, run};

#[cfg(not(windows))]
pub use unit::{install, status as registration_status, uninstall};
#[cfg(windows)]
pub use windows::{install, status as registration_status, uninstall};

use crate::runtime::{CacheStats, CallOutcome, LogRecord, Runtime};
use crate::state::StateRoot;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// How `tether service run` was started.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    pub heartbeat_interval: Duration,
    pub reconcile_interval: Duration,
    /// 0: any free port (tests); the bound addresses are in the status.
    pub metadata_port: u16,
    /// Where the identity endpoint's key files go; `None`: the state
    /// root's choice ([`StateRoot::identity_tokens_dir`]).
    pub identity_tokens_dir: Option<std::path::PathBuf>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(300),
            reconcile_interval: Duration::from_secs(900),
            metadata_port: metadata::DEFAULT_PORT,
            identity_tokens_dir: None,
        }
    }
}

/// What `tether service status` shows of the running service.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveStatus {
    pub pid: u32,
    pub version: String,
    pub started: u64,
    pub heartbeat_interval_seconds: f64,
    pub reconcile_interval_seconds: f64,
    pub connected: bool,
    pub resource_id: Option<String>,
    /// The cloud's view, from the last heartbeat's answer.
    pub cloud_status: Option<String>,
    pub last_heartbeat: Option<u64>,
    pub next_heartbeat_at: Option<u64>,
    pub consecutive_failures: u32,
    pub last_heartbeat_error: Option<String>,
    pub last_reconcile: Option<u64>,
    pub reconcile_outcomes: Value,
    pub settings: Value,
    pub settings_reloaded: Option<u64>,
    /// Set while the settings file is broken (the previous settings stay).
    pub settings_error: Option<String>,
    pub metadata_endpoints: Vec<String>,
    /// Where the identity endpoint writes its key files.
    pub identity_tokens_dir: String,
    pub control: String,
    pub log_file: String,
    /// Read when status is asked for.
    pub extension_runtime: Option<RuntimeStatus>,
}

/// The service's one extension runtime.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStatus {
    /// `pooling` or `on-demand`.
    pub allocator: &'static str,
    /// `extensions.agent.cpulimit` as the runtime enforces it.
    pub cpu_percent: Option<u8>,
    /// How component loads were served: compiled, read from the disk
    /// cache, or kept in memory from an earlier call.
    pub components: CacheStats,
}

impl RuntimeStatus {
    pub fn of(runtime: &Runtime) -> Self {
        Self {
            allocator: if runtime.is_pooling() {
                "pooling"
            } else {
                "on-demand"
            },
            cpu_percent: runtime.cpu_percent(),
            components: runtime.cache_stats(),
        }
    }
}

impl LiveStatus {
    fn new(state: &StateRoot, options: &ServiceOptions, settings: Value) -> Self {
        Self {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            started: crate::util::now(),
            heartbeat_interval_seconds: options.heartbeat_interval.as_secs_f64(),
            reconcile_interval_seconds: options.reconcile_interval.as_secs_f64(),
            connected: false,
            resource_id: None,
            cloud_status: None,
            last_heartbeat: None,
            next_heartbeat_at: None,
            consecutive_failures: 0,
            last_heartbeat_error: None,
            last_reconcile: None,
            reconcile_outcomes: Value::Null,
            settings,
            settings_reloaded: None,
            settings_error: None,
            metadata_endpoints: Vec::new(),
            identity_tokens_dir: String::new(),
            control: if cfg!(windows) {
                control::pipe_name(state)
            } else {
                control::socket_path(state).display().to_string()
            },
            log_file: logfile::path(state.path()).display().to_string(),
            extension_runtime: None,
        }
    }
}

/// An extension command's result, as the service sends it back.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct InvokeResult {
    pub output: Option<String>,
    pub logs: Vec<LogRecord>,
}

impl From<CallOutcome> for InvokeResult {
    fn from(outcome: CallOutcome) -> Self {
        Self {
            output: outcome.output,
            logs: outcome.logs,
        }
    }
}
