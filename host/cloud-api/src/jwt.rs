//! Compact JWTs: the tokens tether-cloud issues and the client assertions
//! a machine or a service principal signs with its private key. RSA as
//! Entra has it (`RS256` signed; `RS256` and `PS256` verified), and Ed25519
//! (`EdDSA`) beside it. A key verifies only its own family's algorithms, so
//! a token cannot pick the algorithm its key is checked with.

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
    #[error(
        "the token's algorithm `{0}` does not fit its key (RSA keys: RS256, PS256; Ed25519 keys: EdDSA)"
    )]
    Algorithm(String),
    #[error("the key is not a usable RSA key (2048 bits or more, PKCS#1 or PKCS#8)")]
    BadKey,
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
    /// Base64url SHA-256 thumbprint of the signing certificate.
    #[serde(default, rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

impl Header {
    pub fn eddsa() -> Self {
        Self {
            alg: "EdDSA".into(),
            typ: "JWT".into(),
            kid: None,
            x5t: None,
            x5t_s256: None,
        }
    }
}

/// What signs a token: the algorithm goes into the header.
pub trait JwsSigner {
    fn alg(&self) -> &'static str;
    fn sign_bytes(&self, input: &[u8]) -> Vec<u8>;
}

impl JwsSigner for SigningKey {
    fn alg(&self) -> &'static str {
        "EdDSA"
    }
    fn sign_bytes(&self, input: &[u8]) -> Vec<u8> {
        self.sign(input).to_bytes().to_vec()
    }
}

/// An RSA private key signing `RS256`.
#[derive(Debug)]
pub struct RsaSigner(ring::signature::RsaKeyPair);

impl RsaSigner {
    /// From a PKCS#8 `PrivateKeyInfo` (`BEGIN PRIVATE KEY`).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, JwtError> {
        ring::signature::RsaKeyPair::from_pkcs8(der)
            .map(Self)
            .map_err(|_| JwtError::BadKey)
    }

    /// From a PKCS#1 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pkcs1(der: &[u8]) -> Result<Self, JwtError> {
        ring::signature::RsaKeyPair::from_der(der)
            .map(Self)
            .map_err(|_| JwtError::BadKey)
    }

    /// The public half as PKCS#1 `RSAPublicKey` DER.
    pub fn public_key(&self) -> RsaPublicKey {
        use ring::signature::KeyPair as _;
        RsaPublicKey(self.0.public_key().as_ref().to_vec())
    }

    /// The modulus and exponent, big-endian, as a JWK's `n` and `e`.
    pub fn components(&self) -> (Vec<u8>, Vec<u8>) {
        let c: ring::rsa::PublicKeyComponents<Vec<u8>> = self.0.public().into();
        (c.n, c.e)
    }
}

impl JwsSigner for RsaSigner {
    fn alg(&self) -> &'static str {
        "RS256"
    }
    fn sign_bytes(&self, input: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.0.public().modulus_len()];
        // Fails only for a buffer of the wrong length, which this is not.
        let _ = self.0.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            input,
            &mut signature,
        );
        signature
    }
}

/// What checks a token's signature, for the algorithms of its family.
pub trait JwsVerifier {
    fn verify_signature(&self, alg: &str, input: &[u8], signature: &[u8]) -> Result<(), JwtError>;
}

impl JwsVerifier for VerifyingKey {
    fn verify_signature(&self, alg: &str, input: &[u8], signature: &[u8]) -> Result<(), JwtError> {
        if alg != "EdDSA" {
            return Err(JwtError::Algorithm(alg.into()));
        }
        let signature = Signature::from_slice(signature).map_err(|_| JwtError::BadSignature)?;
        self.verify(input, &signature)
            .map_err(|_| JwtError::BadSignature)
    }
}

/// An RSA public key, as PKCS#1 `RSAPublicKey` DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey(pub Vec<u8>);

impl RsaPublicKey {
    /// From a `SubjectPublicKeyInfo` (a certificate's, or `BEGIN PUBLIC
    /// KEY`) or a bare PKCS#1 key.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let pkcs1 = spki_rsa_key(der).unwrap_or(der);
        is_rsa_public_key(pkcs1).then(|| Self(pkcs1.to_vec()))
    }
}

impl RsaPublicKey {
    /// As a `SubjectPublicKeyInfo` (`BEGIN PUBLIC KEY`), the form
    /// azcmagent registers as `clientPublicKey`.
    pub fn to_spki_der(&self) -> Vec<u8> {
        fn element(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            let len = content.len();
            if len < 0x80 {
                out.push(len as u8);
            } else {
                let bytes: Vec<u8> = len
                    .to_be_bytes()
                    .into_iter()
                    .skip_while(|b| *b == 0)
                    .collect();
                out.push(0x80 | bytes.len() as u8);
                out.extend(bytes);
            }
            out.extend_from_slice(content);
            out
        }
        let algorithm = [
            element(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            element(0x05, &[]),
        ]
        .concat();
        let mut bits = vec![0u8];
        bits.extend_from_slice(&self.0);
        element(
            0x30,
            &[element(0x30, &algorithm), element(0x03, &bits)].concat(),
        )
    }
}

impl JwsVerifier for RsaPublicKey {
    fn verify_signature(&self, alg: &str, input: &[u8], signature: &[u8]) -> Result<(), JwtError> {
        let params: &dyn ring::signature::VerificationAlgorithm = match alg {
            "RS256" => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            "PS256" => &ring::signature::RSA_PSS_2048_8192_SHA256,
            other => return Err(JwtError::Algorithm(other.into())),
        };
        ring::signature::UnparsedPublicKey::new(params, &self.0)
            .verify(input, signature)
            .map_err(|_| JwtError::BadSignature)
    }
}

/// A registered public key of either family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519(VerifyingKey),
    Rsa(RsaPublicKey),
}

impl JwsVerifier for PublicKey {
    fn verify_signature(&self, alg: &str, input: &[u8], signature: &[u8]) -> Result<(), JwtError> {
        match self {
            PublicKey::Ed25519(key) => key.verify_signature(alg, input, signature),
            PublicKey::Rsa(key) => key.verify_signature(alg, input, signature),
        }
    }
}

/// The DER length at `der[1..]`: (length, bytes it took).
fn der_length(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.first()?;
    if first < 0x80 {
        return Some((usize::from(first), 1));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 || der.len() < 1 + count {
        return None;
    }
    let length = der[1..=count]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((length, 1 + count))
}

/// One DER element at the start of `der`: (tag, content, rest).
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *der.first()?;
    let (length, taken) = der_length(&der[1..])?;
    let start = 1 + taken;
    let end = start.checked_add(length)?;
    (end <= der.len()).then(|| (tag, &der[start..end], &der[end..]))
}

/// Whether `der` is a PKCS#1 `RSAPublicKey` (a modulus and an exponent)
/// of at least 2048 bits, the least Entra and ring accept.
fn is_rsa_public_key(der: &[u8]) -> bool {
    let Some((0x30, key, [])) = der_element(der) else {
        return false;
    };
    let Some((0x02, modulus, rest)) = der_element(key) else {
        return false;
    };
    let bits = modulus
        .iter()
        .skip_while(|b| **b == 0)
        .count()
        .saturating_mul(8);
    matches!(der_element(rest), Some((0x02, _, []))) && bits >= 2048
}

/// The PKCS#1 key inside an RSA `SubjectPublicKeyInfo`.
fn spki_rsa_key(der: &[u8]) -> Option<&[u8]> {
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (0x30, info, []) = der_element(der)? else {
        return None;
    };
    let (0x30, algorithm, rest) = der_element(info)? else {
        return None;
    };
    let (0x06, oid, _) = der_element(algorithm)? else {
        return None;
    };
    if oid != RSA_ENCRYPTION {
        return None;
    }
    let (0x03, bits, []) = der_element(rest)? else {
        return None;
    };
    match bits.split_first() {
        Some((0, key)) => Some(key),
        _ => None,
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

/// The `x5t#S256` thumbprint of a DER certificate.
pub fn thumbprint_s256(cert_der: &[u8]) -> String {
    b64url(&sha2::Sha256::digest(cert_der))
}

/// Signs `claims` with `key`; the header's `alg` is the key's.
pub fn sign(header: &Header, claims: &Value, key: &(impl JwsSigner + ?Sized)) -> String {
    let header = Header {
        alg: key.alg().into(),
        ..header.clone()
    };
    // Serializing a header struct and a JSON value cannot fail.
    let header = b64url(&serde_json::to_vec(&header).unwrap_or_default());
    let claims = b64url(&serde_json::to_vec(claims).unwrap_or_default());
    let input = format!("{header}.{claims}");
    let signature = key.sign_bytes(input.as_bytes());
    format!("{input}.{}", b64url(&signature))
}

/// A NumericDate claim in whole seconds: JSON integers, and the fractional
/// seconds some clients send (MSAL for Python signs `time.time()`).
fn numeric_date(claims: &Value, name: &str) -> Option<u64> {
    let value = claims.get(name)?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            // Saturates at u64::MAX, as the checks below expect.
            .map(|f| f as u64)
    })
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
    pub fn verify(self, key: &impl JwsVerifier, now: u64) -> Result<Value, JwtError> {
        key.verify_signature(
            &self.header.alg,
            self.signing_input.as_bytes(),
            &self.signature,
        )?;
        let exp = numeric_date(&self.claims, "exp").ok_or(JwtError::Claim("exp"))?;
        // Claims are the sender's: saturate, never overflow.
        if now > exp.saturating_add(60) {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = numeric_date(&self.claims, "nbf")
            && nbf > now.saturating_add(60)
        {
            return Err(JwtError::NotYetValid);
        }
        Ok(self.claims)
    }
}

/// A client assertion (RFC 7523) for the token endpoint `audience`,
/// valid for ten minutes from `now`, naming the signing certificate by its
/// thumbprints when there is one (`cert_der`).
pub fn client_assertion(
    client_id: &str,
    audience: &str,
    key: &(impl JwsSigner + ?Sized),
    cert_der: Option<&[u8]>,
    now: u64,
    jti: &str,
) -> String {
    let header = Header {
        x5t: cert_der.map(thumbprint),
        x5t_s256: cert_der.map(thumbprint_s256),
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

/// Reads a `clientPublicKey` as azcmagent registers it (base64 of an RSA
/// `SubjectPublicKeyInfo` or PKCS#1 key) or as Tether's Ed25519 machine keys
/// are (base64 of the 32 bytes).
pub fn parse_client_public_key(text: &str) -> Option<PublicKey> {
    if let Some(key) = parse_public_key(text) {
        return Some(PublicKey::Ed25519(key));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    RsaPublicKey::from_der(&der).map(PublicKey::Rsa)
}

/// Reads an Ed25519 `clientPublicKey`.
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
    fn rsa_public_keys_round_trip_through_spki() {
        // A 2048-bit modulus (any odd number of that size parses) and e.
        let mut modulus = vec![0x00, 0xc1];
        modulus.extend(std::iter::repeat_n(0x5a, 255));
        let mut pkcs1_content = vec![0x02, 0x82, 0x01, 0x01];
        pkcs1_content.extend(&modulus);
        pkcs1_content.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
        let mut pkcs1 = vec![0x30, 0x82];
        pkcs1.extend((pkcs1_content.len() as u16).to_be_bytes());
        pkcs1.extend(&pkcs1_content);
        let key = RsaPublicKey::from_der(&pkcs1).expect("a PKCS#1 key parses");
        let spki = key.to_spki_der();
        assert_eq!(RsaPublicKey::from_der(&spki), Some(key.clone()));
        let text = base64::engine::general_purpose::STANDARD.encode(&spki);
        assert_eq!(parse_client_public_key(&text), Some(PublicKey::Rsa(key)));
        // Too short a modulus is no RSA key of Entra's.
        assert_eq!(
            RsaPublicKey::from_der(&[0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03]),
            None
        );
    }

    #[test]
    fn public_keys_round_trip() {
        let key = SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        assert_eq!(parse_public_key(&public_key_text(&key)), Some(key));
        assert_eq!(parse_public_key("bm90IGEga2V5"), None);
    }
}
