//! Write Tether extensions in Rust.
//!
//! An extension is a WebAssembly component built for `wasm32-wasip2` that
//! implements the `tether:extension@0.1.0` contract (the WIT files in `wit/`
//! at the top of the repository). This crate holds the generated bindings and
//! an ergonomic layer over them:
//!
//! - [`Extension`], a trait whose methods all have defaults, so an extension
//!   implements only what it needs;
//! - [`export_extension!`], which registers the implementing type;
//! - [`settings`], typed access to public and protected settings;
//! - [`kv`], the extension's private key-value store, typed with serde;
//! - [`info!`], [`warn!`], [`error!`], [`debug!`], [`trace!`], logging to the
//!   host's log, tagged with the extension's id;
//! - [`machine`] and [`report_status`].
//!
//! ```no_run
//! use tether_sdk::{Extension, Error, info};
//!
//! struct Hello;
//!
//! impl Extension for Hello {
//!     fn enable() -> Result<(), Error> {
//!         info!("hello is enabled");
//!         Ok(())
//!     }
//!
//!     fn invoke(command: &str, args: &[String]) -> Result<String, Error> {
//!         match command {
//!             "greet" => Ok(format!("Hello, {}!", args.join(" "))),
//!             other => Err(Error::unknown_command(other)),
//!         }
//!     }
//! }
//!
//! tether_sdk::export_extension!(Hello);
//! ```

// The generated bindings name this crate by its external path, so that
// the export macro works from extension crates; make that path work here.
extern crate self as tether_sdk;

mod error;
pub mod http;
pub mod kv;
mod log;
pub mod settings;

pub use error::Error;
pub use log::{Level, log};

/// The raw bindings generated from `wit/`. Prefer the wrappers in this crate;
/// these are public so that nothing of the contract is out of reach.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "extension",
        pub_export_macro: true,
        export_macro_name: "__export_extension_world",
        default_bindings_module: "::tether_sdk::bindings",
        runtime_path: "::tether_sdk::__private::wit_bindgen::rt",
    });
}

pub use bindings::tether::extension::types::{ConnectionStatus, MachineInfo, StatusState};

/// The lifecycle an extension implements. Every method has a default that
/// succeeds (or, for [`Extension::invoke`], refuses the command), so an
/// extension implements only what it needs.
///
/// ```no_run
/// use tether_sdk::{Extension, Error};
///
/// struct Quiet;
/// impl Extension for Quiet {}
/// tether_sdk::export_extension!(Quiet);
/// ```
pub trait Extension {
    /// Called once, when the extension is installed on the machine.
    fn install() -> Result<(), Error> {
        Ok(())
    }

    /// Starts the extension's work. Must be idempotent.
    fn enable() -> Result<(), Error> {
        Ok(())
    }

    /// Stops the extension's work. Must be idempotent.
    fn disable() -> Result<(), Error> {
        Ok(())
    }

    /// Called on the new version when it replaces `from_version`.
    fn update(from_version: &str) -> Result<(), Error> {
        let _ = from_version;
        Ok(())
    }

    /// Called once, before the extension and its data are removed.
    fn uninstall() -> Result<(), Error> {
        Ok(())
    }

    /// An on-demand operation (`tether extension invoke ID COMMAND ARGS…`).
    fn invoke(command: &str, args: &[String]) -> Result<String, Error> {
        let _ = args;
        Err(Error::unknown_command(command))
    }
}

/// The machine this extension runs on.
///
/// ```no_run
/// let machine = tether_sdk::machine();
/// tether_sdk::info!("running on {} in {}", machine.name, machine.location);
/// ```
pub fn machine() -> MachineInfo {
    bindings::tether::extension::host::machine()
}

/// Reports the extension's status to the host (and through it, to the
/// control plane).
///
/// ```no_run
/// use tether_sdk::{report_status, StatusState};
/// report_status(StatusState::Success, "collected 12 packages");
/// ```
pub fn report_status(state: StatusState, message: &str) {
    bindings::tether::extension::host::report_status(state, message)
}

/// Reports a document: what the extension found, as one JSON object of at
/// most 256 KiB. The host keeps the latest (`tether extension show`) and
/// sends it to the control plane with the status.
///
/// ```no_run
/// let inventory = serde_json::json!({"packages": 412});
/// tether_sdk::report_document(&inventory)?;
/// # Ok::<(), tether_sdk::Error>(())
/// ```
pub fn report_document<T: serde::Serialize + ?Sized>(document: &T) -> Result<(), Error> {
    let json = serde_json::to_string(document)?;
    bindings::tether::extension::host::report_document(&json).map_err(Error::from)
}

/// Registers the type implementing [`Extension`] as this component's
/// exports. Use it once per extension crate.
///
/// ```no_run
/// struct Mine;
/// impl tether_sdk::Extension for Mine {}
/// tether_sdk::export_extension!(Mine);
/// ```
#[macro_export]
macro_rules! export_extension {
    ($ty:ty) => {
        #[doc(hidden)]
        struct __TetherExtensionExport;

        impl $crate::bindings::exports::tether::extension::lifecycle::Guest
            for __TetherExtensionExport
        {
            fn install() -> ::core::result::Result<(), $crate::__private::WitError> {
                <$ty as $crate::Extension>::install().map_err(::core::convert::Into::into)
            }
            fn enable() -> ::core::result::Result<(), $crate::__private::WitError> {
                <$ty as $crate::Extension>::enable().map_err(::core::convert::Into::into)
            }
            fn disable() -> ::core::result::Result<(), $crate::__private::WitError> {
                <$ty as $crate::Extension>::disable().map_err(::core::convert::Into::into)
            }
            fn update(
                from_version: $crate::__private::String,
            ) -> ::core::result::Result<(), $crate::__private::WitError> {
                <$ty as $crate::Extension>::update(&from_version)
                    .map_err(::core::convert::Into::into)
            }
            fn uninstall() -> ::core::result::Result<(), $crate::__private::WitError> {
                <$ty as $crate::Extension>::uninstall().map_err(::core::convert::Into::into)
            }
            fn invoke(
                command: $crate::__private::String,
                args: $crate::__private::Vec<$crate::__private::String>,
            ) -> ::core::result::Result<$crate::__private::String, $crate::__private::WitError>
            {
                <$ty as $crate::Extension>::invoke(&command, &args)
                    .map_err(::core::convert::Into::into)
            }
        }

        $crate::bindings::__export_extension_world!(
            __TetherExtensionExport with_types_in $crate::bindings
        );
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::tether::extension::types::Error as WitError;
    pub use std::string::String;
    pub use std::vec::Vec;
    pub use wit_bindgen;
}
