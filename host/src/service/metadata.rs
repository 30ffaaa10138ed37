//! The local metadata service (the role of Azure's HIMDS): an IMDS-shaped
//! instance document and the machine identity's tokens, on loopback only.
//!
//! Protections, in the order they are checked: GET only; a `Host` that
//! names loopback (a browser tricked by DNS rebinding sends the attacker's
//! name); no proxy headers (`X-Forwarded-For`, `Forwarded`, `Via`: a
//! request that came through a proxy is not a local process's);
//! `Metadata: true`; one rate limit for all callers; one value per query
//! parameter; `api-version` present. Tokens: a bounded number of open
//! challenges, and never the audience of the machine's own agent channel.
//! Responses carry no CORS headers, so a web page cannot read them.

use super::challenge::{Answer, Challenges};
use super::interfaces;
use super::rate_limit::RateLimit;
use super::tokens::TokenCache;
use crate::config::Settings;
use crate::lifecycle::{ConnectedMachine, Registration};
use crate::state::StateRoot;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};

/// Where HIMDS listens on Azure Arc machines; Tether keeps the number.
pub const DEFAULT_PORT: u16 = 40342;

pub struct Metadata {
    pub state: StateRoot,
    pub settings: Arc<RwLock<Settings>>,
    pub tokens: Arc<TokenCache>,
    pub challenges: Challenges,
    pub limit: RateLimit,
}

pub fn router(metadata: Arc<Metadata>) -> Router {
    Router::new()
        .route("/metadata/instance", any(instance))
        .route("/metadata/instance/{*path}", any(instance))
        .route("/metadata/identity/oauth2/token", any(token))
        .fallback(not_found)
        .with_state(metadata)
}

/// Binds 127.0.0.1 and ::1 on `port` (0: any free port, the same on both
/// where possible). ::1 is skipped with a warning where IPv6 is off.
pub async fn bind(port: u16) -> anyhow::Result<Vec<tokio::net::TcpListener>> {
    use anyhow::Context;
    let v4 = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| {
            format!("could not listen on 127.0.0.1:{port} for the metadata service (is another agent using it? `--metadata-port` picks another)")
        })?;
    let port = v4.local_addr()?.port();
    let mut listeners = vec![v4];
    match tokio::net::TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await {
        Ok(v6) => listeners.push(v6),
        Err(e) => {
            tracing::warn!("the metadata service listens on 127.0.0.1 only: [::1]:{port}: {e}")
        }
    }
    Ok(listeners)
}

pub async fn serve(listener: tokio::net::TcpListener, metadata: Arc<Metadata>) {
    let app = router(metadata).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("the metadata service stopped: {e}");
    }
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

fn with_header(mut response: Response, name: header::HeaderName, value: &'static str) -> Response {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
    response
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such metadata path; Tether serves /metadata/instance (and paths below it, such as /metadata/instance/compute/vmId) and /metadata/identity/oauth2/token",
    )
}

/// Whether a `Host` header names this loopback service: 127.0.0.1, [::1]
/// or localhost, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((name, port)) if port.is_empty() || port.starts_with(':') => name,
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| {
            ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
        })
}

/// Every protection but the route's own; the query's parameters on success.
#[allow(clippy::result_large_err)] // the refusal is returned at once, not carried
fn guard(
    metadata: &Metadata,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<BTreeMap<String, String>, Response> {
    if method != Method::GET {
        return Err(with_header(
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Only GET is allowed",
            ),
            header::ALLOW,
            "GET",
        ));
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(loopback_host) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The Host header must be 127.0.0.1, [::1] or localhost (with the port): the metadata service answers local callers by its loopback name only",
        ));
    }
    for forwarded in ["x-forwarded-for", "forwarded", "via"] {
        if headers.contains_key(forwarded) {
            return Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                &format!(
                    "Requests through a proxy are refused (the request carries {forwarded}); call the metadata service directly, and exclude 127.0.0.1 and localhost from any proxy (NO_PROXY)"
                ),
            ));
        }
    }
    let flagged = headers
        .get("metadata")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !flagged {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Required metadata header not specified: send `Metadata: true`",
        ));
    }
    if !metadata.limit.allow() {
        return Err(with_header(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests to the metadata service from this machine; slow down and retry after a second",
            ),
            header::RETRY_AFTER,
            "1",
        ));
    }
    let mut query = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if query.insert(key.to_string(), value.to_string()).is_some() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!(
                    "The query parameter `{key}` is given more than once; give each parameter once"
                ),
            ));
        }
    }
    if query.get("api-version").is_none_or(|v| v.is_empty()) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Bad request. api-version was not specified in the request (for example ?api-version=2021-02-01)",
        ));
    }
    Ok(query)
}

async fn instance(
    State(metadata): State<Arc<Metadata>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = match guard(&metadata, &method, &uri, &headers) {
        Ok(query) => query,
        Err(response) => return response,
    };
    let document = match Registration::load(&metadata.state) {
        Ok(Some(registration)) => instance_document(&registration, &interfaces::list()),
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_connected",
                "This machine is not connected; run `tether connect` first",
            );
        }
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                &format!("The registration could not be read: {e:#}"),
            );
        }
    };
    let below = uri
        .path()
        .strip_prefix("/metadata/instance")
        .unwrap_or_default();
    let Some(found) = select(&document, below) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!(
                "No such metadata path: /metadata/instance{below} (paths name the document's keys and list indexes, as /metadata/instance/network/interface/0/macAddress)"
            ),
        );
    };
    match query.get("format").map(String::as_str) {
        None | Some("json") => axum::Json(found.clone()).into_response(),
        Some("text") => match found {
            Value::String(text) => text.clone().into_response(),
            Value::Number(_) | Value::Bool(_) => found.to_string().into_response(),
            _ => error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "format=text is for a single value (a leaf such as compute/vmId); ask for this path with format=json",
            ),
        },
        Some(other) => error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("Unknown format `{other}`: use json or text"),
        ),
    }
}

/// The part of `document` a path below `/metadata/instance` names: keys of
/// objects and indexes of lists, as IMDS resolves them.
fn select<'a>(document: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/')
        .filter(|part| !part.is_empty())
        .try_fold(document, |node, part| match node {
            Value::Object(map) => map.get(part),
            Value::Array(list) => list.get(part.parse::<usize>().ok()?),
            _ => None,
        })
}

/// The instance document, in IMDS's shape.
pub fn instance_document(r: &Registration, nics: &[interfaces::Interface]) -> Value {
    let tags_list: Vec<Value> = r
        .tags
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let tags = r
        .tags
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(";");
    json!({
        "compute": {
            "azEnvironment": r.endpoints.az_environment(),
            "location": r.location,
            "name": r.resource_name,
            "osType": if cfg!(windows) { "Windows" } else { "Linux" },
            "resourceGroupName": r.resource_group,
            "resourceId": r.resource_id,
            "subscriptionId": r.subscription_id,
            "tenantId": r.tenant_id,
            "vmId": r.vm_id,
            "tags": tags,
            "tagsList": tags_list,
            "agentVersion": r.agent_version,
        },
        "network": interfaces::document(nics),
    })
}

async fn token(
    State(metadata): State<Arc<Metadata>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = match guard(&metadata, &method, &uri, &headers) {
        Ok(query) => query,
        Err(response) => return response,
    };
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()).cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The `resource` parameter is required (the audience the token is for, such as the ARM endpoint)",
        );
    };
    if let Ok(Some(registration)) = Registration::load(&metadata.state)
        && registration.endpoints.is_agent_audience(&resource)
    {
        tracing::warn!("refused a workload token for the agent service's audience");
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            "The resource is the agent service's, the machine's own channel to its cloud; workloads on the machine get tokens for other audiences only (such as the ARM endpoint)",
        );
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let Some(secret) = basic else {
        return match metadata.challenges.issue() {
            Ok(None) => with_header(
                error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    "Too many identity challenges are open; answer one or retry after a few seconds",
                ),
                header::RETRY_AFTER,
                "2",
            ),
            Ok(Some(path)) => {
                let mut response = error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Read the file named in WWW-Authenticate and send its contents as `Authorization: Basic <contents>`",
                );
                let realm = format!("Basic realm={}", path.display());
                if let Ok(value) = HeaderValue::from_str(&realm) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                &format!("The challenge file could not be written: {e}"),
            ),
        };
    };
    match metadata.challenges.answer(secret) {
        Answer::Accepted => {}
        Answer::Expired => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "The key file expired; ask again without Authorization for a new one and use it at once",
            );
        }
        Answer::Unknown => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "The key is wrong or was used already (each key file works once); ask again without Authorization",
            );
        }
    }
    let fetch = {
        let metadata = metadata.clone();
        tokio::task::spawn_blocking(move || {
            machine_token(&metadata, &resource).map(|t| (t, resource))
        })
    };
    match fetch.await {
        Ok(Ok((token, resource))) => {
            // Azure's managed-identity endpoints give every number as a
            // string; MSAL and azure-identity parse them so.
            let now = crate::util::now();
            axum::Json(json!({
                "access_token": token.access_token,
                "expires_in": token.expires_in.to_string(),
                "expires_on": (now + token.expires_in).to_string(),
                "ext_expires_in": token.ext_expires_in.unwrap_or(token.expires_in).to_string(),
                "not_before": now.to_string(),
                "resource": resource,
                "token_type": "Bearer",
            }))
            .into_response()
        }
        Ok(Err(e)) => {
            let text = format!("{e:#}");
            let status = if text.contains("not connected") {
                StatusCode::NOT_FOUND
            } else if text.contains("invalid_scope") {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::BAD_GATEWAY
            };
            error(status, "identity_unavailable", &text)
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            &e.to_string(),
        ),
    }
}

fn machine_token(
    metadata: &Metadata,
    resource: &str,
) -> anyhow::Result<tether_cloud_api::identity::TokenResponse> {
    let settings = metadata
        .settings
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let machine = ConnectedMachine::require(&metadata.state, &settings)?;
    metadata.tokens.get(&machine.identity(), resource)
}
