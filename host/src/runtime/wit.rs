//! Bindings for each version of the `tether:extension` contract.
//!
//! One module per contract version (`since_v0_1_0`, …), each generated
//! with `bindgen!` from the WIT of that version. The host implements the
//! newest version once; when a breaking version arrives, the older
//! module's host traits are implemented by converting to the newest (the
//! way Zed's extension host does it), and an enum over versions dispatches
//! the exported calls. Today there is one version.

pub(crate) mod since_v0_1_0;

pub use since_v0_1_0::tether::extension::types::{ConnectionStatus, Level, StatusState};
pub(crate) use since_v0_1_0::{Extension, ExtensionPre};

/// Turns a link failure into an operator's explanation: usually the
/// component was built for a contract this host does not provide, or it
/// imports an interface Tether never grants.
pub(crate) fn explain_link_error(id: &str, error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    let hint = if text.contains("tether:extension") {
        format!(
            "it was built against a version of the tether:extension contract this host does not provide (this host provides {}); rebuild it with a tether-sdk of that version",
            crate::version::CONTRACT_VERSION
        )
    } else {
        "it imports an interface Tether does not grant to extensions (only the tether:extension contract, WASI clocks, random, captured stdio, granted directories and wasi:http's outgoing handler are available)".to_string()
    };
    format!("extension `{id}` cannot be linked: {hint}. Detail: {text}")
}
