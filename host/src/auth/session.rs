//! `tether login` / `tether logout` (Disconnect-Entra): a sign-in session
//! kept in a root-only file, used by connect, disconnect and reset when
//! they are given no sign-in flags.

use super::sign_in::SignIn;
use super::token::{arm_tokens, refresh};
use crate::cloud::{Endpoints, ProxyPolicy};
use crate::state::{Access, StateRoot, record};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The session file. Holds tokens: root-only, never shown whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub context: SessionContext,
    pub cloud: String,
    pub endpoints: Endpoints,
    pub cloud_ca_cert: Option<String>,
    access_token: String,
    expires_at: u64,
    refresh_token: Option<String>,
}

/// What `logout` prints: who was signed in, how, where.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionContext {
    pub client_id: String,
    pub tenant_id: String,
    pub scopes: String,
    pub auth_type: String,
    pub token_credential_type: String,
    pub certificate_thumbprint: Option<String>,
    pub account: String,
    pub environment: String,
}

fn path(state: &StateRoot) -> std::path::PathBuf {
    state.path().join("login.json")
}

fn claim(token: &str, name: &str) -> Option<String> {
    tether_cloud_api::jwt::Unverified::parse(token)
        .ok()?
        .claims
        .get(name)?
        .as_str()
        .map(str::to_string)
}

/// Signs in and keeps the session.
pub fn login(
    state: &StateRoot,
    sign_in: &SignIn,
    cloud: &str,
    endpoints: Endpoints,
    proxy: &ProxyPolicy,
    ca: Option<String>,
    say: &mut dyn FnMut(&str),
) -> Result<SessionContext> {
    let tokens = arm_tokens(
        sign_in,
        &endpoints,
        proxy,
        ca.as_deref().map(str::as_bytes),
        say,
    )?;
    let (client_id, tenant, auth_type, credential, thumbprint) = match sign_in {
        SignIn::Secret {
            tenant, client_id, ..
        } => (
            client_id.clone(),
            tenant.clone(),
            "ServicePrincipal",
            "ClientSecretCredential",
            None,
        ),
        SignIn::Certificate {
            tenant,
            client_id,
            pem,
            password_file,
        } => (
            client_id.clone(),
            tenant.clone(),
            "ServicePrincipal",
            "ClientCertificateCredential",
            Some(tether_cloud_api::jwt::thumbprint(
                &super::certificate::load(pem, password_file.as_deref())?.cert_der,
            )),
        ),
        SignIn::AccessToken(_) => (
            String::new(),
            String::new(),
            "AccessToken",
            "AccessTokenCredential",
            None,
        ),
        SignIn::DeviceCode { tenant } => (
            super::token::AGENT_CLIENT_ID.into(),
            tenant.clone(),
            "User",
            "DeviceCodeCredential",
            None,
        ),
        SignIn::Browser { tenant } => (
            super::token::AGENT_CLIENT_ID.into(),
            tenant.clone(),
            "User",
            "InteractiveBrowserCredential",
            None,
        ),
    };
    let token_tenant = claim(&tokens.access_token, "tid").unwrap_or(tenant);
    let context = SessionContext {
        client_id: if client_id.is_empty() {
            claim(&tokens.access_token, "appid").unwrap_or_default()
        } else {
            client_id
        },
        tenant_id: token_tenant,
        scopes: tokens.scope.clone().unwrap_or_default(),
        auth_type: auth_type.into(),
        token_credential_type: credential.into(),
        certificate_thumbprint: thumbprint,
        account: claim(&tokens.access_token, "oid").unwrap_or_default(),
        environment: endpoints.name.clone(),
    };
    let session = Session {
        context: context.clone(),
        cloud: cloud.to_string(),
        endpoints,
        cloud_ca_cert: ca,
        expires_at: crate::util::now() + tokens.expires_in,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
    };
    record::write(&path(state), &session, Access::Private)?;
    Ok(context)
}

pub fn load(state: &StateRoot) -> Result<Option<Session>> {
    if let Err(e) = std::fs::File::open(path(state))
        && e.kind() == std::io::ErrorKind::PermissionDenied
    {
        bail!("the login session is readable by root only: run as root")
    }
    record::read(&path(state), "run `tether logout` and `tether login` again")
}

/// A sign-in from the session: its token while valid, else refreshed.
pub fn sign_in_from_session(state: &StateRoot, proxy: &ProxyPolicy) -> Result<Option<SignIn>> {
    let Some(mut session) = load(state)? else {
        return Ok(None);
    };
    if session.expires_at > crate::util::now() + 300 {
        return Ok(Some(SignIn::AccessToken(session.access_token)));
    }
    let Some(refresh_token) = session.refresh_token.clone() else {
        bail!("the login session has expired and cannot be renewed; run `tether login` again");
    };
    let tokens = refresh(
        &session.endpoints,
        proxy,
        session.cloud_ca_cert.as_deref().map(str::as_bytes),
        &session.context.tenant_id,
        &refresh_token,
    )?;
    session.access_token = tokens.access_token.clone();
    session.expires_at = crate::util::now() + tokens.expires_in;
    session.refresh_token = tokens.refresh_token.or(Some(refresh_token));
    record::write(&path(state), &session, Access::Private)?;
    Ok(Some(SignIn::AccessToken(tokens.access_token)))
}

/// Ends the session; returns what it was.
pub fn logout(state: &StateRoot) -> Result<Option<SessionContext>> {
    let session = load(state)?;
    crate::lifecycle::registration::remove_if_exists(&path(state))?;
    Ok(session.map(|s| s.context))
}
