//! The identity endpoint's client: the one place that posts to
//! `/{tenant}/oauth2/v2.0/…`, for every sign-in method and for the machine
//! identity alike, with one reading of its answers: a token; Entra's error
//! (the request was refused: wrong credentials, pending, expired…); or,
//! for 429 and 5xx, [`Refused`](super::agent::Refused) with the
//! `Retry-After` the service's backoff honours.

use super::Endpoints;
use super::proxy::{ProxyPolicy, client};
use crate::config::ProxyService;
use anyhow::{Context, Result};
use tether_cloud_api::identity::{OAuthError, TokenResponse};
use url::Url;

pub struct IdentityEndpoint<'a> {
    pub endpoints: &'a Endpoints,
    pub proxy: &'a ProxyPolicy,
    pub ca_pem: Option<&'a [u8]>,
}

impl IdentityEndpoint<'_> {
    pub fn url(&self, tenant: &str, path: &str) -> Result<Url> {
        self.endpoints
            .login
            .join(&format!("{tenant}/oauth2/v2.0/{path}"))
            .context("the cloud's login endpoint is not a URL")
    }

    pub fn http(&self, url: &Url) -> Result<reqwest::blocking::Client> {
        client(&self.proxy.route(ProxyService::Aad, url), self.ca_pem)
    }

    /// ARM's `.default` scope.
    pub fn arm_scope(&self) -> String {
        let audience = self.endpoints.arm_audience();
        format!("{}/.default", audience.trim_end_matches('/'))
    }

    /// POSTs a token request; Entra's refusal becomes `Err(OAuthError)`.
    pub fn token(
        &self,
        tenant: &str,
        form: &[(&str, &str)],
    ) -> Result<Result<TokenResponse, OAuthError>> {
        let url = self.url(tenant, "token")?;
        let response = self
            .http(&url)?
            .post(url.clone())
            .form(form)
            .send()
            .map_err(super::unreachable(format!(
                "the identity endpoint {}",
                url.origin().ascii_serialization()
            )))?;
        let status = response.status();
        if status.is_success() {
            return Ok(Ok(response
                .json()
                .context("the identity endpoint's token could not be read")?));
        }
        // Not a refusal of these credentials: the service is unavailable.
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(super::agent::refused(
                response,
                "the identity endpoint is unavailable",
            ));
        }
        let text = response.text().unwrap_or_default();
        Ok(Err(serde_json::from_str(&text).unwrap_or(OAuthError {
            error: format!("http_{}", status.as_u16()),
            error_description: text.chars().take(200).collect(),
            error_codes: Vec::new(),
            timestamp: None,
            trace_id: None,
            correlation_id: None,
        })))
    }
}
