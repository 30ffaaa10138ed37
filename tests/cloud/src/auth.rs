//! Who is calling: admin key, ARM bearer tokens with role-based access,
//! and machine tokens for the agent service.

use crate::Cloud;
use crate::errors::ArmError;
use crate::model::Role;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tether_cloud_api::jwt::Unverified;

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Checks the admin API's credential.
pub fn admin(cloud: &Cloud, headers: &HeaderMap) -> Result<(), ArmError> {
    let expected = cloud.read(|m| m.meta.admin_key.clone());
    match bearer(headers) {
        Some(given) if crate::util::same(given, &expected) => Ok(()),
        _ => Err(ArmError::new(
            StatusCode::UNAUTHORIZED,
            "AdminAuthenticationFailed",
            "the admin API needs `Authorization: Bearer <admin key>`; tether-cloud printed the key when it started",
        )),
    }
}

/// Verifies a token this cloud issued for `audience`; returns its claims.
pub fn verify_token(cloud: &Cloud, headers: &HeaderMap, audience: &str) -> Result<Value, ArmError> {
    let unauthenticated =
        |message: String| ArmError::new(StatusCode::UNAUTHORIZED, "AuthenticationFailed", message);
    let token = bearer(headers).ok_or_else(|| {
        unauthenticated("Authentication failed. The 'Authorization' header is missing.".into())
    })?;
    let claims = cloud
        .verified
        .verify(token, cloud.now(), |now| {
            Unverified::parse(token).and_then(|t| t.verify(&cloud.key.signer.public_key(), now))
        })
        .map_err(|e| {
            if e == tether_cloud_api::jwt::JwtError::Expired {
                ArmError::new(
                    StatusCode::UNAUTHORIZED,
                    "ExpiredAuthenticationToken",
                    "The access token expiry UTC time is earlier than current UTC time.",
                )
            } else {
                unauthenticated(format!("Authentication failed: {e}."))
            }
        })?;
    if claims.get("aud").and_then(Value::as_str) != Some(audience) {
        return Err(ArmError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource; expected '{audience}'."
            ),
        ));
    }
    Ok(claims)
}

/// What an ARM caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    WriteMachine,
    DeleteMachine,
    ManageExtensions,
    RunCommands,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Read => "Microsoft.HybridCompute/machines/read",
            Action::WriteMachine => "Microsoft.HybridCompute/machines/write",
            Action::DeleteMachine => "Microsoft.HybridCompute/machines/delete",
            Action::ManageExtensions => "Microsoft.HybridCompute/machines/extensions/write",
            Action::RunCommands => "Microsoft.HybridCompute/machines/runCommands/write",
        }
    }

    fn allowed_for(self, role: Role) -> bool {
        match role {
            Role::Administrator => true,
            Role::Onboarding => matches!(self, Action::Read | Action::WriteMachine),
            Role::Reader => self == Action::Read,
        }
    }
}

/// Authenticates an ARM request and checks `action` at `scope` (a
/// subscription or resource-group id).
pub fn arm(
    cloud: &Cloud,
    headers: &HeaderMap,
    scope: &str,
    action: Action,
) -> Result<(), ArmError> {
    let claims = verify_token(cloud, headers, &cloud.arm_audience())?;
    let object_id = claims
        .get("oid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let scope = scope.to_ascii_lowercase();
    let allowed = cloud.read(|m| {
        m.role_assignments.values().any(|a| {
            a.principal_id == object_id
                && action.allowed_for(a.role)
                && (scope == a.scope.to_ascii_lowercase()
                    || scope.starts_with(&format!("{}/", a.scope.to_ascii_lowercase())))
        })
    });
    if !allowed {
        return Err(ArmError::new(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            format!(
                "The client with object id '{object_id}' does not have authorization to perform action '{}' over scope '{scope}' or the scope is invalid.",
                action.name()
            ),
        ));
    }
    Ok(())
}
