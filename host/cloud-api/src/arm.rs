//! Azure Resource Manager shapes: `Microsoft.HybridCompute/machines` and
//! their extensions, list results, long-running operations and errors.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The api-version the agent speaks: one where deleting a machine is a
/// long-running operation, so the agent's client follows them.
pub const API_VERSION: &str = "2025-01-13";

/// The `Microsoft.HybridCompute` api-versions tether-cloud serves, oldest
/// first, the newest the Azure SDKs default to among them; any other is
/// answered 400 `InvalidApiVersionParameter`, as ARM answers. Each behaves
/// as the published specification of that version says where tether-cloud
/// implements it (for example `Machines_CreateOrUpdate` answers 200 in all
/// of them; see [`machine_delete_is_long_running`]).
pub const SUPPORTED_API_VERSIONS: &[&str] =
    &["2022-12-27", "2024-07-10", "2025-01-13", "2026-07-15"];

/// Whether `Machines_Delete` is long-running in this api-version: 202 with
/// `Azure-AsyncOperation` and `Location` (or 204), from 2025-01-13 on; 200
/// or 204 before.
pub fn machine_delete_is_long_running(api_version: &str) -> bool {
    api_version >= "2025-01-13"
}

pub const MACHINE_TYPE: &str = "Microsoft.HybridCompute/machines";
pub const EXTENSION_TYPE: &str = "Microsoft.HybridCompute/machines/extensions";

/// A connected machine resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_data: Option<SystemData>,
    #[serde(default)]
    pub properties: MachineProperties,
}

/// ARM's `systemData`: when a resource was created and last changed (RFC
/// 3339), and by what kind of caller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_by_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_at: Option<String>,
}

/// A resource's managed identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// `Connected`, `Disconnected` or `Expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_change: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// The machine identity's public key (Ed25519, base64 of the 32 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_link_scope_resource_id: Option<String>,
    /// An [`AgentConfiguration`], as the machine last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_configuration: Option<Value>,
    /// [`ServiceStatuses`], as the machine last reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_statuses: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_details: Vec<ErrorDetail>,
}

/// `properties.serviceStatuses`, in the specification's names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatuses {
    pub extension_service: ServiceStatus,
    pub guest_configuration_service: ServiceStatus,
}

/// One service: `status` (`running`, `stopped`, `disabled`) and
/// `startupType` (`automatic`, `manual`, `disabled`), strings both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub status: String,
    pub startup_type: String,
}

/// `properties.agentConfiguration`, in the specification's names and
/// types: the flags are the strings `"true"`/`"false"`, as ARM has them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentConfiguration {
    pub proxy_url: String,
    pub incoming_connections_ports: Vec<String>,
    pub extensions_allow_list: Vec<ConfigurationExtension>,
    pub extensions_block_list: Vec<ConfigurationExtension>,
    pub proxy_bypass: Vec<String>,
    pub extensions_enabled: String,
    pub guest_configuration_enabled: String,
    /// `full` or `monitor`.
    pub config_mode: String,
}

/// An allow- or blocklist entry: `publisher` and `type`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationExtension {
    pub publisher: String,
    #[serde(rename = "type")]
    pub extension_type: String,
}

/// An extension on a machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineExtension {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_data: Option<SystemData>,
    #[serde(default)]
    pub properties: ExtensionProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionProperties {
    #[serde(default)]
    pub publisher: String,
    #[serde(rename = "type", default)]
    pub extension_type: String,
    #[serde(default)]
    pub type_handler_version: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub settings: Value,
    /// Accepted on PUT and PATCH; never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_settings: Option<Value>,
    #[serde(default)]
    pub enable_automatic_upgrade: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_view: Option<InstanceView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub type_handler_version: String,
    #[serde(default)]
    pub status: InstanceViewStatus,
}

/// The VM-extension status: `code` like `ProvisioningState/succeeded`,
/// `level` `Info | Warning | Error`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceViewStatus {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub display_status: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub time: String,
}

/// A page of a list, with the link to the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResult<T> {
    pub value: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// ARM's error envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
}

impl ErrorResponse {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                target: None,
                details: Vec::new(),
            },
        }
    }
}

/// The resource an `Azure-AsyncOperation` URL returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsyncOperation {
    pub id: String,
    pub name: String,
    /// `InProgress`, `Succeeded`, `Failed` or `Canceled`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

impl AsyncOperation {
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "Succeeded" | "Failed" | "Canceled")
    }
}
