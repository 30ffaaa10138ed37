//! The extension's private key-value store.
//!
//! Values are stored as JSON, persisted by the host under the extension's
//! own data directory, kept across restarts and updates, and removed when
//! the extension is uninstalled. The host limits the number and size of
//! entries; [`set`] fails with `quota-exceeded` past them.

use crate::Error;
use crate::bindings::tether::extension::host;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads a value; `None` when the key is absent.
///
/// ```no_run
/// let runs: u64 = tether_sdk::kv::get("runs")?.unwrap_or(0);
/// # Ok::<(), tether_sdk::Error>(())
/// ```
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    match host::kv_get(key) {
        None => Ok(None),
        Some(text) => Ok(Some(serde_json::from_str(&text)?)),
    }
}

/// Writes a value.
///
/// ```no_run
/// tether_sdk::kv::set("runs", &3u64)?;
/// # Ok::<(), tether_sdk::Error>(())
/// ```
pub fn set<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
    let text = serde_json::to_string(value)?;
    host::kv_set(key, &text).map_err(Error::from)
}

/// Removes a key; returns whether it existed.
///
/// ```no_run
/// let existed = tether_sdk::kv::delete("runs")?;
/// # Ok::<(), tether_sdk::Error>(())
/// ```
pub fn delete(key: &str) -> Result<bool, Error> {
    host::kv_delete(key).map_err(Error::from)
}

/// All keys, sorted.
///
/// ```no_run
/// for key in tether_sdk::kv::keys() {
///     tether_sdk::debug!("key {key}");
/// }
/// ```
pub fn keys() -> Vec<String> {
    host::kv_list()
}
