//! The machine's identity key: generated on the machine, private half
//! root-only and never sent; the public half goes on the ARM resource.

use crate::state::{Access, StateRoot, write_atomic};
use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use std::path::PathBuf;

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

fn write(path: &std::path::Path, key: &SigningKey) -> Result<()> {
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| anyhow::anyhow!("could not encode the machine key: {e}"))?;
    write_atomic(path, pem.as_bytes(), Access::Private)
}

fn read(path: &std::path::Path) -> Result<Option<SigningKey>> {
    match std::fs::read_to_string(path) {
        Ok(pem) => Ok(Some(SigningKey::from_pkcs8_pem(&pem).map_err(|_| {
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

pub fn generate() -> SigningKey {
    SigningKey::from_bytes(&crate::util::random_bytes::<32>())
}

/// `tether genkey`: makes (or keeps) the pending key and returns its public
/// half as ARM's `clientPublicKey` carries it.
pub fn genkey(state: &StateRoot) -> Result<String> {
    let path = pending_path(state);
    let key = match read(&path)? {
        Some(key) => key,
        None => {
            let key = generate();
            write(&path, &key)?;
            key
        }
    };
    Ok(tether_cloud_api::jwt::public_key_text(&key.verifying_key()))
}

/// The key connect uses: the pending one from genkey, or a new one.
pub fn for_connect(state: &StateRoot) -> Result<SigningKey> {
    Ok(read(&pending_path(state))?.unwrap_or_else(generate))
}

/// Makes `key` the active machine key and drops the pending one.
pub fn activate(state: &StateRoot, key: &SigningKey) -> Result<()> {
    write(&active_path(state), key)?;
    super::registration::remove_if_exists(&pending_path(state))
}

pub fn load_active(state: &StateRoot) -> Result<SigningKey> {
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
