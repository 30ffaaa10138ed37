//! The machine's identity key: generated on the machine, private half
//! root-only and never sent; the public half goes on the ARM resource as
//! `clientPublicKey`. New keys are RSA, what azcmagent registers (base64
//! of the `SubjectPublicKeyInfo`); Ed25519 keys of machines connected
//! before keep working.

use crate::state::{Access, StateRoot, write_atomic};
use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use std::path::PathBuf;
use tether_cloud_api::jwt::{JwsSigner, RsaSigner};

/// The machine's private key, of either family; it signs the client
/// assertions of the machine identity.
pub enum MachineKey {
    Rsa { signer: RsaSigner, pkcs8: Vec<u8> },
    Ed25519(SigningKey),
}

impl JwsSigner for MachineKey {
    fn alg(&self) -> &'static str {
        match self {
            MachineKey::Rsa { signer, .. } => signer.alg(),
            MachineKey::Ed25519(key) => key.alg(),
        }
    }
    fn sign_bytes(&self, input: &[u8]) -> Vec<u8> {
        match self {
            MachineKey::Rsa { signer, .. } => signer.sign_bytes(input),
            MachineKey::Ed25519(key) => key.sign_bytes(input),
        }
    }
}

impl MachineKey {
    /// The public half as ARM's `clientPublicKey` carries it.
    pub fn client_public_key(&self) -> String {
        use base64::Engine as _;
        match self {
            MachineKey::Rsa { signer, .. } => {
                base64::engine::general_purpose::STANDARD.encode(signer.public_key().to_spki_der())
            }
            MachineKey::Ed25519(key) => {
                tether_cloud_api::jwt::public_key_text(&key.verifying_key())
            }
        }
    }

    fn to_pem(&self) -> Result<String> {
        match self {
            MachineKey::Rsa { pkcs8, .. } => {
                Ok(tether_cloud_api::pem::encode("PRIVATE KEY", pkcs8))
            }
            MachineKey::Ed25519(key) => {
                use ed25519_dalek::pkcs8::EncodePrivateKey;
                Ok(key
                    .to_pkcs8_pem(Default::default())
                    .map_err(|e| anyhow::anyhow!("could not encode the machine key: {e}"))?
                    .to_string())
            }
        }
    }

    fn from_pem(text: &str) -> Option<Self> {
        if let Ok(key) = SigningKey::from_pkcs8_pem(text) {
            return Some(MachineKey::Ed25519(key));
        }
        use base64::Engine as _;
        let body: String = text
            .lines()
            .skip_while(|l| l.trim() != "-----BEGIN PRIVATE KEY-----")
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let pkcs8 = base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?;
        let signer = RsaSigner::from_pkcs8(&pkcs8).ok()?;
        Some(MachineKey::Rsa { signer, pkcs8 })
    }
}

fn dir(state: &StateRoot) -> PathBuf {
    state.path().join("identity")
}

/// The key of the connected machine.
pub fn active_path(state: &StateRoot) -> PathBuf {
    dir(state).join("machine.key")
}

/// A key made by `tether genkey` for pre-provisioned onboarding.
pub fn pending_path(state: &StateRoot) -> PathBuf {
    dir(state).join("pending.key")
}

fn write(path: &std::path::Path, key: &MachineKey) -> Result<()> {
    write_atomic(path, key.to_pem()?.as_bytes(), Access::Private)
}

fn read(path: &std::path::Path) -> Result<Option<MachineKey>> {
    match std::fs::read_to_string(path) {
        Ok(pem) => Ok(Some(MachineKey::from_pem(&pem).ok_or_else(|| {
            anyhow::anyhow!("{} is not a machine key", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(anyhow::anyhow!(
            "cannot read the machine key {}: run as root",
            path.display()
        )),
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

/// A new RSA key of 2048 bits. The `rsa` crate makes it (ring cannot);
/// only ring, constant-time, ever signs with it.
pub fn generate() -> Result<MachineKey> {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
        .context("could not generate the machine key")?;
    let pkcs8 = key
        .to_pkcs8_der()
        .context("could not encode the machine key")?
        .as_bytes()
        .to_vec();
    let signer = RsaSigner::from_pkcs8(&pkcs8)
        .map_err(|e| anyhow::anyhow!("the new machine key is unusable: {e}"))?;
    Ok(MachineKey::Rsa { signer, pkcs8 })
}

/// `tether genkey`: makes (or keeps) the pending key and returns its public
/// half as ARM's `clientPublicKey` carries it.
pub fn genkey(state: &StateRoot) -> Result<String> {
    let path = pending_path(state);
    let key = match read(&path)? {
        Some(key) => key,
        None => {
            let key = generate()?;
            write(&path, &key)?;
            key
        }
    };
    Ok(key.client_public_key())
}

/// The key connect uses: the pending one from genkey, or a new one.
pub fn for_connect(state: &StateRoot) -> Result<MachineKey> {
    match read(&pending_path(state))? {
        Some(key) => Ok(key),
        None => generate(),
    }
}

/// Makes `key` the active machine key and drops the pending one.
pub fn activate(state: &StateRoot, key: &MachineKey) -> Result<()> {
    write(&active_path(state), key)?;
    super::registration::remove_if_exists(&pending_path(state))
}

pub fn load_active(state: &StateRoot) -> Result<MachineKey> {
    read(&active_path(state))?.with_context(|| {
        format!(
            "the machine key {} is missing; the machine must connect again",
            active_path(state).display()
        )
    })
}

pub fn remove_active(state: &StateRoot) -> Result<()> {
    super::registration::remove_if_exists(&active_path(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_both_families_survive_their_file_and_sign() -> Result<()> {
        let rsa = generate()?;
        let again = MachineKey::from_pem(&rsa.to_pem()?).context("RSA key read back")?;
        assert_eq!(again.client_public_key(), rsa.client_public_key());
        assert_eq!(again.alg(), "RS256");
        // A machine connected with an Ed25519 key before keeps it.
        let ed = MachineKey::Ed25519(SigningKey::from_bytes(&[3u8; 32]));
        let again = MachineKey::from_pem(&ed.to_pem()?).context("Ed25519 key read back")?;
        assert_eq!(again.alg(), "EdDSA");
        assert_eq!(again.client_public_key(), ed.client_public_key());
        for key in [&rsa, &ed] {
            let public = tether_cloud_api::jwt::parse_client_public_key(&key.client_public_key())
                .context("the cloud reads the public half")?;
            let token = tether_cloud_api::jwt::sign(
                &tether_cloud_api::jwt::Header::eddsa(),
                &serde_json::json!({"exp": 10}),
                key,
            );
            tether_cloud_api::jwt::Unverified::parse(&token)?.verify(&public, 0)?;
        }
        assert!(
            MachineKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_none()
        );
        Ok(())
    }
}
