//! The control channel between the CLI and the running service: one JSON
//! request per connection, answered by JSON lines (progress, then one
//! result). A Unix socket under the state root, open to root and the
//! `tether` group only; on Windows a named pipe for administrators only.

pub mod client;
pub mod server;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

use crate::state::StateRoot;

/// What the CLI asks of the service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// The service's live status.
    Status,
    /// Re-read the settings now.
    Reload,
    /// Send a heartbeat now (after `connect`, say).
    Heartbeat,
    /// Reconcile extensions now.
    Reconcile,
    /// Run an extension's command in the service.
    Invoke {
        id: String,
        command: String,
        args: Vec<String>,
    },
    /// Disconnect inside the service, which removes the extensions it hosts.
    #[serde(rename_all = "camelCase")]
    Disconnect {
        /// An ARM token the CLI signed in for; none with force_local_only.
        arm_token: Option<String>,
        force_local_only: bool,
    },
    /// Start a reset inside the service.
    #[serde(rename_all = "camelCase")]
    Reset { arm_token: Option<String> },
}

/// One line of the answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reply {
    /// A step, for people watching.
    Progress(String),
    /// The result; the last line.
    Done(Value),
    /// The failure, with the exit code the CLI should end with; the last line.
    #[serde(rename_all = "camelCase")]
    Failed { exit_code: u8, message: String },
}

/// The largest request the service reads.
pub const MAX_REQUEST_BYTES: u64 = 1024 * 1024;

/// Where the control socket of this state root lives.
pub fn socket_path(state: &StateRoot) -> PathBuf {
    state.path().join("run").join("control.sock")
}

/// The named pipe of this state root: one per root, so test services with
/// their own roots do not meet.
pub fn pipe_name(state: &StateRoot) -> String {
    let digest = blake3::hash(state.path().to_string_lossy().as_bytes());
    format!(
        r"\\.\pipe\tether-control-{}",
        &digest.to_hex().as_str()[..16]
    )
}
