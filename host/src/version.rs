//! What this build is: Tether's version, commit, wasmtime and contract.

use serde::Serialize;

/// The version of the `tether:extension` contract this host implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

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
    pub target: &'static str,
}

/// This build.
pub fn build_info() -> BuildInfo {
    BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("TETHER_GIT_COMMIT"),
        wasmtime: WASMTIME_VERSION,
        contract: CONTRACT_VERSION,
        target: std::env::consts::OS,
    }
}
