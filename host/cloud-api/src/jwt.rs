//! Compact JWTs signed with Ed25519 (`EdDSA`): the tokens tether-cloud
//! issues, and the client assertions a machine or a service principal
//! signs with its private key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha1::Digest as _;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm `{0}` is not supported (only EdDSA)")]
    Algorithm(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's `{0}` claim is missing or wrong")]
    Claim(&'static str),
}

/// The JOSE header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub typ: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Base64url SHA-1 thumbprint of the signing certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t: Option<String>,
}

impl Header {
    pub fn eddsa() -> Self {
        Self {
            alg: "EdDSA".into(),
            typ: "JWT".into(),
            kid: None,
            x5t: None,
        }
    }
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JwtError::Malformed)
}

/// The `x5t` thumbprint of a DER certificate.
pub fn thumbprint(cert_der: &[u8]) -> String {
    b64url(&sha1::Sha1::digest(cert_der))
}

/// Signs `claims` with `key`.
pub fn sign(header: &Header, claims: &Value, key: &SigningKey) -> String {
    // Serializing a header struct and a JSON value cannot fail.
    let header = b64url(&serde_json::to_vec(header).unwrap_or_default());
    let claims = b64url(&serde_json::to_vec(claims).unwrap_or_default());
    let input = format!("{header}.{claims}");
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64url(&signature.to_bytes()))
}

/// A token split into its parts, not yet verified.
#[derive(Debug, Clone)]
pub struct Unverified {
    pub header: Header,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Unverified {
    pub fn parse(token: &str) -> Result<Self, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Header =
            serde_json::from_slice(&b64url_decode(h)?).map_err(|_| JwtError::Malformed)?;
        let claims: Value =
            serde_json::from_slice(&b64url_decode(c)?).map_err(|_| JwtError::Malformed)?;
        if !claims.is_object() {
            return Err(JwtError::Malformed);
        }
        Ok(Self {
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature: b64url_decode(s)?,
        })
    }

    /// Checks the signature with `key`, then `exp` and `nbf` against `now`
    /// (seconds since the epoch), with a minute of leeway.
    pub fn verify(self, key: &VerifyingKey, now: u64) -> Result<Value, JwtError> {
        if self.header.alg != "EdDSA" {
            return Err(JwtError::Algorithm(self.header.alg));
        }
        let signature =
            Signature::from_slice(&self.signature).map_err(|_| JwtError::BadSignature)?;
        key.verify(self.signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::BadSignature)?;
        let exp = self
            .claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(JwtError::Claim("exp"))?;
        // Claims are the sender's: saturate, never overflow.
        if now > exp.saturating_add(60) {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = self.claims.get("nbf").and_then(Value::as_u64)
            && nbf > now.saturating_add(60)
        {
            return Err(JwtError::NotYetValid);
        }
        Ok(self.claims)
    }
}

/// A client assertion (RFC 7523) for the token endpoint `audience`,
/// valid for ten minutes from `now`.
pub fn client_assertion(
    client_id: &str,
    audience: &str,
    key: &SigningKey,
    x5t: Option<String>,
    now: u64,
    jti: &str,
) -> String {
    let header = Header {
        x5t,
        ..Header::eddsa()
    };
    let claims = serde_json::json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": jti,
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    });
    sign(&header, &claims, key)
}

/// The public half of a machine key as ARM's `clientPublicKey` carries it.
pub fn public_key_text(key: &VerifyingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.to_bytes())
}

/// Reads a `clientPublicKey`.
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_at_the_end_of_time_do_not_overflow() -> Result<(), JwtError> {
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let token = sign(
            &Header::eddsa(),
            &serde_json::json!({"iss": "c", "exp": u64::MAX}),
            &key,
        );
        let claims = Unverified::parse(&token)?.verify(&key.verifying_key(), u64::MAX)?;
        assert_eq!(claims["exp"], u64::MAX);
        let early = sign(
            &Header::eddsa(),
            &serde_json::json!({"iss": "c", "exp": u64::MAX, "nbf": u64::MAX}),
            &key,
        );
        assert_eq!(
            Unverified::parse(&early)?
                .verify(&key.verifying_key(), u64::MAX - 1)
                .err(),
            None
        );
        assert_eq!(
            Unverified::parse(&early)?
                .verify(&key.verifying_key(), 0)
                .err(),
            Some(JwtError::NotYetValid)
        );
        Ok(())
    }

    #[test]
    fn sign_and_verify_round_trip_and_tampering_fails() -> Result<(), JwtError> {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let token = client_assertion("c1", "http://x/t/oauth2/v2.0/token", &key, None, 1000, "j1");
        let claims = Unverified::parse(&token)?.verify(&key.verifying_key(), 1000)?;
        assert_eq!(claims["iss"], "c1");

        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert_eq!(
            Unverified::parse(&token)?
                .verify(&other.verifying_key(), 1000)
                .err(),
            Some(JwtError::BadSignature)
        );
        assert_eq!(
            Unverified::parse(&token)?
                .verify(&key.verifying_key(), 1000 + 600 + 61)
                .err(),
            Some(JwtError::Expired)
        );
        let mut forged: Vec<&str> = token.split('.').collect();
        let evil = b64url(br#"{"iss":"admin","exp":99999999999}"#);
        forged[1] = &evil;
        assert_eq!(
            Unverified::parse(&forged.join("."))?
                .verify(&key.verifying_key(), 1000)
                .err(),
            Some(JwtError::BadSignature)
        );
        assert_eq!(Unverified::parse("a.b").err(), Some(JwtError::Malformed));
        Ok(())
    }

    #[test]
    fn public_keys_round_trip() {
        let key = SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        assert_eq!(parse_public_key(&public_key_text(&key)), Some(key));
        assert_eq!(parse_public_key("bm90IGEga2V5"), None);
    }
}
