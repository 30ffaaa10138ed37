//! The cloud metadata document (`GET /metadata/endpoints`), the way ARM
//! describes custom clouds, with the agent service and extension gallery.

use serde::{Deserialize, Serialize};

pub const METADATA_API_VERSION: &str = "2022-09-01";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudEndpoints {
    pub name: String,
    pub portal: String,
    pub authentication: Authentication,
    pub resource_manager: String,
    /// The data plane the machine itself talks to (heartbeat, desired
    /// extensions, status).
    pub agent_service: String,
    pub gallery: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    pub login_endpoint: String,
    /// The first is ARM's audience; the second the agent service's.
    pub audiences: Vec<String>,
    pub tenant: String,
    pub identity_provider: String,
}
