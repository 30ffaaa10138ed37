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
    /// Schedule a reconcile of extensions now.
    Reconcile,
    /// Change, reconcile or invoke extensions: the service owns them.
    Extension(crate::extensions::owner::ExtensionOp),
    /// Disconnect inside the service, which removes the extensions it hosts.
    #[serde(rename_all = "camelCase")]
    Disconnect {
        /// An ARM token the CLI signed in for; none with force_local_only.
        arm_token: Option<String>,
        force_local_only: bool,
    },
    /// Rename the machine inside the service, which hosts the extensions
    /// to carry over (and holds their protected settings in memory).
    #[serde(rename_all = "camelCase")]
    Rename { arm_token: String, new_name: String },
    /// Start a reset inside the service.
    #[serde(rename_all = "camelCase")]
    Reset { arm_token: Option<String> },
}

impl Request {
    /// Whether only root (Administrators or SYSTEM on Windows) may ask it.
    /// Everything but the status changes the machine or runs an
    /// extension's code with its data; the `tether` group may only look.
    pub fn needs_admin(&self) -> bool {
        !matches!(self, Request::Status)
    }

    /// The request's name, for refusals and logs (never its arguments: a
    /// disconnect carries a token).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Reload => "reload",
            Request::Heartbeat => "heartbeat",
            Request::Reconcile => "reconcile",
            Request::Extension(op) => match op {
                crate::extensions::owner::ExtensionOp::Install { .. } => "extension install",
                crate::extensions::owner::ExtensionOp::Remove { .. } => "extension remove",
                crate::extensions::owner::ExtensionOp::Enable { .. } => "extension enable",
                crate::extensions::owner::ExtensionOp::Disable { .. } => "extension disable",
                crate::extensions::owner::ExtensionOp::Reconcile => "extension reconcile",
                crate::extensions::owner::ExtensionOp::Invoke { .. } => "extension invoke",
            },
            Request::Disconnect { .. } => "disconnect",
            Request::Rename { .. } => "rename",
            Request::Reset { .. } => "reset",
        }
    }
}

/// Who is on the other end of a control connection, as the operating
/// system says (never as the request claims).
#[derive(Debug, Clone)]
pub struct Caller {
    /// root, or a member of Administrators or SYSTEM.
    pub admin: bool,
    /// For the log: `uid 1000`, `pid 4242`.
    pub who: String,
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

/// The largest request the service reads from root: a package, in base64.
pub const MAX_REQUEST_BYTES: u64 = 96 << 20;

/// The largest request the service reads from anyone else (who may only
/// ask for the status).
pub const MAX_UNPRIVILEGED_REQUEST_BYTES: u64 = 64 << 10;

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
