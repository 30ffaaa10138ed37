//! The agent service: what a connected machine sends and receives,
//! authenticated with its own identity.

use crate::arm::InstanceViewStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A heartbeat: the machine is alive, and this is how it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatRequest {
    pub agent_version: String,
    #[serde(default)]
    pub service_statuses: Value,
    #[serde(default)]
    pub agent_configuration: Value,
    #[serde(default)]
    pub extensions: Vec<ExtensionSummary>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionSummary {
    pub name: String,
    pub version: String,
    /// `transitioning | success | warning | error`.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    pub status: String,
    /// Current sequence of the desired extensions: fetch them when it moved.
    pub extensions_sequence: u64,
}

/// Every extension the cloud wants on the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredExtensions {
    pub sequence: u64,
    pub extensions: Vec<DesiredExtension>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredExtension {
    /// The extension resource's name.
    pub name: String,
    pub publisher: String,
    #[serde(rename = "type")]
    pub extension_type: String,
    pub version: String,
    #[serde(default)]
    pub settings: Value,
    /// Only ever sent to the machine itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_settings: Option<Value>,
    pub enable_automatic_upgrade: bool,
    pub package_url: Option<String>,
    pub package_sha256: Option<String>,
    pub package_size: Option<u64>,
    /// Raised every time this extension's desired state changes.
    pub sequence: u64,
}

/// A machine's report of one extension's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionStatusReport {
    /// The sequence of the desired state this report answers.
    pub sequence: u64,
    /// `transitioning | success | warning | error | removed`.
    pub state: String,
    pub version: String,
    pub message: String,
    /// The latest document the extension reported (contract 0.2.0): one
    /// JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Value>,
}

impl ExtensionStatusReport {
    /// The ARM instance-view status for this report.
    pub fn instance_view_status(&self, time: &str) -> InstanceViewStatus {
        let (code, level, display) = match self.state.as_str() {
            "success" => (
                "ProvisioningState/succeeded",
                "Info",
                "Provisioning succeeded",
            ),
            "warning" => (
                "ProvisioningState/succeeded",
                "Warning",
                "Provisioning succeeded with warnings",
            ),
            "error" => ("ProvisioningState/failed", "Error", "Provisioning failed"),
            "removed" => ("ProvisioningState/deleted", "Info", "Removed"),
            _ => ("ProvisioningState/transitioning", "Info", "Transitioning"),
        };
        InstanceViewStatus {
            code: code.into(),
            level: level.into(),
            display_status: display.into(),
            message: self.message.clone(),
            time: time.into(),
        }
    }
}
