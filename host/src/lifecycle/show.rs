//! What `tether show` reports, under azcmagent show's JSON keys and display
//! names wherever the meaning is the same (so scripts that read
//! `resourceName`, `status` or `services[]` carry over), and Tether's own
//! beside them (state root, tags, connection time, installed extensions).

use super::Registration;
use crate::cloud::ProxyPolicy;
use crate::config::SettingsStore;
use crate::exit::Exit;
use crate::service::control::client::{Connection, Unreachable};
use crate::state::StateRoot;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One of the machine's services, as azcmagent lists its dependent services.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub display_name: String,
    pub service_name: String,
    /// `running` or `stopped`, with the reason when it is not plain.
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstalledExtension {
    pub id: String,
    pub version: String,
    pub enabled: bool,
    pub state: String,
}

/// The whole of `show`; fields a disconnected machine does not have are
/// empty, as azcmagent leaves them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShowView {
    pub resource_name: String,
    pub resource_group: String,
    pub resource_namespace: String,
    pub resource_id: String,
    pub subscription_id: String,
    pub tenant_id: String,
    pub vm_id: String,
    pub correlation_id: String,
    pub private_link_scope: String,
    pub location: String,
    pub cloud: String,
    /// `Connected` or `Disconnected`.
    pub status: String,
    /// RFC 3339; null before the first heartbeat.
    pub last_heartbeat: Option<String>,
    pub agent_version: String,
    pub agent_log_file: String,
    /// azcmagent's code (`AZCM0041`) where it has one, else Tether's name.
    pub agent_error_code: String,
    pub agent_error_details: String,
    pub agent_error_timestamp: String,
    pub https_proxy: String,
    /// The services that bypass the proxy, comma-separated, as azcmagent.
    pub proxy_bypass: String,
    /// The proxy the machine's other services are given
    /// (`tether service proxy-env`), distinct from Tether's own.
    pub services_proxy: String,
    pub services_proxy_bypass: String,
    pub portal_page: String,
    pub services: Vec<ServiceStatus>,
    pub state_root: String,
    pub tags: BTreeMap<String, String>,
    pub connected_at: Option<String>,
    pub extensions: Vec<InstalledExtension>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<Value>,
}

/// The display names of the text form, with the JSON key each shows, in
/// azcmagent's order; Tether's own rows follow its.
const ROWS: &[(&str, &str)] = &[
    ("Resource Name", "resourceName"),
    ("Resource Group Name", "resourceGroup"),
    ("Resource Namespace", "resourceNamespace"),
    ("Resource Id", "resourceId"),
    ("Subscription ID", "subscriptionId"),
    ("Tenant ID", "tenantId"),
    ("VM ID", "vmId"),
    ("Correlation ID", "correlationId"),
    ("Private Link Scope", "privateLinkScope"),
    ("Location", "location"),
    ("Cloud", "cloud"),
    ("Agent Version", "agentVersion"),
    ("Agent Logfile", "agentLogFile"),
    ("Agent Status", "status"),
    ("Agent Last Heartbeat", "lastHeartbeat"),
    ("Agent Error Code", "agentErrorCode"),
    ("Agent Error Details", "agentErrorDetails"),
    ("Agent Error Timestamp", "agentErrorTimestamp"),
    ("Using HTTPS Proxy", "httpsProxy"),
    ("Proxy Bypass List", "proxyBypass"),
    ("Services HTTPS Proxy", "servicesProxy"),
    ("Services Proxy Bypass", "servicesProxyBypass"),
    ("Portal Page", "portalPage"),
    ("State Root", "stateRoot"),
    ("Tags", "tags"),
    ("Connected At", "connectedAt"),
    ("Extensions", "extensions"),
    ("Operating System", "os"),
];

use crate::util::rfc3339;

/// azcmagent's code for an exit meaning it shares, else Tether's name.
fn agent_error_code(name: &str) -> String {
    Exit::ALL
        .into_iter()
        .find(|e| e.name() == name && e.shared_with_azcmagent())
        .map(|e| format!("AZCM{:04}", e as u8))
        .unwrap_or_else(|| name.to_string())
}

fn service_status(state: &StateRoot) -> ServiceStatus {
    let status = match Connection::open(state) {
        Ok(_) | Err(Unreachable::Denied) => "running",
        Err(Unreachable::NotRunning) => "stopped",
        Err(Unreachable::Impostor) => "stopped (its pipe is held by another process)",
    };
    ServiceStatus {
        display_name: "Agent Service (tether)".into(),
        service_name: crate::service::unit::SERVICE_NAME.into(),
        status: status.into(),
    }
}

impl ShowView {
    /// What this machine's state says now; `os` adds the operating system.
    pub fn load(state: &StateRoot, os: bool) -> anyhow::Result<Self> {
        let registration = Registration::load(state)?;
        let settings = SettingsStore::new(state).load().ok().unwrap_or_default();
        let proxy = ProxyPolicy::from_settings(&settings);
        let agent = super::status::load(state);
        let r = registration.as_ref();
        let text = |f: fn(&Registration) -> &str| r.map(f).unwrap_or_default().to_string();
        let error = agent.last_error.as_ref();
        let services_proxy = crate::service::proxy_env::current(std::path::Path::new(
            crate::service::unit::UNIT_DIR,
        ));
        Ok(Self {
            resource_name: text(|r| &r.resource_name),
            resource_group: text(|r| &r.resource_group),
            resource_namespace: "Microsoft.HybridCompute".into(),
            resource_id: text(|r| &r.resource_id),
            subscription_id: text(|r| &r.subscription_id),
            tenant_id: text(|r| &r.tenant_id),
            vm_id: text(|r| &r.vm_id),
            correlation_id: text(|r| &r.correlation_id),
            private_link_scope: text(|r| r.private_link_scope.as_deref().unwrap_or_default()),
            location: text(|r| &r.location),
            cloud: text(|r| &r.endpoints.name),
            status: if r.is_some() { "Connected" } else { "Disconnected" }.into(),
            last_heartbeat: agent.last_heartbeat.map(rfc3339),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            agent_log_file: state
                .path()
                .join("logs")
                .join("tether.log")
                .display()
                .to_string(),
            agent_error_code: error.map(|e| agent_error_code(&e.code)).unwrap_or_default(),
            agent_error_details: error.map(|e| e.details.clone()).unwrap_or_default(),
            agent_error_timestamp: error.map(|e| rfc3339(e.time)).unwrap_or_default(),
            https_proxy: proxy.shown_url().unwrap_or_default(),
            proxy_bypass: proxy
                .bypass
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(","),
            services_proxy: services_proxy.url,
            services_proxy_bypass: services_proxy.bypass.join(","),
            portal_page: r
                .and_then(|r| {
                    r.endpoints
                        .portal
                        .as_ref()
                        .map(|p| format!("{p}#@{}/resource{}", r.tenant_id, r.resource_id))
                })
                .unwrap_or_default(),
            services: vec![service_status(state)],
            state_root: state.path().display().to_string(),
            tags: r.map(|r| r.tags.clone()).unwrap_or_default(),
            connected_at: r.map(|r| rfc3339(r.connected_at)),
            extensions: crate::extensions::manager::installed(state)
                .into_iter()
                .map(|e| InstalledExtension {
                    id: e.id,
                    version: e.version,
                    enabled: e.enabled,
                    state: e.state,
                })
                .collect(),
            os: os.then(|| {
                let local = crate::runtime::MachineInfo::local();
                serde_json::json!({"type": std::env::consts::OS, "name": local.os_name, "hostname": local.name})
            }),
        })
    }

    /// The properties asked for by JSON key or display name (any case),
    /// as a JSON object; `None` names the one that is not a property.
    pub fn pick(&self, properties: &[String]) -> Result<Value, String> {
        let all = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut picked = serde_json::Map::new();
        for wanted in properties {
            let key = ROWS
                .iter()
                .find(|(name, key)| {
                    name.eq_ignore_ascii_case(wanted) || key.eq_ignore_ascii_case(wanted)
                })
                .map(|(_, key)| *key)
                .or_else(|| {
                    "services"
                        .eq_ignore_ascii_case(wanted)
                        .then_some("services")
                })
                .ok_or_else(|| wanted.clone())?;
            picked.insert(key.into(), all[key].clone());
        }
        Ok(Value::Object(picked))
    }

    /// The text form: aligned `Name : value` rows in azcmagent's order,
    /// then its "Dependent Service Status" section.
    pub fn render(&self, only: Option<&Value>) -> String {
        let all = serde_json::to_value(self).unwrap_or(Value::Null);
        let shown = only.unwrap_or(&all);
        let width = ROWS.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        let mut text = String::new();
        for (name, key) in ROWS {
            let Some(value) = shown.get(*key) else {
                continue;
            };
            let value = match (*key, value) {
                (_, Value::Null) => String::new(),
                (_, Value::String(s)) => s.clone(),
                ("tags", Value::Object(tags)) => tags
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(", "),
                ("extensions", _) => self
                    .extensions
                    .iter()
                    .map(|e| {
                        let enabled = if e.enabled { "enabled" } else { "disabled" };
                        format!("{} {} ({enabled}, {})", e.id, e.version, e.state)
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                ("os", Value::Object(os)) => os
                    .values()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                (_, other) => other.to_string(),
            };
            text.push_str(&format!("{name:<width$} : {value}\n"));
        }
        if shown.get("services").is_some() {
            text.push_str("\nDependent Service Status\n");
            let width = self
                .services
                .iter()
                .map(|s| s.display_name.len())
                .max()
                .unwrap_or(0);
            for s in &self.services {
                text.push_str(&format!("  {:<width$} : {}\n", s.display_name, s.status));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_a_field_and_shared_errors_read_as_azcmagents()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let view = ShowView::load(&StateRoot::at(dir.path()), true)?;
        let json = serde_json::to_value(&view)?;
        for (name, key) in ROWS {
            assert!(
                json.get(*key).is_some(),
                "{name} shows {key}, which is no field"
            );
        }
        assert_eq!(view.status, "Disconnected");
        assert_eq!(agent_error_code("bad-credentials"), "AZCM0041");
        assert_eq!(agent_error_code("bad-input"), "bad-input");
        let text = view.render(None);
        assert!(
            text.contains("Agent Status          : Disconnected"),
            "{text}"
        );
        assert!(
            text.contains("\nDependent Service Status\n  Agent Service (tether) : stopped"),
            "{text}"
        );
        Ok(())
    }
}
