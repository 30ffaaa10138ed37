//! Entra ID (OAuth 2.0 v2.0 endpoint) shapes.

use serde::{Deserialize, Serialize};

/// The `client_assertion_type` for a JWT client assertion.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The `grant_type` for polling a device code.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A successful token response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_expires_in: Option<u64>,
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// For a user's sign-in with `openid`/`profile`: who signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Base64url of `{"uid", "utid"}`, MSAL's account key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<String>,
}

/// The response of `/devicecode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceCodeResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub expires_in: u64,
    pub interval: u64,
    pub message: String,
}

/// An error from the token or device-code endpoints, in Entra's shape:
/// `invalid_client`, `invalid_grant`, `authorization_pending`, `slow_down`,
/// `expired_token`, `access_denied`, `invalid_request`,
/// `unsupported_grant_type`, `invalid_scope`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthError {
    pub error: String,
    pub error_description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// A JSON Web Key Set, as `/discovery/v2.0/keys` publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// A signing key as Entra publishes it: `kty` `RSA` with `n` and `e`,
/// `kid` (the certificate's `x5t`), `x5t` and the certificate in `x5c`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(rename = "use")]
    pub usage: String,
    pub kid: String,
    pub x5t: String,
    pub n: String,
    pub e: String,
    /// Standard base64 of the DER certificate.
    pub x5c: Vec<String>,
    pub issuer: String,
}
