use crate::bindings::tether::extension::host;

pub use crate::bindings::tether::extension::types::Level;

/// Writes one line to the host's log. Prefer the macros ([`crate::info!`]
/// and friends), which format for you.
///
/// ```no_run
/// tether_sdk::log(tether_sdk::Level::Info, "started");
/// ```
pub fn log(level: Level, message: &str) {
    host::log(level, message)
}

/// Logs at `info` level, formatting like `format!`.
///
/// ```no_run
/// tether_sdk::info!("collected {} items", 3);
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log($crate::Level::Info, &::std::format!($($arg)*)) };
}

/// Logs at `warn` level, formatting like `format!`.
///
/// ```no_run
/// tether_sdk::warn!("setting {} is deprecated", "interval");
/// ```
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log($crate::Level::Warn, &::std::format!($($arg)*)) };
}

/// Logs at `error` level, formatting like `format!`.
///
/// ```no_run
/// tether_sdk::error!("could not reach {}", "the gateway");
/// ```
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log($crate::Level::Error, &::std::format!($($arg)*)) };
}

/// Logs at `debug` level, formatting like `format!`.
///
/// ```no_run
/// tether_sdk::debug!("state: {:?}", [1, 2]);
/// ```
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log($crate::Level::Debug, &::std::format!($($arg)*)) };
}

/// Logs at `trace` level, formatting like `format!`.
///
/// ```no_run
/// tether_sdk::trace!("entering {}", "collect");
/// ```
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::log($crate::Level::Trace, &::std::format!($($arg)*)) };
}
