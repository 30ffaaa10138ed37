//! What the heartbeat tells the cloud about this agent, in the shapes of
//! the machine resource's `serviceStatuses` and `agentConfiguration` (the
//! specification's names; strings where ARM has strings), so clients that
//! read them from ARM see what they see for azcmagent.

use crate::config::Settings;
use tether_cloud_api::arm::{
    AgentConfiguration, ConfigurationExtension, ServiceStatus, ServiceStatuses,
};

/// The one service hosts the extensions; there is no guest-configuration
/// service, so it is reported disabled.
pub fn service_statuses() -> ServiceStatuses {
    ServiceStatuses {
        extension_service: ServiceStatus {
            status: "running".into(),
            startup_type: "automatic".into(),
        },
        guest_configuration_service: ServiceStatus {
            status: "disabled".into(),
            startup_type: "disabled".into(),
        },
    }
}

fn entry(id: &str) -> ConfigurationExtension {
    let (publisher, name) = id.split_once('/').unwrap_or((id, ""));
    ConfigurationExtension {
        publisher: publisher.into(),
        extension_type: name.into(),
    }
}

pub fn agent_configuration(settings: &Settings) -> AgentConfiguration {
    let flag = |on: bool| if on { "true" } else { "false" }.to_string();
    AgentConfiguration {
        proxy_url: settings.proxy.url.clone(),
        incoming_connections_ports: settings
            .incomingconnections
            .ports
            .iter()
            .map(u16::to_string)
            .collect(),
        extensions_allow_list: settings
            .extensions
            .allowlist
            .iter()
            .map(|e| entry(e))
            .collect(),
        extensions_block_list: settings
            .extensions
            .blocklist
            .iter()
            .map(|e| entry(e))
            .collect(),
        proxy_bypass: settings
            .proxy
            .bypass
            .iter()
            .map(|s| s.name().to_string())
            .collect(),
        extensions_enabled: flag(settings.extensions.enabled),
        guest_configuration_enabled: flag(settings.guestconfiguration.enabled),
        config_mode: serde_json::to_value(settings.config.mode)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    }
}
