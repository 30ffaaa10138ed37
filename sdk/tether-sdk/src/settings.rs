//! Typed access to the extension's settings.
//!
//! Settings are the JSON object an operator or the control plane gives the
//! extension; protected settings are the same for secrets, which the host
//! never logs nor persists in plain text. The host hands over one top-level
//! key at a time, as JSON text.

use crate::Error;
use crate::bindings::tether::extension::host;
use serde::de::DeserializeOwned;

/// A public setting, deserialized; `None` when it is not set.
///
/// ```no_run
/// let interval: u64 = tether_sdk::settings::get("interval")?.unwrap_or(60);
/// # Ok::<(), tether_sdk::Error>(())
/// ```
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    parse(key, host::setting(key))
}

/// A protected setting, deserialized; `None` when it is not set.
///
/// ```no_run
/// let token: Option<String> = tether_sdk::settings::protected("apiToken")?;
/// # Ok::<(), tether_sdk::Error>(())
/// ```
pub fn protected<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    // The value is secret: the error names the key, never the value.
    match host::protected_setting(key) {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|_| {
            Error::new(
                "invalid-setting",
                format!("protected setting `{key}` does not have the expected type"),
            )
        }),
    }
}

/// A public setting as raw JSON text, for settings whose type varies.
///
/// ```no_run
/// if let Some(raw) = tether_sdk::settings::raw("filters") {
///     tether_sdk::info!("filters: {raw}");
/// }
/// ```
pub fn raw(key: &str) -> Option<String> {
    host::setting(key)
}

fn parse<T: DeserializeOwned>(key: &str, text: Option<String>) -> Result<Option<T>, Error> {
    match text {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::new(
                "invalid-setting",
                format!("setting `{key}` does not have the expected type: {e}"),
            )
        }),
    }
}
