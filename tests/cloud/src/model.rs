//! What tether-cloud knows: tenants, principals, role assignments,
//! subscriptions, machines, extensions, operations, pending sign-ins and
//! the gallery. All of it serializes, so `--state FILE` survives restarts.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use tether_cloud_api::arm::{Machine, MachineExtension};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// tether-cloud's RSA token signing key (kept, so tokens survive
    /// restarts), PKCS#8 DER in base64; made at the first start (state
    /// files from before it get one then).
    #[serde(default)]
    pub token_key: String,
    pub admin_key: String,
    /// What the metrics sink asks of who posts (made at the first start;
    /// state files from before get one then).
    #[serde(default)]
    pub metrics_key: String,
    /// The latest measurements by lower-cased machine id.
    #[serde(default)]
    pub metrics: BTreeMap<String, crate::metrics::MetricsRecord>,
    /// Seconds the admin API has moved the clock forward.
    pub clock_offset: u64,
    pub tenants: BTreeMap<String, Tenant>,
    pub users: BTreeMap<String, User>,
    /// By client (application) id.
    pub principals: BTreeMap<String, ServicePrincipal>,
    pub role_assignments: Vec<RoleAssignment>,
    pub subscriptions: BTreeMap<String, Subscription>,
    /// By lower-cased resource id.
    pub machines: BTreeMap<String, MachineRecord>,
    /// By lower-cased resource id.
    pub extensions: BTreeMap<String, ExtensionRecord>,
    pub operations: BTreeMap<String, Operation>,
    /// By lower-cased resource id.
    #[serde(default)]
    pub run_commands: BTreeMap<String, RunCommandRecord>,
    pub device_codes: BTreeMap<String, DeviceCode>,
    pub auth_codes: BTreeMap<String, AuthCode>,
    /// Browser sign-ins waiting for an administrator, by id.
    #[serde(default)]
    pub pending_sign_ins: BTreeMap<String, PendingSignIn>,
    /// By SHA-256 of the refresh token.
    pub refresh_tokens: BTreeMap<String, RefreshGrant>,
    /// Client-assertion ids already used (replay protection).
    pub used_assertions: BTreeSet<String>,
    /// By `publisher/name/version`, lower-cased.
    pub gallery: BTreeMap<String, GalleryItem>,
    /// Raised whenever any machine's desired extensions change.
    pub extension_sequence: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub object_id: String,
    pub tenant_id: String,
    pub username: String,
    pub password_salt: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    pub client_id: String,
    pub object_id: String,
    pub tenant_id: String,
    pub display_name: String,
    /// SHA-256 of each client secret.
    pub secret_hashes: Vec<String>,
    pub certificates: Vec<Certificate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// Base64url SHA-1 of the DER certificate (`x5t`).
    pub thumbprint: String,
    /// Base64url SHA-256 of the DER certificate (`x5t#S256`).
    #[serde(default)]
    pub thumbprint_s256: String,
    /// The public key, base64: an RSA PKCS#1 key, or Ed25519's 32 bytes.
    pub public_key: String,
}

/// The roles that matter to connected machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// "Azure Connected Machine Onboarding": read and create machines.
    Onboarding,
    /// "Azure Connected Machine Resource Administrator": everything.
    Administrator,
    /// Read only.
    Reader,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text
            .to_ascii_lowercase()
            .replace([' ', '-', '_'], "")
            .as_str()
        {
            "onboarding" | "azureconnectedmachineonboarding" => Some(Role::Onboarding),
            "administrator" | "admin" | "azureconnectedmachineresourceadministrator" => {
                Some(Role::Administrator)
            }
            "reader" => Some(Role::Reader),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub principal_id: String,
    pub role: Role,
    /// `/subscriptions/{id}` or `/subscriptions/{id}/resourceGroups/{rg}`.
    pub scope: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    pub tenant_id: String,
    pub display_name: String,
    /// By lower-cased name.
    pub resource_groups: BTreeMap<String, ResourceGroup>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroup {
    pub name: String,
    pub location: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineRecord {
    pub resource: Machine,
    pub subscription: String,
    pub created: u64,
    /// When ARM last changed it (PUT, PATCH), for `systemData`.
    #[serde(default)]
    pub modified: Option<u64>,
    pub last_heartbeat: Option<u64>,
    /// When the status last changed (seconds), for `lastStatusChange`.
    pub status_since: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionRecord {
    pub resource: MachineExtension,
    /// Lower-cased id of the machine it belongs to.
    pub machine: String,
    /// Kept out of `resource` so that it is never returned by ARM.
    pub protected_settings: Option<serde_json::Value>,
    pub sequence: u64,
    /// Set by DELETE: the machine is to remove it.
    pub deleting: bool,
    pub last_report: Option<tether_cloud_api::agent::ExtensionStatusReport>,
    /// When the machine sent `last_report` (seconds), for the instance
    /// view's `status.time`.
    #[serde(default)]
    pub reported_at: Option<u64>,
    /// When it was first put and last changed (seconds), for `systemData`.
    #[serde(default)]
    pub created: Option<u64>,
    #[serde(default)]
    pub modified: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCommandRecord {
    /// As ARM returns it (no protected parameters).
    pub resource: tether_cloud_api::run_command::MachineRunCommand,
    /// Lower-cased id of the machine it runs on.
    pub machine: String,
    /// Kept out of `resource` so that it is never returned by ARM.
    pub protected_parameters: Vec<tether_cloud_api::run_command::RunCommandParameter>,
    /// The current run: a PUT starts a new one.
    pub run_id: String,
    /// The long-running operation of the current run.
    pub operation: String,
    pub created: u64,
    pub modified: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub id: String,
    /// Lower-cased id of the resource it is about: an extension, or the
    /// machine for [`OperationKind::DeleteMachine`].
    pub extension: String,
    pub kind: OperationKind,
    /// The extension sequence the machine must report to finish it.
    pub sequence: u64,
    pub status: String,
    pub start: u64,
    pub end: Option<u64>,
    pub error: Option<tether_cloud_api::arm::ErrorDetail>,
    pub location: String,
    pub subscription: String,
}

impl Operation {
    /// Ends it: `Succeeded`, or `Failed` with the error.
    pub fn finish(&mut self, error: Option<tether_cloud_api::arm::ErrorDetail>, now: u64) {
        self.status = if error.is_some() {
            "Failed"
        } else {
            "Succeeded"
        }
        .into();
        self.error = error;
        self.end = Some(now);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationKind {
    Put,
    Delete,
    /// A machine's deletion, done at once; long-running in the
    /// api-versions whose specification says so.
    DeleteMachine,
    /// A run command's run: ends when the machine reports it done (or,
    /// with `asyncExecution`, started).
    RunCommand,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCode {
    pub user_code: String,
    pub tenant_id: String,
    pub client_id: String,
    pub scope: String,
    pub expires_at: u64,
    pub interval: u64,
    pub last_poll: Option<u64>,
    pub state: PendingState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingState {
    Pending,
    Approved { object_id: String },
    Denied,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingSignIn {
    /// The authorize request's parameters.
    pub params: BTreeMap<String, String>,
    pub state: PendingState,
    pub expires_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthCode {
    pub tenant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub object_id: String,
    pub expires_at: u64,
    /// The authorize request's `nonce`, echoed in the id token.
    #[serde(default)]
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshGrant {
    pub tenant_id: String,
    pub client_id: String,
    pub object_id: String,
    pub scope: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GalleryItem {
    pub publisher: String,
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub size: u64,
    /// The package, base64.
    pub content: String,
}
