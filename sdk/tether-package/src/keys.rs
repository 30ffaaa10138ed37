//! Publisher keys: private keys in PKCS#8 PEM files, public keys as one line
//! operators hand around: `tether-ed25519 <base64> <publisher>`.

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::Digest;

pub type PublicKey = VerifyingKey;

/// The first 8 bytes of the SHA-256 of the public key, in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&sha2::Sha256::digest(key.as_bytes())[..8])
}

/// The line `tether-ext keygen` prints for operators.
pub fn public_key_line(key: &VerifyingKey, publisher: &str) -> String {
    format!(
        "tether-ed25519 {} {publisher}",
        base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
    )
}

/// Reads a public key given as the keygen line or as its base64 alone.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let b64 = match words.as_slice() {
        ["tether-ed25519", key, ..] => *key,
        [key] => *key,
        _ => return Err("a public key is the line `tether-ext keygen` printed (tether-ed25519 BASE64 PUBLISHER) or its BASE64 part".into()),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the public key is not base64".to_string())?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an ed25519 public key is 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid ed25519 public key".to_string())
}

pub fn read_private_key(pem: &str) -> Result<SigningKey, String> {
    SigningKey::from_pkcs8_pem(pem).map_err(|_| {
        "not an ed25519 private key in PKCS#8 PEM (as tether-ext keygen writes)".to_string()
    })
}

pub fn write_private_key(key: &SigningKey) -> Result<String, String> {
    key.to_pkcs8_pem(Default::default())
        .map(|p| p.to_string())
        .map_err(|e| e.to_string())
}
