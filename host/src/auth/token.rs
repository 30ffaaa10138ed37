//! Getting an ARM access token with a sign-in method.

use super::sign_in::SignIn;
use crate::cloud::Endpoints;
use crate::cloud::proxy::ProxyPolicy;
use anyhow::Result;
use tether_cloud_api::identity::{JWT_BEARER_ASSERTION, OAuthError, TokenResponse};

/// The public client id Tether signs users in as.
pub const AGENT_CLIENT_ID: &str = "tether-agent";

/// Sign-in failed: wrong credentials, a denied or expired code, ….
#[derive(Debug, thiserror::Error)]
#[error("sign-in failed ({method}): {message}")]
pub struct AuthFailure {
    pub method: &'static str,
    pub message: String,
}

/// Where and how to reach the identity endpoint: the one client every
/// sign-in and the machine identity use.
pub(super) use crate::cloud::identity_endpoint::IdentityEndpoint as Identity;

fn failed(method: &'static str, e: OAuthError) -> anyhow::Error {
    AuthFailure {
        method,
        message: format!("{} ({})", e.error_description, e.error),
    }
    .into()
}

/// An access token for Resource Manager. `say` receives what the user must
/// see (device codes, URLs, progress).
pub fn arm_token(
    sign_in: &SignIn,
    endpoints: &Endpoints,
    proxy: &ProxyPolicy,
    ca_pem: Option<&[u8]>,
    say: &mut dyn FnMut(&str),
) -> Result<String> {
    Ok(arm_tokens(sign_in, endpoints, proxy, ca_pem, say)?.access_token)
}

fn just(access_token: String) -> TokenResponse {
    TokenResponse {
        token_type: "Bearer".into(),
        expires_in: 3600,
        ext_expires_in: None,
        access_token,
        refresh_token: None,
        scope: None,
        id_token: None,
        client_info: None,
    }
}

/// Like [`arm_token`], with the refresh token (user flows) and lifetime.
pub fn arm_tokens(
    sign_in: &SignIn,
    endpoints: &Endpoints,
    proxy: &ProxyPolicy,
    ca_pem: Option<&[u8]>,
    say: &mut dyn FnMut(&str),
) -> Result<TokenResponse> {
    let id = Identity {
        endpoints,
        proxy,
        ca_pem,
    };
    let scope = id.arm_scope();
    let method = sign_in.kind();
    match sign_in {
        SignIn::AccessToken(token) => Ok(just(token.clone())),
        SignIn::Secret {
            tenant,
            client_id,
            secret,
        } => id
            .token(
                tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                    ("scope", &scope),
                ],
            )?
            .map_err(|e| failed(method, e)),
        SignIn::Certificate {
            tenant,
            client_id,
            pem,
            password_file,
        } => {
            let certificate = super::certificate::load(pem, password_file.as_deref())
                .map_err(|e| crate::exit::coded(crate::exit::Exit::BadInput, format!("{e:#}")))?;
            let audience = id.url(tenant, "token")?;
            let jti = hex::encode(crate::util::random_bytes::<16>());
            let assertion = tether_cloud_api::jwt::client_assertion(
                client_id,
                audience.as_str(),
                &certificate.signer,
                Some(&certificate.cert_der),
                crate::util::now(),
                &jti,
            );
            id.token(
                tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_assertion_type", JWT_BEARER_ASSERTION),
                    ("client_assertion", &assertion),
                    ("scope", &scope),
                ],
            )?
            .map_err(|e| failed(method, e))
        }
        SignIn::DeviceCode { tenant } => super::device_code::run(&id, tenant, &scope, say),
        SignIn::Browser { tenant } => match super::browser::run(&id, tenant, &scope, say)? {
            Some(token) => Ok(token),
            None => {
                say("could not open a browser; signing in with a device code instead");
                super::device_code::run(&id, tenant, &scope, say)
            }
        },
    }
}

/// A new access token from a refresh token (the refresh token rotates).
pub fn refresh(
    endpoints: &Endpoints,
    proxy: &ProxyPolicy,
    ca_pem: Option<&[u8]>,
    tenant: &str,
    refresh_token: &str,
) -> Result<TokenResponse> {
    let id = Identity {
        endpoints,
        proxy,
        ca_pem,
    };
    let scope = format!("{} offline_access", id.arm_scope());
    id.token(
        tenant,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", AGENT_CLIENT_ID),
            ("refresh_token", refresh_token),
            ("scope", &scope),
        ],
    )?
    .map_err(|e| failed("refresh", e))
}
