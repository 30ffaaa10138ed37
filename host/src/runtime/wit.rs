//! Bindings for each version of the `tether:extension` contract.
//!
//! One module per contract version, each generated with `bindgen!` from
//! its own WIT (`wit/since_v0_1_0/`, frozen; `wit/`, the newest). The host
//! implements the newest version's imports once (`host_api.rs`); an older
//! version's are implemented by converting to and from the newest
//! (`since_v0_1_0.rs`), and [`Bindings`] dispatches the exported calls to
//! whichever version a component was built against.

pub(crate) mod since_v0_1_0;
pub(crate) mod since_v0_2_0;

/// The newest contract's interfaces.
pub(crate) mod latest {
    pub(crate) use super::since_v0_2_0::tether::extension::{host, outbound_http, types};
}

pub use latest::types::{ConnectionStatus, Level, StatusState};

use super::host_api::HostState;
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

/// The contract versions this host provides, newest first.
pub const PROVIDED: &[&str] = &["0.2.0", "0.1.0"];

/// A component's bindings, by the contract version it was built against.
pub(crate) enum BindingsPre {
    V0_2(since_v0_2_0::ExtensionPre<HostState>),
    V0_1(since_v0_1_0::ExtensionPre<HostState>),
}

pub(crate) enum Bindings {
    V0_2(since_v0_2_0::Extension),
    V0_1(since_v0_1_0::Extension),
}

impl BindingsPre {
    /// The bindings of the newest version the component exports.
    pub(crate) fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        match since_v0_2_0::ExtensionPre::new(pre.clone()) {
            Ok(pre) => Ok(Self::V0_2(pre)),
            Err(newest) => since_v0_1_0::ExtensionPre::new(pre)
                .map(Self::V0_1)
                .map_err(|_| newest),
        }
    }

    pub(crate) fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Self::V0_2(pre) => Bindings::V0_2(pre.instantiate(store)?),
            Self::V0_1(pre) => Bindings::V0_1(pre.instantiate(store)?),
        })
    }
}

/// Calls one export of `lifecycle`, whichever version: the interface is
/// the same in both, only its generated types differ.
macro_rules! lifecycle_call {
    ($bindings:expr, $store:expr, |$l:ident, $s:ident| $call:expr) => {
        match $bindings {
            $crate::runtime::wit::Bindings::V0_2(b) => {
                let $l = b.tether_extension_lifecycle();
                let $s = $store;
                ($call).map(|r| r.map_err(|e| (e.code, e.message)))
            }
            $crate::runtime::wit::Bindings::V0_1(b) => {
                let $l = b.tether_extension_lifecycle();
                let $s = $store;
                ($call).map(|r| r.map_err(|e| (e.code, e.message)))
            }
        }
    };
}
pub(crate) use lifecycle_call;

/// Adds every version's imports to the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    since_v0_2_0::Extension::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
        .map_err(|e| anyhow::anyhow!("could not link tether:extension@0.2.0: {e}"))?;
    since_v0_1_0::Extension::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
        .map_err(|e| anyhow::anyhow!("could not link tether:extension@0.1.0: {e}"))?;
    Ok(())
}

/// Turns a link failure into an operator's explanation: usually the
/// component was built for a contract this host does not provide, or it
/// imports an interface Tether never grants.
pub(crate) fn explain_link_error(id: &str, error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    let hint = if text.contains("tether:extension") {
        format!(
            "it was built against a version of the tether:extension contract this host does not provide (this host provides {}); rebuild it with a tether-sdk of one of those",
            PROVIDED.join(" and ")
        )
    } else {
        "it imports an interface Tether does not grant to extensions (only the tether:extension contract, WASI clocks, random, captured stdio, granted directories and wasi:http's outgoing handler are available)".to_string()
    };
    format!("extension `{id}` cannot be linked: {hint}. Detail: {text}")
}

#[cfg(test)]
mod tests {
    /// The version the host reports is the newest WIT package's own.
    #[test]
    fn the_contract_version_is_the_wit_packages() {
        let newest = include_str!("../../../wit/extension.wit");
        let frozen = include_str!("../../../wit/since_v0_1_0/extension.wit");
        let package = |wit: &str| {
            wit.lines()
                .find_map(|l| l.strip_prefix("package tether:extension@"))
                .map(|v| v.trim_end_matches(';').to_string())
        };
        assert_eq!(
            package(newest).as_deref(),
            Some(crate::version::CONTRACT_VERSION)
        );
        assert_eq!(package(newest).as_deref(), Some(super::PROVIDED[0]));
        assert_eq!(package(frozen).as_deref(), Some(super::PROVIDED[1]));
    }
}
