//! The capabilities that reach outside the sandbox, each a module behind
//! one trait with the phases every capability has:
//!
//! 1. its manifest section, which `tether-package` parses and checks on
//!    its own (`[capabilities] outbound`, `read_paths`, `[[schedule]]`…);
//! 2. what the operator allows, read from the local settings, against
//!    which [`Capability::grant`] decides — the two keys: a manifest that
//!    asks for more is refused, naming the setting that would allow it;
//! 3. what the extension then holds: [`Capability::grant`] writes it into
//!    the [`ExtensionSpec`] its instances are made from (directories to
//!    preopen, origins for both HTTP interfaces), which the runtime links.
//!
//! Admission runs every capability before anything is written; every load
//! runs them again on the settings and paths as they are then, so a
//! narrowed setting or a planted link takes hold at the next call. Adding a
//! capability is adding a module here and a line to [`ALL`], and its
//! runtime half to `crate::runtime`'s `capabilities` (host/README.md,
//! "Adding a capability").

mod files;
mod outbound;
mod schedules;

use crate::config::Settings;
use crate::runtime::{ExtensionSpec, FilePolicy};
use tether_package::Manifest;

/// What the operator allows on this machine, and what is never granted.
pub struct Operator<'a> {
    pub settings: &'a Settings,
    pub files: &'a FilePolicy,
}

/// One capability's second key.
pub trait Capability: Sync {
    /// How a refusal names it (`capabilities`, `schedules`).
    fn check(&self) -> &'static str;

    /// Grants what `manifest` asks, within what `operator` allows, into
    /// `spec`; or says why not, naming the setting that would allow it.
    fn grant(
        &self,
        manifest: &Manifest,
        operator: &Operator<'_>,
        spec: &mut ExtensionSpec,
    ) -> Result<(), String>;
}

/// Every capability, in the order admission reports them.
pub static ALL: &[&dyn Capability] = &[&outbound::Outbound, &files::Files, &schedules::Schedules];

/// Runs every capability; the first refusal, with its check's name.
pub fn grant_all(
    manifest: &Manifest,
    operator: &Operator<'_>,
    spec: &mut ExtensionSpec,
) -> Result<(), (&'static str, String)> {
    for capability in ALL {
        capability
            .grant(manifest, operator, spec)
            .map_err(|why| (capability.check(), why))?;
    }
    Ok(())
}
