//! The detached signature.

use crate::PackageError;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Prefixed to the manifest's bytes before signing, so that a signature
/// over a manifest can never be taken for a signature over anything else.
pub const DOMAIN: &[u8] = b"tether-extension-manifest-v1\0";

/// `extension.sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub algorithm: String,
    /// The first 8 bytes of the SHA-256 of the public key, in hex.
    pub key_id: String,
    /// Base64 of the 64-byte signature.
    pub signature: String,
}

pub fn signed_message(manifest: &[u8]) -> Vec<u8> {
    [DOMAIN, manifest].concat()
}

/// Signs a manifest's exact bytes.
pub fn sign(manifest: &[u8], key: &SigningKey) -> Signature {
    let signature = key.sign(&signed_message(manifest));
    Signature {
        algorithm: "ed25519".into(),
        key_id: crate::key_id(&key.verifying_key()),
        signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
    }
}

impl Signature {
    pub fn parse(bytes: &[u8]) -> Result<Self, PackageError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| PackageError::BadSignature("it is not UTF-8".into()))?;
        toml::from_str(text).map_err(|e| PackageError::BadSignature(e.message().to_string()))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks the signature over `manifest` with `key`.
    pub fn verify(&self, manifest: &[u8], key: &VerifyingKey) -> Result<(), PackageError> {
        if self.algorithm != "ed25519" {
            return Err(PackageError::BadSignature(format!(
                "algorithm `{}` is not supported",
                self.algorithm
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|_| PackageError::BadSignature("not base64".into()))?;
        let signature = ed25519_dalek::Signature::from_slice(&bytes)
            .map_err(|_| PackageError::BadSignature("not 64 bytes".into()))?;
        key.verify(&signed_message(manifest), &signature)
            .map_err(|_| PackageError::BadSignature(format!("it does not verify with key {}: the manifest was changed after signing, or another key signed it", self.key_id)))
    }
}
