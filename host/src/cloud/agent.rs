//! The agent service, as the machine itself: its identity token (a client
//! assertion signed with the machine key) and heartbeats.

use super::Endpoints;
use super::proxy::{ProxyPolicy, client};
use crate::config::ProxyService;
use anyhow::Result;
use std::time::Duration;
use tether_cloud_api::agent::{HeartbeatRequest, HeartbeatResponse};
use tether_cloud_api::identity::{JWT_BEARER_ASSERTION, TokenResponse};
use tether_cloud_api::run_command::{PendingRunCommand, PendingRunCommands, RunCommandReport};

/// The cloud answered with an error status. Carries `Retry-After` (on 429
/// and 503), which the service's backoff honours.
#[derive(Debug, thiserror::Error)]
#[error("{what} ({status}): {body}")]
pub struct Refused {
    pub what: &'static str,
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

pub(super) fn refused(response: reqwest::blocking::Response, what: &'static str) -> anyhow::Error {
    let status = response.status().as_u16();
    let retry_after = retry_after_header(&response);
    let body = response.text().unwrap_or_default().trim().to_string();
    Refused {
        what,
        status,
        retry_after,
        body,
    }
    .into()
}

/// `Retry-After` in seconds (the form Azure's services send).
pub(super) fn retry_after_header(response: &reqwest::blocking::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The `Retry-After` the cloud sent with this error, if any.
pub fn retry_after(error: &anyhow::Error) -> Option<Duration> {
    error.downcast_ref::<Refused>().and_then(|r| r.retry_after)
}

/// The HTTP status the cloud refused with, if it answered at all.
pub fn refused_status(error: &anyhow::Error) -> Option<u16> {
    error.downcast_ref::<Refused>().map(|r| r.status)
}

/// The machine identity whose tokens are asked for.
#[derive(Clone, Copy)]
pub struct MachineIdentity<'a> {
    pub endpoints: &'a Endpoints,
    pub proxy: &'a ProxyPolicy,
    pub ca_pem: Option<&'a [u8]>,
    pub tenant: &'a str,
    pub principal_id: &'a str,
    pub key: &'a dyn tether_cloud_api::jwt::JwsSigner,
}

/// A token for the agent service, for the machine whose identity is
/// `principal_id` in `tenant`.
pub fn machine_token(
    endpoints: &Endpoints,
    proxy: &ProxyPolicy,
    ca_pem: Option<&[u8]>,
    tenant: &str,
    principal_id: &str,
    key: &dyn tether_cloud_api::jwt::JwsSigner,
) -> Result<String> {
    let audience = endpoints.agent_audience();
    let identity = MachineIdentity {
        endpoints,
        proxy,
        ca_pem,
        tenant,
        principal_id,
        key,
    };
    Ok(token_for(&identity, &audience)?.access_token)
}

/// A token for `resource` (an audience such as ARM's), signed in as the
/// machine with a client assertion made with its key.
pub fn token_for(identity: &MachineIdentity<'_>, resource: &str) -> Result<TokenResponse> {
    let endpoint = super::identity_endpoint::IdentityEndpoint {
        endpoints: identity.endpoints,
        proxy: identity.proxy,
        ca_pem: identity.ca_pem,
    };
    let token_url = endpoint.url(identity.tenant, "token")?;
    let scope = format!("{}/.default", resource.trim_end_matches('/'));
    let jti = hex::encode(crate::util::random_bytes::<16>());
    let assertion = tether_cloud_api::jwt::client_assertion(
        identity.principal_id,
        token_url.as_str(),
        identity.key,
        None,
        crate::util::now(),
        &jti,
    );
    let answer = endpoint.token(
        identity.tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", identity.principal_id),
            ("client_assertion_type", JWT_BEARER_ASSERTION),
            ("client_assertion", &assertion),
            ("scope", &scope),
        ],
    )?;
    answer.map_err(|e| {
        anyhow::anyhow!(
            "the machine identity was refused: {} ({})",
            e.error_description,
            e.error
        )
    })
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
        .map_err(super::unreachable("the agent service"))?;
    if !response.status().is_success() {
        return Err(refused(response, "the agent service refused the heartbeat"));
    }
    Ok(response.json()?)
}

/// The run commands waiting for this machine, asked with a long poll: the
/// agent service answers as soon as there is one, or empty after `wait`.
pub fn pending_run_commands(
    endpoints: &Endpoints,
    proxy: &ProxyPolicy,
    ca_pem: Option<&[u8]>,
    token: &str,
    wait: Duration,
) -> Result<Vec<PendingRunCommand>> {
    let mut url = join(&endpoints.agent_service, "v1/runcommands");
    url.query_pairs_mut()
        .append_pair("wait", &wait.as_secs().to_string());
    let http = client(&proxy.route(ProxyService::Arc, &url), ca_pem)?;
    let response = http
        .get(url)
        .bearer_auth(token)
        .timeout(wait + Duration::from_secs(15))
        .send()
        .map_err(super::unreachable("the agent service"))?;
    if !response.status().is_success() {
        return Err(refused(
            response,
            "the agent service refused to list run commands",
        ));
    }
    Ok(response.json::<PendingRunCommands>()?.commands)
}

/// Reports a run's progress or outcome. A run command deleted meanwhile
/// (404) has nobody left to hear it: that is not an error.
pub fn report_run_command(
    endpoints: &Endpoints,
    proxy: &ProxyPolicy,
    ca_pem: Option<&[u8]>,
    token: &str,
    name: &str,
    report: &RunCommandReport,
) -> Result<()> {
    let url = join(
        &endpoints.agent_service,
        &format!("v1/runcommands/{}/status", urlencode(name)),
    );
    let http = client(&proxy.route(ProxyService::Arc, &url), ca_pem)?;
    let response = http
        .post(url)
        .bearer_auth(token)
        .json(report)
        .send()
        .map_err(super::unreachable("the agent service"))?;
    if response.status().is_success() || response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(());
    }
    Err(refused(
        response,
        "the agent service refused a run command's report",
    ))
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// `base` + `path`, keeping base's path (`…/agent` + `v1/x` = `…/agent/v1/x`).
pub fn join(base: &url::Url, path: &str) -> url::Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).unwrap_or(base)
}
