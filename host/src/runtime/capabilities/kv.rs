//! An extension's private key-value store: a JSON file in its data
//! directory, rewritten atomically on every change, bounded in size.

use super::{Setup, Unit};
use crate::state::{Access, write_atomic};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use thiserror::Error;

pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_ENTRIES: usize = 1024;
pub const MAX_TOTAL_BYTES: usize = 1 << 20;

#[derive(Debug, Error)]
pub(crate) enum KvError {
    #[error("keys are 1 to {MAX_KEY_BYTES} bytes; this one is {0} bytes")]
    BadKey(usize),
    #[error("quota exceeded: {0}")]
    Quota(String),
    #[error("the key-value store could not be read or written: {0}")]
    Io(String),
}

impl KvError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            KvError::BadKey(_) => "invalid-argument",
            KvError::Quota(_) => "quota-exceeded",
            KvError::Io(_) => "io",
        }
    }
}

pub(crate) struct KvStore {
    path: PathBuf,
    entries: Option<BTreeMap<String, String>>,
}

impl KvStore {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            entries: None,
        }
    }

    fn entries(&mut self) -> Result<&mut BTreeMap<String, String>, KvError> {
        if self.entries.is_none() {
            let loaded = match std::fs::read(&self.path) {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                    KvError::Io(format!("{} is corrupt ({e})", self.path.display()))
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                Err(e) => return Err(KvError::Io(format!("{}: {e}", self.path.display()))),
            };
            self.entries = Some(loaded);
        }
        Ok(self.entries.get_or_insert_with(BTreeMap::new))
    }

    pub(crate) fn get(&mut self, key: &str) -> Result<Option<String>, KvError> {
        Ok(self.entries()?.get(key).cloned())
    }

    pub(crate) fn keys(&mut self) -> Result<Vec<String>, KvError> {
        Ok(self.entries()?.keys().cloned().collect())
    }

    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<(), KvError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(KvError::BadKey(key.len()));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::Quota(format!(
                "a value may be {MAX_VALUE_BYTES} bytes; this one is {} bytes",
                value.len()
            )));
        }
        let mut next = self.entries()?.clone();
        next.insert(key.to_string(), value.to_string());
        if next.len() > MAX_ENTRIES {
            return Err(KvError::Quota(format!(
                "the store holds at most {MAX_ENTRIES} keys"
            )));
        }
        let total: usize = next.iter().map(|(k, v)| k.len() + v.len()).sum();
        if total > MAX_TOTAL_BYTES {
            return Err(KvError::Quota(format!(
                "the store holds at most {MAX_TOTAL_BYTES} bytes of keys and values"
            )));
        }
        self.commit(next)
    }

    pub(crate) fn delete(&mut self, key: &str) -> Result<bool, KvError> {
        let mut next = self.entries()?.clone();
        if next.remove(key).is_none() {
            return Ok(false);
        }
        self.commit(next)?;
        Ok(true)
    }

    fn commit(&mut self, next: BTreeMap<String, String>) -> Result<(), KvError> {
        let bytes = serde_json::to_vec(&next).map_err(|e| KvError::Io(e.to_string()))?;
        write_atomic(&self.path, &bytes, Access::Private)
            .map_err(|e| KvError::Io(format!("{e:#}")))?;
        self.entries = Some(next);
        Ok(())
    }
}

/// The key-value capability in one instance: the extension's store, shared
/// by every instance of the same data directory.
pub(crate) struct KeyValue {
    store: Arc<Mutex<KvStore>>,
}

impl Unit for KeyValue {
    fn prepare(setup: &mut Setup<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            store: setup.extension.kv.clone(),
        })
    }
}

impl KeyValue {
    pub(crate) fn store(&self) -> MutexGuard<'_, KvStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_persist_and_quotas_hold() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kv.json");
        let mut kv = KvStore::new(path.clone());
        kv.set("a", "1")?;
        kv.set("b", "2")?;
        assert!(kv.delete("a")?);
        assert!(!kv.delete("a")?);
        let mut again = KvStore::new(path);
        assert_eq!(again.keys()?, ["b"]);
        assert_eq!(again.get("b")?.as_deref(), Some("2"));
        assert!(matches!(again.set("", "x"), Err(KvError::BadKey(0))));
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(matches!(again.set("big", &big), Err(KvError::Quota(_))));
        Ok(())
    }
}
