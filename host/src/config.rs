//! Operator settings: the local policy no one in the cloud can override.
//!
//! The grammar is azcmagent's (`tether config list|get|set|clear|info`,
//! dotted keys like `extensions.allowlist`), so operators' scripts carry
//! over. Settings live in `$TETHER_HOME/settings.toml`, written atomically
//! under a lock so that concurrent commands serialize and no change is lost.
//! Every value is validated before anything is written; a hand-broken file
//! is reported with where it is broken, and never overwritten.

mod properties;
mod store;

pub use properties::{Edit, Mode, PROPERTIES, Property, ProxyService, Settings, find};
pub use store::{ConfigError, SettingsStore, Watch};
