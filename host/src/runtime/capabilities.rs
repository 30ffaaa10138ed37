//! The runtime side of each capability: what it links, the state it holds
//! in one instance, and what a call leaves behind. One module per
//! capability, each a [`Unit`]; [`Units`] is the list, and the one place a
//! new capability is added to the store. The admission side of the same
//! capabilities (the manifest asks, the operator allows) is in
//! `crate::extensions::capabilities`; what it grants arrives here through
//! the [`ExtensionSpec`].
//!
//! The contract's host functions are one WIT interface, so one dispatch
//! (`host_api.rs`) maps each function to its unit; a unit never reaches
//! into another's state.

pub(crate) mod files;
pub(crate) mod kv;
pub(crate) mod logging;
pub(crate) mod machine;
pub(crate) mod outbound;
pub(crate) mod settings;
pub(crate) mod status;

use super::activation::ReportedStatus;
use super::host_api::HostState;
use super::log_capture::LogCapture;
use super::{ExtensionSpec, LoadedExtension};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;

/// What a unit may read, and configure, when an instance is made.
pub(crate) struct Setup<'a> {
    pub(crate) extension: &'a LoadedExtension,
    pub(crate) capture: &'a Arc<LogCapture>,
    /// The instance's WASI context, granting nothing until a unit adds it.
    pub(crate) wasi: &'a mut WasiCtxBuilder,
    /// When instantiation must end (start functions run guest code).
    pub(crate) deadline: Instant,
}

impl Setup<'_> {
    pub(crate) fn spec(&self) -> &Arc<ExtensionSpec> {
        &self.extension.spec
    }
}

/// What a call left behind that outlives it.
#[derive(Debug, Default)]
pub(crate) struct Harvest {
    pub(crate) status: Option<ReportedStatus>,
    pub(crate) document: Option<String>,
}

/// One capability in the runtime.
pub(crate) trait Unit: Sized {
    /// Links what it provides beyond the contract (a WASI interface), once
    /// per runtime, after WASI's base.
    fn link(_linker: &mut Linker<HostState>) -> anyhow::Result<()> {
        Ok(())
    }

    /// Its state for one new instance, from the grants in the spec.
    fn prepare(setup: &mut Setup<'_>) -> anyhow::Result<Self>;

    /// Before each call, with the call's deadline.
    fn begin_call(&mut self, _deadline: Instant) {}

    /// After each call: hands over what the call produced.
    fn end_call(&mut self, _harvest: &mut Harvest) {}
}

/// Declares the store's units, in the order they are prepared.
macro_rules! units {
    ($($field:ident: $unit:ty),* $(,)?) => {
        /// Every unit's state in one instance.
        pub(crate) struct Units {
            $(pub(crate) $field: $unit,)*
        }

        impl Units {
            pub(crate) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
                $(<$unit as Unit>::link(linker)?;)*
                Ok(())
            }

            pub(crate) fn prepare(setup: &mut Setup<'_>) -> anyhow::Result<Self> {
                Ok(Self { $($field: <$unit as Unit>::prepare(setup)?,)* })
            }

            pub(crate) fn begin_call(&mut self, deadline: Instant) {
                $(self.$field.begin_call(deadline);)*
            }

            pub(crate) fn end_call(&mut self) -> Harvest {
                let mut harvest = Harvest::default();
                $(self.$field.end_call(&mut harvest);)*
                harvest
            }
        }
    };
}

units! {
    logging: logging::Logging,
    settings: settings::Settings,
    machine: machine::Machine,
    status: status::Status,
    kv: kv::KeyValue,
    outbound: outbound::Outbound,
    files: files::Files,
}
