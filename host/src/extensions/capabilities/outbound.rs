//! Outbound HTTP: every origin the manifest declares must be covered by
//! one in `extensions.outbound.allowed`; `extensions.outbound.allowlocal`
//! decides literal local addresses. Both HTTP interfaces (Tether's and
//! `wasi:http`) use the grant.

use super::{Capability, Operator};
use crate::config::Settings;
use crate::runtime::{ExtensionSpec, HostPattern, OutboundGrant};
use tether_package::Manifest;

pub struct Outbound;

/// The declared origins, each covered by one the operator allows, or why not.
fn covered(declared: &[String], settings: &Settings) -> Result<Vec<HostPattern>, String> {
    let allowed: Vec<HostPattern> = settings
        .extensions
        .outbound
        .allowed
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    declared
        .iter()
        .map(|origin| {
            let pattern: HostPattern = origin.parse()?;
            if allowed.iter().any(|a| a.covers(&pattern)) {
                Ok(pattern)
            } else {
                Err(format!(
                    "outbound origin `{origin}` is not covered by extensions.outbound.allowed; the operator allows it with `tether config set extensions.outbound.allowed {origin} --add`"
                ))
            }
        })
        .collect()
}

impl Capability for Outbound {
    fn check(&self) -> &'static str {
        "capabilities"
    }

    fn grant(
        &self,
        manifest: &Manifest,
        operator: &Operator<'_>,
        spec: &mut ExtensionSpec,
    ) -> Result<(), String> {
        spec.outbound = OutboundGrant {
            hosts: covered(&manifest.capabilities.outbound, operator.settings)?,
            allow_local: operator.settings.extensions.outbound.allowlocal,
        };
        Ok(())
    }
}
