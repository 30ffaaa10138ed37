//! Entra ID's v2.0 endpoint: tokens (client secret, client assertion,
//! device code, authorization code with PKCE, refresh), device codes, the
//! sign-in pages, and the signing keys.

use crate::Cloud;
use crate::errors::OAuthErr;
use crate::model::{AuthCode, DeviceCode, PendingState, RefreshGrant};
use crate::util;
use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tether_cloud_api::identity::{
    DEVICE_CODE_GRANT, DeviceCodeResponse, JWT_BEARER_ASSERTION, Jwk, JwkSet, TokenResponse,
};
use tether_cloud_api::jwt::{self, Unverified};

const TOKEN_LIFETIME: u64 = 3600;
const REFRESH_LIFETIME: u64 = 90 * 24 * 3600;
const DEVICE_CODE_LIFETIME: u64 = 900;

type Params = HashMap<String, String>;

/// Who a token is for.
pub(crate) enum Subject {
    App {
        client_id: String,
        object_id: String,
    },
    User {
        client_id: String,
        object_id: String,
    },
    Machine {
        principal_id: String,
        resource_id: String,
    },
}

fn audience_of(cloud: &Cloud, scope: &str) -> Result<String, OAuthErr> {
    let wanted = scope
        .split_whitespace()
        .find(|s| !matches!(*s, "openid" | "profile" | "offline_access"))
        .unwrap_or_default();
    let resource = wanted.strip_suffix(".default").unwrap_or(wanted);
    let resource = format!("{}/", resource.trim_end_matches('/'));
    [cloud.arm_audience(), cloud.agent_audience()]
        .into_iter()
        .find(|a| *a == resource)
        .ok_or_else(|| {
            OAuthErr::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                70011,
                format!(
                    "The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not name a known resource ({}.default or {}.default).",
                    cloud.arm_audience(),
                    cloud.agent_audience()
                ),
            )
        })
}

pub(crate) fn issue(
    cloud: &Cloud,
    tenant: &str,
    subject: Subject,
    scope: &str,
    nonce: Option<&str>,
) -> Result<TokenResponse, OAuthErr> {
    let audience = audience_of(cloud, scope)?;
    let now = cloud.now();
    let mut claims = json!({
        "iss": cloud.issuer(tenant),
        "aud": audience,
        "tid": tenant,
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME,
        "ver": "2.0",
        "uti": util::guid(),
    });
    let mut refresh = None;
    match &subject {
        Subject::App {
            client_id,
            object_id,
        } => {
            claims["oid"] = json!(object_id);
            claims["sub"] = json!(object_id);
            claims["appid"] = json!(client_id);
            claims["idtyp"] = json!("app");
            claims["roles"] = json!([]);
        }
        Subject::User {
            client_id,
            object_id,
        } => {
            claims["oid"] = json!(object_id);
            claims["sub"] = json!(object_id);
            claims["appid"] = json!(client_id);
            claims["scp"] = json!("user_impersonation");
            if scope.split_whitespace().any(|s| s == "offline_access") {
                let token = util::secret(48);
                let grant = RefreshGrant {
                    tenant_id: tenant.to_string(),
                    client_id: client_id.clone(),
                    object_id: object_id.clone(),
                    scope: scope.to_string(),
                    expires_at: now + REFRESH_LIFETIME,
                };
                cloud.write(|m| {
                    m.refresh_tokens
                        .insert(util::sha256_hex(token.as_bytes()), grant)
                });
                refresh = Some(token);
            }
        }
        Subject::Machine {
            principal_id,
            resource_id,
        } => {
            claims["oid"] = json!(principal_id);
            claims["sub"] = json!(principal_id);
            claims["appid"] = json!(principal_id);
            claims["idtyp"] = json!("app");
            claims["xms_mirid"] = json!(resource_id);
        }
    }
    let header = jwt::Header {
        kid: Some(cloud.key.kid.clone()),
        x5t: Some(cloud.key.kid.clone()),
        ..jwt::Header::eddsa()
    };
    let (id_token, client_info) = match &subject {
        Subject::User {
            client_id,
            object_id,
        } if scope
            .split_whitespace()
            .any(|s| s == "openid" || s == "profile") =>
        {
            let (token, info) = id_token(cloud, tenant, client_id, object_id, nonce, &header);
            (Some(token), Some(info))
        }
        _ => (None, None),
    };
    Ok(TokenResponse {
        token_type: "Bearer".into(),
        expires_in: TOKEN_LIFETIME,
        ext_expires_in: Some(TOKEN_LIFETIME),
        access_token: jwt::sign(&header, &claims, &cloud.key.signer),
        refresh_token: refresh,
        scope: Some(scope.to_string()),
        id_token,
        client_info,
    })
}

/// The id token and `client_info` Entra returns to a user's sign-in when
/// `openid` or `profile` is asked: what MSAL builds its account from.
fn id_token(
    cloud: &Cloud,
    tenant: &str,
    client_id: &str,
    object_id: &str,
    nonce: Option<&str>,
    header: &jwt::Header,
) -> (String, String) {
    let now = cloud.now();
    let username = cloud
        .read(|m| {
            m.users
                .values()
                .find(|u| u.object_id == object_id)
                .map(|u| u.username.clone())
        })
        .unwrap_or_default();
    let mut claims = json!({
        "ver": "2.0",
        "iss": cloud.issuer(tenant),
        "aud": client_id,
        "sub": object_id,
        "oid": object_id,
        "tid": tenant,
        "preferred_username": username,
        "name": username,
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME,
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let info = json!({"uid": object_id, "utid": tenant});
    (
        jwt::sign(header, &claims, &cloud.key.signer),
        jwt::b64url(info.to_string().as_bytes()),
    )
}

fn require<'a>(params: &'a Params, name: &str) -> Result<&'a str, OAuthErr> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            OAuthErr::invalid_request(
                900144,
                format!("The request body must contain the following parameter: '{name}'."),
            )
        })
}

fn known_tenant(cloud: &Cloud, tenant: &str) -> Result<(), OAuthErr> {
    if cloud.read(|m| m.tenants.contains_key(tenant)) {
        Ok(())
    } else {
        Err(OAuthErr::new(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."
            ),
        ))
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`
pub async fn token(
    State(cloud): State<Arc<Cloud>>,
    Path(tenant): Path<String>,
    Form(params): Form<Params>,
) -> Response {
    match grant(&cloud, &tenant, &params) {
        Ok(token) => Json(token).into_response(),
        Err(e) => e.into_response(),
    }
}

fn grant(cloud: &Cloud, tenant: &str, params: &Params) -> Result<TokenResponse, OAuthErr> {
    known_tenant(cloud, tenant)?;
    match require(params, "grant_type")? {
        "client_credentials" => client_credentials(cloud, tenant, params),
        DEVICE_CODE_GRANT => device_code_grant(cloud, tenant, params),
        "authorization_code" => authorization_code(cloud, tenant, params),
        "refresh_token" => refresh_token(cloud, tenant, params),
        other => Err(OAuthErr::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn client_credentials(
    cloud: &Cloud,
    tenant: &str,
    params: &Params,
) -> Result<TokenResponse, OAuthErr> {
    let client_id = require(params, "client_id")?;
    let scope = require(params, "scope")?;
    if let Some(secret) = params.get("client_secret") {
        let principal = cloud.read(|m| m.principals.get(client_id).cloned());
        let principal = principal.filter(|p| p.tenant_id == tenant).ok_or_else(|| {
            OAuthErr::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
            )
        })?;
        let given = util::sha256_hex(secret.as_bytes());
        if !principal
            .secret_hashes
            .iter()
            .any(|h| util::same(h, &given))
        {
            return Err(OAuthErr::invalid_client(
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            ));
        }
        return issue(
            cloud,
            tenant,
            Subject::App {
                client_id: client_id.into(),
                object_id: principal.object_id,
            },
            scope,
            None,
        );
    }
    if params.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER_ASSERTION) {
        return Err(OAuthErr::invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    let assertion = require(params, "client_assertion")?;
    let subject = verify_assertion(cloud, tenant, client_id, assertion)?;
    issue(cloud, tenant, subject, scope, None)
}

/// Verifies a client assertion signed by a service principal's
/// certificate key (named by `x5t`) or by a machine's identity key.
fn verify_assertion(
    cloud: &Cloud,
    tenant: &str,
    client_id: &str,
    assertion: &str,
) -> Result<Subject, OAuthErr> {
    let bad = |why: String| {
        OAuthErr::invalid_client(
            700027,
            format!("Client assertion failed signature validation or is invalid: {why}"),
        )
    };
    let token = Unverified::parse(assertion).map_err(|e| bad(e.to_string()))?;
    let (key, subject) = cloud
        .read(|m| {
            if let Some(sp) = m.principals.get(client_id).filter(|p| p.tenant_id == tenant) {
                // MSAL names the certificate by x5t#S256 or x5t, base64url
                // with its padding; others without.
                let named = |header: &Option<String>, thumbprint: &str| {
                    header.as_deref().is_some_and(|t| !thumbprint.is_empty() && t.trim_end_matches('=') == thumbprint)
                };
                let cert = sp.certificates.iter().find(|c| {
                    named(&token.header.x5t_s256, &c.thumbprint_s256) || named(&token.header.x5t, &c.thumbprint)
                })?;
                return Some((
                    cert.public_key.clone(),
                    Subject::App { client_id: client_id.into(), object_id: sp.object_id.clone() },
                ));
            }
            m.machines.values().find_map(|rec| {
                let identity = rec.resource.identity.as_ref()?;
                (identity.principal_id.as_deref() == Some(client_id) && identity.tenant_id.as_deref() == Some(tenant)).then(|| {
                    (
                        rec.resource.properties.client_public_key.clone().unwrap_or_default(),
                        Subject::Machine { principal_id: client_id.into(), resource_id: rec.resource.id.clone() },
                    )
                })
            })
        })
        .ok_or_else(|| {
            OAuthErr::invalid_client(
                700027,
                format!("No key is registered for client '{client_id}' matching the assertion (a certificate thumbprint in x5t#S256 or x5t, or a connected machine's identity)."),
            )
        })?;
    let key = jwt::parse_client_public_key(&key)
        .ok_or_else(|| bad("the registered key is unusable".into()))?;
    let claims = token
        .verify(&key, util::real_now()) // the client signs with its own clock; clock travel is the cloud's alone
        .map_err(|e| bad(e.to_string()))?;
    let claim = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if claim("aud") != cloud.token_endpoint(tenant) {
        return Err(bad(format!(
            "the audience must be {}",
            cloud.token_endpoint(tenant)
        )));
    }
    if claim("iss") != client_id || claim("sub") != client_id {
        return Err(bad("iss and sub must both be the client id".into()));
    }
    let jti = claim("jti");
    // Remembered until the assertion itself expires: after that it is
    // refused as expired, and its id need not be kept.
    let now = util::real_now();
    let expires = claims
        .get("exp")
        .and_then(Value::as_u64)
        .unwrap_or(now + 3600);
    if jti.is_empty()
        || cloud.write(|m| {
            if m.used_assertions.count() >= USED_ASSERTIONS_PRUNED_AT {
                m.used_assertions.retain(|_, expires| *expires > now);
            }
            m.used_assertions
                .insert(format!("{client_id}/{jti}"), expires)
                .is_some()
        })
    {
        return Err(bad(
            "the assertion's jti is missing or was already used".into()
        ));
    }
    Ok(subject)
}

/// Used assertion ids kept before the expired ones are dropped (a fleet
/// onboarding signs in thousands of machines in minutes).
const USED_ASSERTIONS_PRUNED_AT: usize = 10_000;

fn device_code_grant(
    cloud: &Cloud,
    tenant: &str,
    params: &Params,
) -> Result<TokenResponse, OAuthErr> {
    let device_code = require(params, "device_code")?;
    let now = cloud.now();
    let now_ms = util::real_now_ms();
    let pending = cloud.write(|m| {
        let code = m.device_codes.get_mut(device_code)?;
        let too_soon = code.last_poll.is_some_and(|last| {
            now_ms.saturating_sub(u128::from(last)) + 250 < u128::from(code.interval) * 1000
        });
        code.last_poll = u64::try_from(now_ms).ok();
        Some((code.clone(), too_soon))
    });
    let Some((code, too_soon)) = pending else {
        return Err(OAuthErr::invalid_grant(
            70000,
            "The provided device code is not valid.",
        ));
    };
    if code.tenant_id != tenant {
        return Err(OAuthErr::invalid_grant(
            70000,
            "The device code was issued for another tenant.",
        ));
    }
    if now > code.expires_at {
        cloud.write(|m| m.device_codes.remove(device_code));
        return Err(OAuthErr::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            70020,
            "The provided device code has expired; start the sign-in again.",
        ));
    }
    match code.state {
        PendingState::Denied => {
            cloud.write(|m| m.device_codes.remove(device_code));
            Err(OAuthErr::new(
                StatusCode::BAD_REQUEST,
                "access_denied",
                70016,
                "The user declined the sign-in.",
            ))
        }
        PendingState::Pending if too_soon => Err(OAuthErr::new(
            StatusCode::BAD_REQUEST,
            "slow_down",
            70016,
            format!(
                "Polling faster than the interval of {} seconds; slow down.",
                code.interval
            ),
        )),
        PendingState::Pending => Err(OAuthErr::new(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )),
        PendingState::Approved { object_id } => {
            cloud.write(|m| m.device_codes.remove(device_code));
            issue(
                cloud,
                tenant,
                Subject::User {
                    client_id: code.client_id,
                    object_id,
                },
                &code.scope,
                None,
            )
        }
    }
}

fn authorization_code(
    cloud: &Cloud,
    tenant: &str,
    params: &Params,
) -> Result<TokenResponse, OAuthErr> {
    let code = require(params, "code")?;
    let verifier = require(params, "code_verifier")?;
    let redirect_uri = require(params, "redirect_uri")?;
    let client_id = require(params, "client_id")?;
    let grant = cloud.write(|m| m.auth_codes.remove(code)).ok_or_else(|| {
        OAuthErr::invalid_grant(
            70008,
            "The provided authorization code is invalid or was already redeemed.",
        )
    })?;
    if grant.tenant_id != tenant
        || grant.client_id != client_id
        || grant.redirect_uri != redirect_uri
    {
        return Err(OAuthErr::invalid_grant(
            70008,
            "The authorization code was issued to another client or redirect URI.",
        ));
    }
    if cloud.now() > grant.expires_at {
        return Err(OAuthErr::invalid_grant(
            70008,
            "The provided authorization code has expired.",
        ));
    }
    use sha2::Digest;
    let challenge = jwt::b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    if challenge != grant.code_challenge {
        return Err(OAuthErr::invalid_grant(
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        ));
    }
    issue(
        cloud,
        tenant,
        Subject::User {
            client_id: client_id.into(),
            object_id: grant.object_id,
        },
        &grant.scope,
        grant.nonce.as_deref(),
    )
}

fn refresh_token(cloud: &Cloud, tenant: &str, params: &Params) -> Result<TokenResponse, OAuthErr> {
    let token = require(params, "refresh_token")?;
    let client_id = require(params, "client_id")?;
    let grant = cloud
        .write(|m| m.refresh_tokens.remove(&util::sha256_hex(token.as_bytes())))
        .ok_or_else(|| {
            OAuthErr::invalid_grant(
                9002313,
                "The refresh token is invalid, revoked or was already used.",
            )
        })?;
    if grant.tenant_id != tenant || grant.client_id != client_id {
        return Err(OAuthErr::invalid_grant(
            700003,
            "The refresh token was issued to another client or tenant.",
        ));
    }
    if cloud.now() > grant.expires_at {
        return Err(OAuthErr::invalid_grant(
            700082,
            "The refresh token has expired due to inactivity; sign in again.",
        ));
    }
    let scope = params.get("scope").cloned().unwrap_or(grant.scope);
    let scope = if scope.split_whitespace().any(|s| s == "offline_access") {
        scope
    } else {
        format!("{scope} offline_access")
    };
    issue(
        cloud,
        tenant,
        Subject::User {
            client_id: client_id.into(),
            object_id: grant.object_id,
        },
        &scope,
        None,
    )
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`
pub async fn devicecode(
    State(cloud): State<Arc<Cloud>>,
    Path(tenant): Path<String>,
    Form(params): Form<Params>,
) -> Response {
    let result = (|| {
        known_tenant(&cloud, &tenant)?;
        let client_id = require(&params, "client_id")?.to_string();
        let scope = require(&params, "scope")?.to_string();
        audience_of(&cloud, &scope)?;
        let device_code = util::secret(32);
        let user_code = util::user_code();
        let interval = cloud.config.device_code_interval;
        let code = DeviceCode {
            user_code: user_code.clone(),
            tenant_id: tenant.clone(),
            client_id,
            scope,
            expires_at: cloud.now() + DEVICE_CODE_LIFETIME,
            interval,
            last_poll: None,
            state: PendingState::Pending,
        };
        cloud.write(|m| m.device_codes.insert(device_code.clone(), code));
        let verification_uri = format!("{}/devicelogin", cloud.base_url);
        Ok::<_, OAuthErr>(DeviceCodeResponse {
            message: format!(
                "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
            ),
            device_code,
            user_code,
            verification_uri,
            expires_in: DEVICE_CODE_LIFETIME,
            interval,
        })
    })();
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Settles a pending device code, as the user (or the admin API) would.
pub(crate) fn settle_device_code(
    cloud: &Cloud,
    user_code: &str,
    object_id: Option<String>,
) -> bool {
    cloud.write(|m| {
        let Some(code) = m
            .device_codes
            .matching_mut(|c| {
                c.user_code.eq_ignore_ascii_case(user_code) && c.state == PendingState::Pending
            })
            .next()
        else {
            return false;
        };
        code.state = match object_id {
            Some(object_id) => PendingState::Approved { object_id },
            None => PendingState::Denied,
        };
        true
    })
}

/// A user's object id, if the password is right.
pub(crate) fn check_password(
    cloud: &Cloud,
    tenant: Option<&str>,
    username: &str,
    password: &str,
) -> Option<String> {
    cloud.read(|m| {
        m.users
            .values()
            .find(|u| {
                u.username.eq_ignore_ascii_case(username) && tenant.is_none_or(|t| u.tenant_id == t)
            })
            .filter(|u| {
                util::same(
                    &u.password_hash,
                    &util::sha256_hex(format!("{}{password}", u.password_salt).as_bytes()),
                )
            })
            .map(|u| u.object_id.clone())
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn sign_in_page(title: &str, note: &str, fields: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head><body style=\"font-family:sans-serif;max-width:28em;margin:3em auto\"><h1>{title}</h1><p>{note}</p><form method=post>{fields}<p><label>User name <input name=username></label></p><p><label>Password <input name=password type=password></label></p><p><button name=action value=approve>Sign in</button> <button name=action value=deny>Deny</button></p></form></body></html>"
    ))
}

/// `GET /devicelogin`
pub async fn devicelogin_page() -> Html<String> {
    sign_in_page(
        "tether-cloud device sign-in",
        "Enter the code the device shows, then sign in.",
        "<p><label>Code <input name=user_code></label></p>",
    )
}

/// `POST /devicelogin`
pub async fn devicelogin_submit(
    State(cloud): State<Arc<Cloud>>,
    Form(params): Form<Params>,
) -> Response {
    let code = params
        .get("user_code")
        .map(String::as_str)
        .unwrap_or_default();
    let approve = params.get("action").map(String::as_str) != Some("deny");
    let object_id = if approve {
        match check_password(
            &cloud,
            None,
            params
                .get("username")
                .map(String::as_str)
                .unwrap_or_default(),
            params
                .get("password")
                .map(String::as_str)
                .unwrap_or_default(),
        ) {
            Some(oid) => Some(oid),
            None => {
                return (
                    StatusCode::UNAUTHORIZED,
                    Html("<p>Wrong user name or password.</p>".to_string()),
                )
                    .into_response();
            }
        }
    } else {
        None
    };
    if settle_device_code(&cloud, code, object_id) {
        Html("<p>Done. You may close this window and return to the device.</p>".to_string())
            .into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Html("<p>No pending sign-in has that code.</p>".to_string()),
        )
            .into_response()
    }
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the sign-in page of the browser
/// flow (authorization code with PKCE).
pub async fn authorize_page(
    State(cloud): State<Arc<Cloud>>,
    Path(tenant): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    if let Err(e) = validate_authorize(&cloud, &tenant, &params) {
        return e.into_response();
    }
    let hidden: String = [
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "response_type",
    ]
    .iter()
    .filter_map(|k| {
        params
            .get(*k)
            .map(|v| format!("<input type=hidden name={k} value=\"{}\">", escape(v)))
    })
    .collect();
    let id = util::user_code();
    let pending = crate::model::PendingSignIn {
        params: params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        state: PendingState::Pending,
        expires_at: cloud.now() + 900,
    };
    cloud.write(|m| m.pending_sign_ins.insert(id.clone(), pending));
    sign_in_page(
        "Sign in to tether-cloud",
        &format!(
            "Tenant {}. Sign in below, or have an administrator approve sign-in <code id=signin>{id}</code> and <a href=\"/{}/oauth2/v2.0/authorize/continue?id={id}\">continue</a>.",
            escape(&tenant),
            escape(&tenant)
        ),
        &hidden,
    )
    .into_response()
}

fn validate_authorize(cloud: &Cloud, tenant: &str, params: &Params) -> Result<(), OAuthErr> {
    known_tenant(cloud, tenant)?;
    require(params, "client_id")?;
    let redirect = require(params, "redirect_uri")?;
    let loopback = url::Url::parse(redirect).ok().filter(|u| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
    });
    if loopback.is_none() {
        return Err(OAuthErr::invalid_request(
            50011,
            "The redirect URI must be a loopback http address (http://127.0.0.1:PORT/ or http://localhost:PORT/) for a public client.",
        ));
    }
    if require(params, "response_type")? != "code" {
        return Err(OAuthErr::invalid_request(
            900144,
            "response_type must be 'code'.",
        ));
    }
    require(params, "code_challenge")?;
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return Err(OAuthErr::invalid_request(
            501491,
            "PKCE with code_challenge_method=S256 is required.",
        ));
    }
    audience_of(cloud, require(params, "scope")?)?;
    Ok(())
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the sign-in form's submission;
/// redirects to the client's loopback listener with a code (or an error).
pub async fn authorize_submit(
    State(cloud): State<Arc<Cloud>>,
    Path(tenant): Path<String>,
    Form(params): Form<Params>,
) -> Response {
    if let Err(e) = validate_authorize(&cloud, &tenant, &params) {
        return e.into_response();
    }
    if params.get("action").map(String::as_str) == Some("deny") {
        return finish_sign_in(&cloud, &tenant, &params, None);
    }
    let username = params
        .get("username")
        .map(String::as_str)
        .unwrap_or_default();
    let password = params
        .get("password")
        .map(String::as_str)
        .unwrap_or_default();
    let Some(object_id) = check_password(&cloud, Some(&tenant), username, password) else {
        return (
            StatusCode::UNAUTHORIZED,
            Html("<p>Wrong user name or password. Go back and try again.</p>".to_string()),
        )
            .into_response();
    };
    finish_sign_in(&cloud, &tenant, &params, Some(object_id))
}

/// Redirects the browser to the client's listener: with a code for
/// `object_id`, or with `access_denied`.
fn finish_sign_in(
    cloud: &Cloud,
    tenant: &str,
    params: &Params,
    object_id: Option<String>,
) -> Response {
    let redirect = params.get("redirect_uri").cloned().unwrap_or_default();
    let state = params.get("state").cloned().unwrap_or_default();
    let mut target = match url::Url::parse(&redirect) {
        Ok(u) => u,
        Err(_) => return OAuthErr::invalid_request(50011, "bad redirect_uri").into_response(),
    };
    let Some(object_id) = object_id else {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user declined the sign-in.")
            .append_pair("state", &state);
        return Redirect::to(target.as_str()).into_response();
    };
    let code = util::secret(32);
    let grant = AuthCode {
        tenant_id: tenant.to_string(),
        client_id: params.get("client_id").cloned().unwrap_or_default(),
        redirect_uri: redirect,
        code_challenge: params.get("code_challenge").cloned().unwrap_or_default(),
        scope: params.get("scope").cloned().unwrap_or_default(),
        object_id,
        expires_at: cloud.now() + 600,
        nonce: params.get("nonce").cloned(),
    };
    cloud.write(|m| m.auth_codes.insert(code.clone(), grant));
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    Redirect::to(target.as_str()).into_response()
}

/// `GET /{tenant}/oauth2/v2.0/authorize/continue?id=…`: where the sign-in
/// page waits for an administrator to settle its sign-in.
pub async fn authorize_continue(
    State(cloud): State<Arc<Cloud>>,
    Path(tenant): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let id = q.get("id").cloned().unwrap_or_default();
    let Some(pending) = cloud.read(|m| m.pending_sign_ins.get(&id).cloned()) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<p>No such sign-in; start again.</p>".to_string()),
        )
            .into_response();
    };
    match pending.state {
        PendingState::Pending => waiting_page(&tenant, &id).into_response(),
        settled => {
            cloud.write(|m| m.pending_sign_ins.remove(&id));
            let object_id = match settled {
                PendingState::Approved { object_id } => Some(object_id),
                _ => None,
            };
            finish_sign_in(
                &cloud,
                &tenant,
                &pending.params.into_iter().collect(),
                object_id,
            )
        }
    }
}

fn waiting_page(tenant: &str, id: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=\"2;url=/{t}/oauth2/v2.0/authorize/continue?id={id}\"><title>Waiting</title></head><body><p>Waiting for an administrator to approve sign-in <code>{id}</code>…</p></body></html>",
        t = escape(tenant),
        id = escape(id)
    ))
}

/// Settles a pending browser sign-in (the admin API).
pub(crate) fn settle_sign_in(cloud: &Cloud, id: &str, object_id: Option<String>) -> bool {
    cloud.write(|m| {
        let Some(p) = m
            .pending_sign_ins
            .get_mut(id)
            .filter(|p| p.state == PendingState::Pending)
        else {
            return false;
        };
        p.state = match object_id {
            Some(object_id) => PendingState::Approved { object_id },
            None => PendingState::Denied,
        };
        true
    })
}

/// `GET /{tenant}/discovery/v2.0/keys`
/// `GET /common/discovery/instance?authorization_endpoint=…`: Entra's
/// instance discovery, for MSAL clients told to ask tether-cloud (MSAL for
/// Python: `instance_discovery="{url}/common/discovery/instance"`): where
/// the tenant's OIDC document is, and the host's aliases (itself only).
pub async fn instance_discovery(
    State(cloud): State<Arc<Cloud>>,
    Query(params): Query<Params>,
) -> Response {
    let endpoint = params
        .get("authorization_endpoint")
        .and_then(|e| url::Url::parse(e).ok());
    let base = url::Url::parse(&cloud.base_url).ok();
    let tenant = match (&endpoint, &base) {
        // By host, as Entra matches it (MSAL names the instance without
        // its port).
        (Some(endpoint), Some(base)) if endpoint.host_str() == base.host_str() => endpoint
            .path_segments()
            .and_then(|mut s| s.next())
            .filter(|t| known_tenant(&cloud, t).is_ok())
            .map(str::to_string),
        _ => None,
    };
    let Some(tenant) = tenant else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "invalid_instance",
                "error_description": "AADSTS50049: Unknown or invalid instance: the authorization endpoint is not one of this cloud's tenants.",
            })),
        )
            .into_response();
    };
    let host = base
        .as_ref()
        .and_then(|b| {
            b.host_str().map(|h| match b.port() {
                Some(port) => format!("{h}:{port}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_default();
    Json(json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", cloud.base_url),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }))
    .into_response()
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: what MSAL-based
/// clients (azure-identity among them) read before any sign-in, to find the
/// token endpoint. The fields Entra's document has and tether-cloud serves.
pub async fn openid_configuration(
    State(cloud): State<Arc<Cloud>>,
    Path(tenant): Path<String>,
) -> Response {
    if let Err(e) = known_tenant(&cloud, &tenant) {
        return e.into_response();
    }
    let base = format!("{}/{tenant}", cloud.base_url);
    Json(serde_json::json!({
        "issuer": cloud.issuer(&tenant),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "tenant_region_scope": null,
        "cloud_instance_name": "tether-cloud",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "subject_types_supported": ["pairwise"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "grant_types_supported": [
            "client_credentials",
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "name", "preferred_username"],
    }))
    .into_response()
}

pub async fn keys(State(cloud): State<Arc<Cloud>>, Path(tenant): Path<String>) -> Json<JwkSet> {
    use base64::Engine as _;
    let (n, e) = cloud.key.signer.components();
    Json(JwkSet {
        keys: vec![Jwk {
            kty: "RSA".into(),
            usage: "sig".into(),
            kid: cloud.key.kid.clone(),
            x5t: cloud.key.kid.clone(),
            n: jwt::b64url(&n),
            e: jwt::b64url(&e),
            x5c: vec![base64::engine::general_purpose::STANDARD.encode(&cloud.key.cert_der)],
            issuer: cloud.issuer(&tenant),
        }],
    })
}
