//! `tether check`: can this machine reach each of the cloud's services,
//! through which proxy, with valid TLS, and how fast.

use super::endpoints::{CloudSpec, Endpoints};
use super::proxy::{ProxyPolicy, client};
use crate::config::{ProxyService, Settings};
use anyhow::Result;
use serde::Serialize;
use std::net::ToSocketAddrs;
use std::time::Instant;
use url::Url;

/// One endpoint's row. The first five fields are azcmagent check's
/// (`endpoint`, `reachable`, `private`, `tls`, `proxyStatus`); the rest are
/// Tether's details.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointCheck {
    /// The service's origin, as azcmagent names endpoints.
    pub endpoint: String,
    pub reachable: bool,
    /// Whether the name resolves to a private address (as it does behind a
    /// private link); only looked at with `--enable-pls-check`.
    pub private: bool,
    /// `valid`, `invalid`, or `none` (plain HTTP, or no answer at all).
    pub tls: &'static str,
    /// `not set`, `bypassed`, or the proxy's URL.
    pub proxy_status: String,
    /// identity, resourceManager, agentService, gallery.
    pub name: &'static str,
    pub service: ProxyService,
    pub url: String,
    pub status: Option<u16>,
    /// `None`: direct.
    pub proxy: Option<String>,
    pub route: String,
    pub latency_ms: u64,
    /// Whether `private` was looked at (`--enable-pls-check`).
    pub private_checked: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub cloud: String,
    pub proxy: ProxyPolicy,
    pub endpoints: Vec<EndpointCheck>,
}

impl CheckReport {
    pub fn all_reachable(&self) -> bool {
        self.endpoints.iter().all(|e| e.reachable)
    }
}

/// Checks every endpoint of `spec`.
pub fn run(
    settings: &Settings,
    spec: &CloudSpec,
    ca_pem: Option<&[u8]>,
    private_link: bool,
) -> Result<CheckReport> {
    let proxy = ProxyPolicy::from_settings(settings);
    let endpoints = Endpoints::resolve(spec, &proxy, ca_pem)?;
    let join = |base: &Url, path: &str| base.join(path).unwrap_or_else(|_| base.clone());
    let mut targets = vec![
        (
            "identity",
            ProxyService::Aad,
            join(&endpoints.login, "common/discovery/v2.0/keys"),
        ),
        (
            "resourceManager",
            ProxyService::Arm,
            join(
                &endpoints.resource_manager,
                "metadata/endpoints?api-version=2022-09-01",
            ),
        ),
        (
            "agentService",
            ProxyService::Arc,
            endpoints.agent_service.clone(),
        ),
    ];
    if let Some(gallery) = &endpoints.gallery {
        targets.push(("gallery", ProxyService::Arc, gallery.clone()));
    }
    let checks = targets
        .into_iter()
        .map(|(endpoint, service, url)| probe(&proxy, endpoint, service, url, ca_pem, private_link))
        .collect();
    Ok(CheckReport {
        cloud: endpoints.name,
        proxy,
        endpoints: checks,
    })
}

fn probe(
    proxy: &ProxyPolicy,
    endpoint: &'static str,
    service: ProxyService,
    url: Url,
    ca_pem: Option<&[u8]>,
    private_link: bool,
) -> EndpointCheck {
    let route = proxy.route(service, &url);
    let https = url.scheme() == "https";
    let private = private_link && resolves_privately(&url);
    let proxy_status = match &route.proxy {
        Some(p) => super::proxy::mask_credentials(p),
        None if proxy.bypass.contains(&service) => "bypassed".into(),
        None => "not set".into(),
    };
    let mut check = EndpointCheck {
        endpoint: url.origin().ascii_serialization(),
        reachable: false,
        private,
        tls: "none",
        proxy_status,
        name: endpoint,
        service,
        url: url.to_string(),
        status: None,
        proxy: route.proxy.clone(),
        route: route.reason.clone(),
        latency_ms: 0,
        private_checked: private_link,
        error: None,
    };
    let started = Instant::now();
    let result = client(&route, ca_pem).and_then(|c| Ok(c.get(url.clone()).send()?));
    check.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        // Any HTTP answer means the service is reachable; most of them
        // answer an anonymous probe with 401 or 404.
        Ok(response) => {
            check.reachable = true;
            check.status = Some(response.status().as_u16());
            if https {
                check.tls = "valid";
            }
        }
        Err(e) => {
            let text = format!("{e:#}");
            let tls_problem = ["certificate", "tls", "handshake", "UnknownIssuer"]
                .iter()
                .any(|w| text.to_lowercase().contains(&w.to_lowercase()));
            if https && tls_problem {
                check.tls = "invalid";
            }
            check.error = Some(text);
        }
    }
    check
}

fn resolves_privately(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let port = url.port_or_known_default().unwrap_or(443);
    (host, port)
        .to_socket_addrs()
        .map(|addrs| {
            addrs.into_iter().any(|a| match a.ip() {
                std::net::IpAddr::V4(ip) => {
                    ip.is_private() || ip.is_loopback() || ip.is_link_local()
                }
                std::net::IpAddr::V6(ip) => {
                    ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00
                }
            })
        })
        .unwrap_or(false)
}
