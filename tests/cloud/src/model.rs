//! What tether-cloud knows: tenants, principals, role assignments,
//! subscriptions, machines, extensions, operations, pending sign-ins and
//! the gallery. Each entry is a row of the store (`crate::store`); the
//! whole of it still reads the JSON state file of earlier versions, which a
//! start migrates.

mod table;

pub use table::Table;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use tether_cloud_api::arm::{Machine, MachineExtension};

/// Everything tether-cloud holds. In memory it is one value behind one
/// lock; in the store it is one row per table entry (see
/// [`Model::written`]), so a change costs the rows it touched.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    #[serde(flatten)]
    pub meta: Meta,
    /// The latest measurements by lower-cased machine id.
    #[serde(default)]
    pub metrics: Table<crate::metrics::MetricsRecord>,
    pub tenants: Table<Tenant>,
    pub users: Table<User>,
    /// By client (application) id.
    pub principals: Table<ServicePrincipal>,
    /// By [`RoleAssignment::key`].
    #[serde(deserialize_with = "role_assignments")]
    pub role_assignments: Table<RoleAssignment>,
    pub subscriptions: Table<Subscription>,
    /// By lower-cased resource id.
    pub machines: Table<MachineRecord>,
    /// By lower-cased resource id (so a machine's are the keys it prefixes).
    pub extensions: Table<ExtensionRecord>,
    pub operations: Table<Operation>,
    /// By lower-cased resource id.
    #[serde(default)]
    pub run_commands: Table<RunCommandRecord>,
    pub device_codes: Table<DeviceCode>,
    pub auth_codes: Table<AuthCode>,
    /// Browser sign-ins waiting for an administrator, by id.
    #[serde(default)]
    pub pending_sign_ins: Table<PendingSignIn>,
    /// By SHA-256 of the refresh token.
    pub refresh_tokens: Table<RefreshGrant>,
    /// Client-assertion ids already used (replay protection), by
    /// `client/jti`, each with when its assertion expires.
    #[serde(deserialize_with = "used_assertions")]
    pub used_assertions: Table<u64>,
    /// By `publisher/name/version`, lower-cased.
    pub gallery: Table<GalleryItem>,
    /// The meta row as last stored, to tell whether it changed.
    #[serde(skip)]
    stored_meta: Option<Meta>,
}

/// The model's single values: one row of the store.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// tether-cloud's RSA token signing key (kept, so tokens survive
    /// restarts), PKCS#8 DER in base64; made at the first start.
    #[serde(default)]
    pub token_key: String,
    pub admin_key: String,
    /// What the metrics sink asks of who posts (made at the first start).
    #[serde(default)]
    pub metrics_key: String,
    /// Seconds the admin API has moved the clock forward.
    pub clock_offset: u64,
}

/// One row as the store keeps it: a table, a key, and the entry as JSON
/// (`None`: the entry was removed).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub table: &'static str,
    pub key: String,
    pub doc: Option<String>,
}

/// The table the single values are kept in, under [`META_KEY`].
pub const META_TABLE: &str = "meta";
pub const META_KEY: &str = "model";

/// A table as the store sees it: rows of JSON.
trait StoredTable {
    fn drain(&mut self, table: &'static str, into: &mut Vec<Row>) -> serde_json::Result<()>;
    fn load(&mut self, key: String, doc: Option<&str>) -> serde_json::Result<()>;
    fn mark_all_written(&mut self);
    fn forget_written(&mut self);
}

impl<V: Serialize + DeserializeOwned> StoredTable for Table<V> {
    fn drain(&mut self, table: &'static str, into: &mut Vec<Row>) -> serde_json::Result<()> {
        for (key, row) in self.drain_written() {
            let doc = row.map(serde_json::to_string).transpose()?;
            into.push(Row { table, key, doc });
        }
        Ok(())
    }

    fn load(&mut self, key: String, doc: Option<&str>) -> serde_json::Result<()> {
        let value = doc.map(serde_json::from_str).transpose()?;
        Table::load(self, key, value);
        Ok(())
    }

    fn mark_all_written(&mut self) {
        Table::mark_all_written(self);
    }

    fn forget_written(&mut self) {
        self.drain_written().for_each(drop);
    }
}

impl Model {
    /// Every table with the name the store keeps it under: the one list.
    fn tables(&mut self) -> [(&'static str, &mut dyn StoredTable); 16] {
        [
            ("metrics", &mut self.metrics),
            ("tenants", &mut self.tenants),
            ("users", &mut self.users),
            ("principals", &mut self.principals),
            ("role_assignments", &mut self.role_assignments),
            ("subscriptions", &mut self.subscriptions),
            ("machines", &mut self.machines),
            ("extensions", &mut self.extensions),
            ("operations", &mut self.operations),
            ("run_commands", &mut self.run_commands),
            ("device_codes", &mut self.device_codes),
            ("auth_codes", &mut self.auth_codes),
            ("pending_sign_ins", &mut self.pending_sign_ins),
            ("refresh_tokens", &mut self.refresh_tokens),
            ("used_assertions", &mut self.used_assertions),
            ("gallery", &mut self.gallery),
        ]
    }

    /// A machine's extensions (by its lower-cased id), found by their keys
    /// rather than by looking at every extension.
    pub fn extensions_of<'a>(&'a self, machine: &str) -> impl Iterator<Item = &'a ExtensionRecord> {
        let prefix = format!("{machine}/extensions/");
        self.extensions
            .with_prefix_owned(prefix)
            .map(|(_, record)| record)
    }

    /// The sequence of a machine's desired extensions: the newest change
    /// to any of them. A change is numbered one past it, so it moves
    /// whenever they change (a removal too: the removed one had the
    /// newest number). Per machine, so that a change to one machine's
    /// extensions sends no other machine to fetch its own, and changes to
    /// different machines through different replicas never conflict.
    pub fn machine_sequence(&self, machine: &str) -> u64 {
        self.extensions_of(machine)
            .map(|e| e.sequence)
            .max()
            .unwrap_or(0)
    }

    /// Lists each extension's operations in progress on its record, for
    /// a state written before records listed them (done once, at load).
    pub fn index_operations(&mut self) {
        let unlisted: Vec<(String, String)> = self
            .operations
            .values()
            .filter(|op| {
                op.status == "InProgress"
                    && matches!(op.kind, OperationKind::Put | OperationKind::Delete)
            })
            .filter(|op| {
                self.extensions
                    .get(&op.extension)
                    .is_some_and(|e| !e.operations.contains(&op.id))
            })
            .map(|op| (op.extension.clone(), op.id.clone()))
            .collect();
        for (extension, id) in unlisted {
            if let Some(record) = self.extensions.get_mut(&extension) {
                record.operations.push(id);
            }
        }
    }

    /// The number of the next change to a machine's extensions: past its
    /// sequence, and no earlier than `now_ms` (milliseconds since the
    /// epoch), so that it is also past every number the machine saw before
    /// an extension was removed outright (a disconnected machine's), whose
    /// numbers the sequence no longer holds.
    pub fn next_sequence(&self, machine: &str, now_ms: u64) -> u64 {
        (self.machine_sequence(machine) + 1).max(now_ms)
    }

    /// The name a table is kept under, as this version spells it; `None`
    /// for a table it does not know (a newer tether-cloud's).
    pub fn table_name(name: &str) -> Option<&'static str> {
        if name == META_TABLE {
            return Some(META_TABLE);
        }
        // An empty model costs nothing, and keeps the list in one place.
        Model::default()
            .tables()
            .into_iter()
            .map(|(table, _)| table)
            .find(|table| *table == name)
    }

    /// The rows written since the last call, for the store.
    pub fn written(&mut self) -> serde_json::Result<Vec<Row>> {
        let mut rows = Vec::new();
        if self.stored_meta.as_ref() != Some(&self.meta) {
            rows.push(Row {
                table: META_TABLE,
                key: META_KEY.into(),
                doc: Some(serde_json::to_string(&self.meta)?),
            });
            self.stored_meta = Some(self.meta.clone());
        }
        for (table, rows_of) in self.tables() {
            rows_of.drain(table, &mut rows)?;
        }
        Ok(rows)
    }

    /// Forgets what was written without serializing it: for a model no
    /// store keeps.
    pub fn forget_written(&mut self) {
        for (_, table) in self.tables() {
            table.forget_written();
        }
    }

    /// Counts every row as written: the next [`Self::written`] is the
    /// whole state (a fresh store, a migration).
    pub fn mark_all_written(&mut self) {
        self.stored_meta = None;
        for (_, table) in self.tables() {
            table.mark_all_written();
        }
    }

    /// Puts back a row as the store holds it (not counted as written).
    /// A table this version does not know is an error: a newer
    /// tether-cloud wrote it.
    pub fn load(&mut self, table: &str, key: String, doc: Option<&str>) -> anyhow::Result<()> {
        use anyhow::Context as _;
        if table == META_TABLE {
            if let Some(doc) = doc {
                self.meta = serde_json::from_str(doc).context("the meta row is damaged")?;
                self.stored_meta = Some(self.meta.clone());
            }
            return Ok(());
        }
        let Some((_, rows)) = self.tables().into_iter().find(|(name, _)| *name == table) else {
            anyhow::bail!(
                "the store has a table `{table}` this tether-cloud does not know; run a newer tether-cloud"
            );
        };
        rows.load(key.clone(), doc)
            .with_context(|| format!("the row {table}/{key} is damaged"))
    }
}

/// Role assignments were a list before they were a table.
fn role_assignments<'de, D: Deserializer<'de>>(d: D) -> Result<Table<RoleAssignment>, D::Error> {
    let mut table = Table::default();
    for assignment in Vec::<RoleAssignment>::deserialize(d)? {
        table.insert(assignment.key(), assignment);
    }
    Ok(table)
}

/// Used assertion ids were a set before they were a table. Their
/// assertions lived ten minutes, long past by any migration: kept until the
/// next pruning, as expired.
fn used_assertions<'de, D: Deserializer<'de>>(d: D) -> Result<Table<u64>, D::Error> {
    let mut table = Table::default();
    for id in Vec::<String>::deserialize(d)? {
        table.insert(id, 0);
    }
    Ok(table)
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

impl RoleAssignment {
    /// One assignment of a role to a principal at a scope: assigning it
    /// again changes nothing.
    pub fn key(&self) -> String {
        format!(
            "{}|{:?}|{}",
            self.principal_id,
            self.role,
            self.scope.to_ascii_lowercase()
        )
    }
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
    /// Its operations still in progress, which the machine's reports
    /// settle (found by id, not by looking through every operation).
    #[serde(default)]
    pub operations: Vec<String>,
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
