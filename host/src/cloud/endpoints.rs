//! Where a cloud's services are. Built-in clouds by name; any other cloud
//! (tether-cloud among them) by the URL of its metadata document.

use super::proxy::ProxyPolicy;
use crate::config::ProxyService;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use tether_cloud_api::metadata::CloudEndpoints;
use url::Url;

/// A cloud as the operator names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudSpec {
    AzureCloud,
    AzureUsGovernment,
    AzureChinaCloud,
    /// A metadata document URL.
    Custom(Url),
}

impl CloudSpec {
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "" | "azurecloud" | "azure" => Ok(CloudSpec::AzureCloud),
            "azureusgovernment" | "azureusgovernmentcloud" => Ok(CloudSpec::AzureUsGovernment),
            "azurechinacloud" => Ok(CloudSpec::AzureChinaCloud),
            _ => {
                let url = Url::parse(text).with_context(|| {
                    format!("`{text}` is neither a built-in cloud (AzureCloud, AzureUSGovernment, AzureChinaCloud) nor the URL of a cloud metadata document")
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    bail!("a cloud metadata URL is http(s)://…, not `{text}`");
                }
                require_tls("the cloud metadata document", &url)?;
                Ok(CloudSpec::Custom(url))
            }
        }
    }
}

/// The endpoints of the services Tether talks to.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    pub name: String,
    pub login: Url,
    pub resource_manager: Url,
    pub agent_service: Url,
    pub gallery: Option<Url>,
    /// Where operators look at resources.
    #[serde(default)]
    pub portal: Option<Url>,
    /// ARM's token audience, then the agent service's.
    pub audiences: Vec<String>,
}

impl Endpoints {
    /// The cloud's name as IMDS gives it (`compute.azEnvironment`): Azure's
    /// own names for the built-in clouds, a custom cloud's own name.
    pub fn az_environment(&self) -> &str {
        match self.name.as_str() {
            "AzureCloud" => "AzurePublicCloud",
            "AzureUSGovernment" => "AzureUSGovernmentCloud",
            other => other,
        }
    }

    /// The audience of ARM tokens.
    pub fn arm_audience(&self) -> String {
        self.audiences
            .first()
            .cloned()
            .unwrap_or_else(|| self.resource_manager.to_string())
    }

    /// The audience of the agent service's tokens (the machine's own).
    pub fn agent_audience(&self) -> String {
        self.audiences
            .get(1)
            .cloned()
            .unwrap_or_else(|| self.agent_service.to_string())
    }

    /// Whether a workload's `resource` names the agent service's audience,
    /// however it is spelled (case, trailing slash, `/.default`, a path
    /// below it, the agent service's own URL): that token is the machine's
    /// own, never a workload's.
    pub fn is_agent_audience(&self, resource: &str) -> bool {
        fn plain(text: &str) -> String {
            let text = text.trim().to_ascii_lowercase();
            let text = text.strip_suffix("/.default").unwrap_or(&text);
            text.trim_end_matches('/').to_string()
        }
        fn origin(text: &str) -> Option<(String, String, Option<u16>)> {
            let url = Url::parse(text.trim()).ok()?;
            Some((
                url.scheme().to_string(),
                url.host_str()?.to_ascii_lowercase(),
                url.port_or_known_default(),
            ))
        }
        let wanted = plain(resource);
        let agent = [self.agent_audience(), self.agent_service.to_string()];
        if agent.iter().any(|a| {
            let a = plain(a);
            wanted == a || wanted.starts_with(&format!("{a}/"))
        }) {
            return true;
        }
        // A different spelling of the agent service's own host is its too,
        // unless that host also serves ARM (one server for both, as
        // tether-cloud is): then only the audience string tells them apart.
        let arm = origin(self.resource_manager.as_str());
        match (origin(resource), origin(self.agent_service.as_str())) {
            (Some(wanted), Some(agent)) => wanted == agent && arm.as_ref() != Some(&agent),
            _ => false,
        }
    }
}

/// Secrets travel to sign-in and ARM: plain HTTP only to this machine.
fn require_tls(what: &str, url: &Url) -> Result<()> {
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() != "https" && !loopback {
        bail!(
            "{what} is {url}: plain HTTP would carry secrets in clear; a cloud uses https:// (http:// only on loopback, for a local tether-cloud)"
        );
    }
    Ok(())
}

fn url(text: &str) -> Url {
    // Only called on the literals below.
    Url::parse(text).unwrap_or_else(|_| unreachable!("built-in endpoint {text} is a URL"))
}

fn builtin(name: &str, login: &str, arm: &str, agent: &str) -> Endpoints {
    Endpoints {
        name: name.into(),
        login: url(login),
        resource_manager: url(arm),
        agent_service: url(agent),
        gallery: None,
        portal: None,
        audiences: vec![arm.to_string()],
    }
}

impl Endpoints {
    /// Resolves a cloud: built-ins at once, custom clouds by fetching their
    /// metadata document (through ARM's proxy route: it is ARM's document).
    pub fn resolve(spec: &CloudSpec, proxy: &ProxyPolicy, ca_pem: Option<&[u8]>) -> Result<Self> {
        Ok(match spec {
            CloudSpec::AzureCloud => builtin(
                "AzureCloud",
                "https://login.microsoftonline.com/",
                "https://management.azure.com/",
                "https://gbl.his.arc.azure.com/",
            ),
            CloudSpec::AzureUsGovernment => builtin(
                "AzureUSGovernment",
                "https://login.microsoftonline.us/",
                "https://management.usgovcloudapi.net/",
                "https://gbl.his.arc.azure.us/",
            ),
            CloudSpec::AzureChinaCloud => builtin(
                "AzureChinaCloud",
                "https://login.chinacloudapi.cn/",
                "https://management.chinacloudapi.cn/",
                "https://gbl.his.arc.azure.cn/",
            ),
            CloudSpec::Custom(metadata) => {
                let client =
                    super::proxy::client(&proxy.route(ProxyService::Arm, metadata), ca_pem)?;
                let response = client.get(metadata.clone()).send().with_context(|| format!("could not fetch the cloud metadata document {metadata}; check the URL and the network (tether check)"))?;
                if !response.status().is_success() {
                    bail!(
                        "the cloud metadata document {metadata} answered {}; check the URL",
                        response.status()
                    );
                }
                let doc: CloudEndpoints = response
                    .json()
                    .with_context(|| format!("{metadata} is not a cloud metadata document"))?;
                let parse = |what: &str, text: &str| {
                    let url = Url::parse(text).with_context(|| {
                        format!("the metadata document's {what} `{text}` is not a URL")
                    })?;
                    require_tls(&format!("the metadata document's {what}"), &url)?;
                    Ok::<Url, anyhow::Error>(url)
                };
                Endpoints {
                    name: doc.name,
                    login: parse("login endpoint", &doc.authentication.login_endpoint)?,
                    resource_manager: parse("resource manager", &doc.resource_manager)?,
                    agent_service: parse("agent service", &doc.agent_service)?,
                    gallery: Some(parse("gallery", &doc.gallery)?),
                    portal: Url::parse(&doc.portal).ok(),
                    audiences: doc.authentication.audiences,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_clouds_are_refused_unless_on_loopback() {
        for refused in [
            "http://cloud.example/metadata/endpoints",
            "http://10.0.0.5:8080/metadata/endpoints",
            "http://[fd00::1]/metadata/endpoints",
        ] {
            let err = CloudSpec::parse(refused).expect_err(refused).to_string();
            assert!(err.contains("plain HTTP"), "{refused}: {err}");
        }
        for allowed in [
            "https://cloud.example/metadata/endpoints",
            "http://127.0.0.1:8080/metadata/endpoints",
            "http://localhost:8080/metadata/endpoints",
            "http://[::1]:8080/metadata/endpoints",
        ] {
            assert!(CloudSpec::parse(allowed).is_ok(), "{allowed}");
        }
    }

    fn endpoints() -> Endpoints {
        let arm = "http://127.0.0.1:9/";
        Endpoints {
            name: "t".into(),
            login: url(arm),
            resource_manager: url(arm),
            agent_service: url("http://127.0.0.1:9/agent"),
            gallery: None,
            portal: None,
            audiences: vec![arm.into(), "http://127.0.0.1:9/agent/".into()],
        }
    }

    #[test]
    fn the_agent_audience_is_recognised_however_it_is_spelled() {
        let e = endpoints();
        for agent in [
            "http://127.0.0.1:9/agent/",
            "http://127.0.0.1:9/agent",
            "HTTP://127.0.0.1:9/AGENT/.default",
            "http://127.0.0.1:9/agent/v1/extensions",
        ] {
            assert!(e.is_agent_audience(agent), "{agent}");
        }
        for workload in [
            "http://127.0.0.1:9/",
            "https://vault.azure.net",
            "http://127.0.0.1:9/agents",
        ] {
            assert!(!e.is_agent_audience(workload), "{workload}");
        }
    }
}
