//! The one place that decides the proxy of every outbound request, by
//! service (AAD, ARM, Arc): from `proxy.url` and `proxy.bypass`; when
//! `proxy.url` is empty, from HTTPS_PROXY/https_proxy and NO_PROXY. The
//! agent's setting beats the environment. The local metadata service is on
//! loopback and never goes through here.

use crate::config::{ProxyService, Settings};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use url::Url;

/// Where the proxy came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProxySource {
    /// The `proxy.url` setting.
    Setting,
    /// An environment variable (its name).
    Environment(String),
    None,
}

/// How one request travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// `None`: direct.
    pub proxy: Option<String>,
    /// Why, for people: "proxy.url", "bypassed by proxy.bypass", ….
    pub reason: String,
}

/// The effective proxy configuration, as `config list` and `show` report it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyPolicy {
    pub url: Option<String>,
    pub source: ProxySource,
    pub bypass: BTreeSet<ProxyService>,
    /// NO_PROXY entries, when the proxy came from the environment.
    pub no_proxy: Vec<String>,
}

impl ProxyPolicy {
    /// The proxy's URL as it may be shown: credentials from HTTPS_PROXY
    /// (`http://user:password@host`) are masked.
    pub fn shown_url(&self) -> Option<String> {
        self.url.as_deref().map(mask_credentials)
    }

    /// From the settings and this process's environment.
    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(settings, |name| std::env::var(name).ok())
    }

    pub fn new(settings: &Settings, env: impl Fn(&str) -> Option<String>) -> Self {
        let bypass = settings.bypassed();
        if !settings.proxy.url.is_empty() {
            return Self {
                url: Some(settings.proxy.url.clone()),
                source: ProxySource::Setting,
                bypass,
                no_proxy: Vec::new(),
            };
        }
        let found = ["HTTPS_PROXY", "https_proxy"].into_iter().find_map(|name| {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name, v))
        });
        match found {
            Some((name, value)) => {
                let no_proxy = ["NO_PROXY", "no_proxy"]
                    .into_iter()
                    .find_map(&env)
                    .map(|v| {
                        v.split(',')
                            .map(|s| s.trim().to_ascii_lowercase())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                Self {
                    url: Some(value.trim().to_string()),
                    source: ProxySource::Environment(name.to_string()),
                    bypass,
                    no_proxy,
                }
            }
            None => Self {
                url: None,
                source: ProxySource::None,
                bypass,
                no_proxy: Vec::new(),
            },
        }
    }

    /// The route of a request of `service` to `target`.
    pub fn route(&self, service: ProxyService, target: &Url) -> Route {
        let Some(proxy) = &self.url else {
            return Route {
                proxy: None,
                reason: "no proxy is set".into(),
            };
        };
        if self.bypass.contains(&service) {
            return Route {
                proxy: None,
                reason: format!("{} is in proxy.bypass", service.name()),
            };
        }
        if let ProxySource::Environment(_) = self.source
            && let Some(host) = target.host_str()
            && no_proxy_matches(&self.no_proxy, &host.to_ascii_lowercase())
        {
            return Route {
                proxy: None,
                reason: format!("{host} matches NO_PROXY"),
            };
        }
        let reason = match &self.source {
            ProxySource::Setting => "proxy.url".to_string(),
            ProxySource::Environment(name) => name.clone(),
            ProxySource::None => String::new(),
        };
        Route {
            proxy: Some(proxy.clone()),
            reason,
        }
    }
}

fn no_proxy_matches(entries: &[String], host: &str) -> bool {
    entries.iter().any(|e| {
        let e = e.trim_start_matches('.');
        e == "*" || host == e || host.ends_with(&format!(".{e}"))
    })
}

/// A blocking HTTP client for one route, trusting `ca_pem` besides the
/// system's roots when given. One per route and CA for the process, reused:
/// each blocking client runs a thread and keeps its connections, so the
/// service's heartbeats and token renewals do not build one per request.
pub fn client(route: &Route, ca_pem: Option<&[u8]>) -> Result<reqwest::blocking::Client> {
    type Key = (Option<String>, Option<[u8; 32]>);
    static CLIENTS: std::sync::Mutex<Vec<(Key, reqwest::blocking::Client)>> =
        std::sync::Mutex::new(Vec::new());
    // A process sees a handful of routes; the bound is for the unexpected.
    const MAX_CLIENTS: usize = 16;
    let key: Key = (
        route.proxy.clone(),
        ca_pem.map(|p| *blake3::hash(p).as_bytes()),
    );
    let mut clients = CLIENTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, client)) = clients.iter().find(|(k, _)| *k == key) {
        return Ok(client.clone());
    }
    let client = build_client(route, ca_pem)?;
    if clients.len() >= MAX_CLIENTS {
        clients.remove(0);
    }
    clients.push((key, client.clone()));
    Ok(client)
}

fn build_client(route: &Route, ca_pem: Option<&[u8]>) -> Result<reqwest::blocking::Client> {
    crate::cloud::proxy::install_crypto();
    let mut builder = reqwest::blocking::Client::builder()
        .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(15))
        // The blocking client applies this to each phase (the answer's
        // headers, then every read of its body), not to the whole request:
        // an idle timeout, so a large package on a slow link still arrives
        // as long as its bytes keep coming. Read bodies with `Read`, never
        // `bytes()`, which would bound the whole body.
        .timeout(std::time::Duration::from_secs(30))
        .no_proxy();
    if let Some(proxy) = &route.proxy {
        builder = builder.proxy(
            reqwest::Proxy::all(proxy)
                .with_context(|| format!("the proxy `{proxy}` is not usable"))?,
        );
    }
    if let Some(pem) = ca_pem {
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(pem)
                .context("the cloud CA certificate is not a PEM certificate")?,
        );
    }
    builder.build().context("could not start the HTTP client")
}

/// rustls needs one process-wide crypto provider; Tether uses ring.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `url` with any userinfo replaced by `[REDACTED]`.
pub fn mask_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("REDACTED");
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL: show nothing of it that could be a secret.
        Err(_) => crate::diagnostics::redact::redact(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Edit, find};

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn the_setting_beats_the_environment_and_bypass_is_per_service() -> Result<(), String> {
        let mut s = Settings::default();
        let env = |name: &str| match name {
            "HTTPS_PROXY" => Some("http://env-proxy:1".to_string()),
            "NO_PROXY" => Some(".corp.example,localhost".to_string()),
            _ => None,
        };
        let from_env = ProxyPolicy::new(&s, env);
        assert_eq!(
            from_env.source,
            ProxySource::Environment("HTTPS_PROXY".into())
        );
        assert_eq!(
            from_env
                .route(ProxyService::Arm, &url("https://management.azure.com/"))
                .proxy
                .as_deref(),
            Some("http://env-proxy:1")
        );
        assert_eq!(
            from_env
                .route(ProxyService::Arm, &url("https://arm.corp.example/"))
                .proxy,
            None
        );

        find("proxy.url")?.set(&mut s, "http://setting-proxy:2", Edit::Replace)?;
        find("proxy.bypass")?.set(&mut s, "aad", Edit::Replace)?;
        let from_setting = ProxyPolicy::new(&s, env);
        assert_eq!(from_setting.source, ProxySource::Setting);
        // NO_PROXY belongs to the environment's proxy, not the setting's.
        assert_eq!(
            from_setting
                .route(ProxyService::Arm, &url("https://arm.corp.example/"))
                .proxy
                .as_deref(),
            Some("http://setting-proxy:2")
        );
        let aad = from_setting.route(
            ProxyService::Aad,
            &url("https://login.microsoftonline.com/"),
        );
        assert_eq!(aad.proxy, None);
        assert!(aad.reason.contains("proxy.bypass"));
        assert_eq!(
            ProxyPolicy::new(&Settings::default(), |_| None)
                .route(ProxyService::Arc, &url("https://x/"))
                .proxy,
            None
        );
        Ok(())
    }
}
