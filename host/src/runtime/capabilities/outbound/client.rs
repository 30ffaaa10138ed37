//! Outbound HTTP for extensions: served only for hosts the extension
//! declared (its manifest) and the operator allows; everything else is
//! refused with the code `denied` before any connection is made. The
//! addresses a name resolves to are checked too (`network_guard`).

use crate::runtime::wit::latest::outbound_http::{Request, Response};
use crate::runtime::wit::latest::types::Error as WitError;
use std::fmt;
use std::io::Read;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use url::Url;

/// Largest request or response body an extension may send or receive.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// A declared host: `scheme://host[:port]`, where the host may start with
/// `*.` to match any subdomain (not the bare domain). Without a port only
/// the scheme's default port matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: String,
    host: String,
    port: u16,
}

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| {
            format!(
                "`{s}` is not a valid outbound host ({why}); write it as scheme://host[:port], for example https://*.example.com or http://127.0.0.1:8080"
            )
        };
        let (scheme, rest) = s.split_once("://").ok_or_else(|| err("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(err("the scheme must be http or https")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(err("a path, query or credentials are not allowed"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || p.parse::<u16>().is_ok() => (
                h,
                p.parse::<u16>()
                    .map_err(|_| err("the port must be 1 to 65535"))?,
            ),
            _ => (rest, default_port),
        };
        if port == 0 {
            return Err(err("the port must be 1 to 65535"));
        }
        let host = host.to_ascii_lowercase();
        let bare = host.strip_prefix("*.").unwrap_or(&host);
        if bare.is_empty() || bare.contains('*') {
            return Err(err(
                "a wildcard may only be the leftmost label, as *.example.com",
            ));
        }
        // As a URL spells it, so that `[::ffff:127.0.0.1]` matches the
        // `[::ffff:7f00:1]` a parsed URL carries.
        let host = match host.strip_prefix("*.") {
            Some(_) => host,
            None => url::Host::parse(&host)
                .map_err(|e| err(&format!("the host is not valid: {e}")))?
                .to_string(),
        };
        Ok(Self { scheme, host, port })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl HostPattern {
    /// Whether every URL `other` matches, this matches too: how an
    /// operator's allowed origin covers a manifest's declared one
    /// (`https://*.contoso.com` covers `https://api.contoso.com` and
    /// `https://*.eu.contoso.com`, not `https://contoso.com`).
    pub fn covers(&self, other: &HostPattern) -> bool {
        if self.scheme != other.scheme || self.port != other.port {
            return false;
        }
        match self.host.strip_prefix("*.") {
            None => self.host == other.host,
            Some(domain) => {
                let theirs = other.host.strip_prefix("*.").unwrap_or(&other.host);
                theirs.len() > domain.len() && theirs.ends_with(&format!(".{domain}"))
                    || other.host.strip_prefix("*.") == Some(domain)
            }
        }
    }

    fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let host_ok = match self.host.strip_prefix("*.") {
            Some(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
            None => host == self.host,
        };
        host_ok && url.scheme() == self.scheme && url.port_or_known_default() == Some(self.port)
    }
}

/// The hosts one extension may reach. Empty by default.
#[derive(Debug, Clone, Default)]
pub struct OutboundGrant {
    pub hosts: Vec<HostPattern>,
    /// Whether a literal loopback, private or link-local address among
    /// `hosts` may be reached (the operator's `extensions.outbound.allowlocal`).
    pub allow_local: bool,
}

impl OutboundGrant {
    pub fn allows(&self, url: &Url) -> bool {
        self.hosts.iter().any(|p| p.matches(url))
    }
}

/// The HTTP client shared by every extension of a runtime, built on first use.
#[derive(Default)]
pub(crate) struct HttpClient {
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
}

fn denied(message: String) -> WitError {
    WitError {
        code: "denied".into(),
        message,
    }
}

fn failed(code: &str, message: String) -> WitError {
    WitError {
        code: code.into(),
        message,
    }
}

impl HttpClient {
    fn client(&self) -> Result<&reqwest::blocking::Client, WitError> {
        self.client
            .get_or_init(|| {
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::blocking::Client::builder()
                    // A redirect could lead anywhere; the extension sees it
                    // and may follow it itself, through this same check.
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    // Names connect only to the global addresses checked.
                    .dns_resolver(std::sync::Arc::new(super::network_guard::GuardedResolver))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| {
                failed(
                    "unavailable",
                    format!("the host's HTTP client could not start: {e}"),
                )
            })
    }

    /// Sends one request for an extension, if its grant allows the URL,
    /// finishing before `deadline` (the call's own deadline: epoch
    /// interruption cannot stop a host call, so the host bounds it here).
    pub(crate) fn send(
        &self,
        grant: &OutboundGrant,
        request: Request,
        deadline: Instant,
    ) -> Result<Response, WitError> {
        let url = Url::parse(&request.url).map_err(|e| {
            failed(
                "invalid-argument",
                format!("`{}` is not a valid URL: {e}", request.url),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(denied(format!(
                "only http and https are allowed, not `{}`",
                url.scheme()
            )));
        }
        if !grant.allows(&url) {
            let origin = url.origin().ascii_serialization();
            return Err(denied(format!(
                "outbound HTTP to {origin} is not allowed: the extension's manifest does not declare it in capabilities.outbound"
            )));
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !super::network_guard::is_global(ip)
            && !grant.allow_local
        {
            return Err(denied(format!(
                "{ip} is a loopback, private or link-local address; the operator may allow the ones manifests name literally with `tether config set extensions.outbound.allowlocal true`"
            )));
        }
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .ok()
            .filter(|m| ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&m.as_str()))
            .ok_or_else(|| {
                failed(
                    "invalid-argument",
                    format!("unsupported HTTP method `{}`", request.method),
                )
            })?;
        if request
            .body
            .as_ref()
            .is_some_and(|b| b.len() > MAX_BODY_BYTES)
        {
            return Err(failed(
                "invalid-argument",
                format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
            ));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < Duration::from_millis(1) {
            return Err(failed("timeout", "the call's time limit is reached".into()));
        }
        let mut builder = self
            .client()?
            .request(method, url.clone())
            .timeout(remaining);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder.send().map_err(|e| {
            let why = crate::util::error_chain(&e);
            let code = if why.contains("never reached through a name") {
                "denied"
            } else {
                "unreachable"
            };
            failed(
                code,
                format!(
                    "request to {} failed: {why}",
                    url.origin().ascii_serialization()
                ),
            )
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let mut body = Vec::new();
        response
            .take(MAX_BODY_BYTES as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| failed("unreachable", format!("reading the response failed: {e}")))?;
        if body.len() > MAX_BODY_BYTES {
            return Err(failed(
                "too-large",
                format!("the response is larger than {MAX_BODY_BYTES} bytes"),
            ));
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_allowed_origin_covers_what_it_would_match() {
        let p = |s: &str| s.parse::<HostPattern>().unwrap_or_else(|e| panic!("{e}"));
        let wild = p("https://*.contoso.com");
        assert!(wild.covers(&p("https://api.contoso.com")));
        assert!(wild.covers(&p("https://*.eu.contoso.com")));
        assert!(wild.covers(&p("https://*.contoso.com")));
        assert!(!wild.covers(&p("https://contoso.com")));
        assert!(!wild.covers(&p("https://evilcontoso.com")));
        assert!(!wild.covers(&p("http://api.contoso.com")));
        assert!(!wild.covers(&p("https://api.contoso.com:8443")));
        assert!(p("https://api.contoso.com").covers(&p("https://api.contoso.com:443")));
        assert!(!p("https://api.contoso.com").covers(&p("https://*.contoso.com")));
    }

    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn patterns_match_scheme_host_and_port() -> Result<(), String> {
        let exact: HostPattern = "https://api.example.com".parse()?;
        assert!(exact.matches(&url("https://API.example.com/v1")));
        assert!(!exact.matches(&url("http://api.example.com/")));
        assert!(!exact.matches(&url("https://api.example.com:8443/")));
        assert!(!exact.matches(&url("https://api.example.com.evil.net/")));

        let wild: HostPattern = "https://*.example.com".parse()?;
        assert!(wild.matches(&url("https://a.b.example.com/")));
        assert!(!wild.matches(&url("https://example.com/")));
        assert!(!wild.matches(&url("https://badexample.com/")));

        let port: HostPattern = "http://127.0.0.1:8080".parse()?;
        assert!(port.matches(&url("http://127.0.0.1:8080/x")));
        assert!(!port.matches(&url("http://127.0.0.1:8081/x")));
        Ok(())
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        for (bad, why) in [
            ("example.com", "no scheme"),
            ("ftp://example.com", "http or https"),
            ("https://example.com/path", "path"),
            ("https://user@example.com", "credentials"),
            ("https://a.*.com", "leftmost"),
            ("https://example.com:0", "port"),
            ("https://example.com:99999", "port"),
        ] {
            let err = bad.parse::<HostPattern>().expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
