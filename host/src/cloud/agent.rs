//! The agent service, as the machine itself: its identity token (a client
//! assertion signed with the machine key) and heartbeats.

use super::Endpoints;
use super::proxy::{ProxyPolicy, client};
use crate::config::ProxyService;
use anyhow::{Context, Result, bail};
use ed25519_dalek::SigningKey;
use tether_cloud_api::agent::{HeartbeatRequest, HeartbeatResponse};
use tether_cloud_api::identity::{JWT_BEARER_ASSERTION, OAuthError, TokenResponse};

/// A token for the agent service, for the machine whose identity is
/// `principal_id` in `tenant`.
pub fn machine_token(
    endpoints: &Endpoints,
    proxy: &ProxyPolicy,
    ca_pem: Option<&[u8]>,
    tenant: &str,
    principal_id: &str,
    key: &SigningKey,
) -> Result<String> {
    let token_url = endpoints
        .login
        .join(&format!("{tenant}/oauth2/v2.0/token"))
        .context("bad login endpoint")?;
    let audience = endpoints
        .audiences
        .get(1)
        .cloned()
        .unwrap_or_else(|| endpoints.agent_service.to_string());
    let scope = format!("{}/.default", audience.trim_end_matches('/'));
    let jti = hex::encode(crate::util::random_bytes::<16>());
    let assertion = tether_cloud_api::jwt::client_assertion(
        principal_id,
        token_url.as_str(),
        key,
        None,
        crate::util::now(),
        &jti,
    );
    let http = client(&proxy.route(ProxyService::Aad, &token_url), ca_pem)?;
    let response = http
        .post(token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", principal_id),
            ("client_assertion_type", JWT_BEARER_ASSERTION),
            ("client_assertion", &assertion),
            ("scope", &scope),
        ])
        .send()
        .context("could not reach the identity endpoint")?;
    if response.status().is_success() {
        return Ok(response.json::<TokenResponse>()?.access_token);
    }
    let e: OAuthError = response
        .json()
        .context("the identity endpoint's error could not be read")?;
    bail!(
        "the machine identity was refused: {} ({})",
        e.error_description,
        e.error
    )
}

/// Sends one heartbeat.
pub fn heartbeat(
    endpoints: &Endpoints,
    proxy: &ProxyPolicy,
    ca_pem: Option<&[u8]>,
    token: &str,
    beat: &HeartbeatRequest,
) -> Result<HeartbeatResponse> {
    let url = join(&endpoints.agent_service, "v1/heartbeat");
    let http = client(&proxy.route(ProxyService::Arc, &url), ca_pem)?;
    let response = http
        .post(url)
        .bearer_auth(token)
        .json(beat)
        .send()
        .context("could not reach the agent service")?;
    if !response.status().is_success() {
        let status = response.status();
        bail!(
            "the agent service refused the heartbeat ({status}): {}",
            response.text().unwrap_or_default()
        );
    }
    Ok(response.json()?)
}

/// `base` + `path`, keeping base's path (`…/agent` + `v1/x` = `…/agent/v1/x`).
pub fn join(base: &url::Url, path: &str) -> url::Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).unwrap_or(base)
}
