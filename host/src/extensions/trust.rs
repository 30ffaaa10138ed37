//! The local trust store: which public keys are trusted to sign for which
//! publisher. A key is trusted for exactly one publisher. Root-only to
//! change; the cloud can never add to it.

use crate::state::{Access, StateRoot, write_atomic};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustedKey {
    pub publisher: String,
    pub key_id: String,
    /// Base64 of the ed25519 public key.
    pub key: String,
    pub added: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustStore {
    #[serde(default)]
    pub keys: Vec<TrustedKey>,
}

fn path(state: &StateRoot) -> PathBuf {
    state.path().join("trust.toml")
}

impl TrustStore {
    pub fn load(state: &StateRoot) -> Result<Self> {
        match std::fs::read_to_string(path(state)) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!(
                    "the trust store {} is broken; fix it or remove it",
                    path(state).display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e.into()),
        }
    }

    fn save(&self, state: &StateRoot) -> Result<()> {
        write_atomic(
            &path(state),
            toml::to_string_pretty(self)?.as_bytes(),
            Access::Public,
        )
    }

    /// Trusts `key` (the keygen line or its base64) for `publisher`.
    pub fn add(state: &StateRoot, publisher: &str, key: &str) -> Result<TrustedKey> {
        let public = tether_package::parse_public_key(key).map_err(anyhow::Error::msg)?;
        if publisher.is_empty()
            || !publisher
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            bail!("`{publisher}` is not a publisher name (letters, digits, '.', '-', '_')");
        }
        let key_id = tether_package::key_id(&public);
        let mut store = Self::load(state)?;
        if let Some(existing) = store.keys.iter().find(|k| k.key_id == key_id) {
            if existing.publisher.eq_ignore_ascii_case(publisher) {
                return Ok(existing.clone());
            }
            bail!(
                "key {key_id} is already trusted for publisher {}; a key is trusted for exactly one publisher",
                existing.publisher
            );
        }
        let entry = TrustedKey {
            publisher: publisher.to_string(),
            key_id,
            key: tether_cloud_api::jwt::public_key_text(&public),
            added: crate::util::now(),
        };
        store.keys.push(entry.clone());
        store.save(state)?;
        Ok(entry)
    }

    /// Removes keys of `publisher` (all, or the one with `key_id`); returns how many.
    pub fn remove(state: &StateRoot, publisher: &str, key_id: Option<&str>) -> Result<usize> {
        let mut store = Self::load(state)?;
        let before = store.keys.len();
        store.keys.retain(|k| {
            !(k.publisher.eq_ignore_ascii_case(publisher) && key_id.is_none_or(|id| k.key_id == id))
        });
        let removed = before - store.keys.len();
        if removed == 0 {
            bail!(
                "no trusted key matches publisher {publisher}{}",
                key_id.map(|k| format!(" and key {k}")).unwrap_or_default()
            );
        }
        store.save(state)?;
        Ok(removed)
    }

    /// The keys trusted for `publisher`.
    pub fn keys_for(&self, publisher: &str) -> Vec<ed25519_dalek::VerifyingKey> {
        self.keys
            .iter()
            .filter(|k| k.publisher.eq_ignore_ascii_case(publisher))
            .filter_map(|k| tether_cloud_api::jwt::parse_public_key(&k.key))
            .collect()
    }
}
