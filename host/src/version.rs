//! What this build is: Tether's version, commit, wasmtime and contract.

use serde::Serialize;

/// Tether's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The newest version of the `tether:extension` contract this host
/// implements (a unit test holds it to `wit/extension.wit`'s package).
pub const CONTRACT_VERSION: &str = "0.2.0";

/// The wasmtime release the runtime is built on (kept in step with
/// host/Cargo.toml; a test checks the two agree).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// A description of this build, as `tether version` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub version: &'static str,
    pub commit: &'static str,
    pub wasmtime: &'static str,
    pub contract: &'static str,
    /// Every contract version extensions may be built against, newest first.
    pub contracts: &'static [&'static str],
    /// The schema of the state it writes (and the oldest it migrates).
    pub state_schema: u32,
    pub target: &'static str,
}

/// This build.
pub fn build_info() -> BuildInfo {
    BuildInfo {
        version: VERSION,
        commit: env!("TETHER_GIT_COMMIT"),
        wasmtime: WASMTIME_VERSION,
        contract: CONTRACT_VERSION,
        contracts: crate::runtime::CONTRACTS_PROVIDED,
        state_schema: crate::state::SCHEMA,
        target: std::env::consts::OS,
    }
}
