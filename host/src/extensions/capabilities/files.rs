//! Files: `read_paths`, `optional_read_paths` and `write_paths`, granted
//! under `extensions.files.allowed` (the rules are the runtime's
//! [`FilePolicy`](crate::runtime::FilePolicy)), preopened for each instance.

use super::{Capability, Operator};
use crate::runtime::ExtensionSpec;
use tether_package::Manifest;

pub struct Files;

impl Capability for Files {
    fn check(&self) -> &'static str {
        "capabilities"
    }

    fn grant(
        &self,
        manifest: &Manifest,
        operator: &Operator<'_>,
        spec: &mut ExtensionSpec,
    ) -> Result<(), String> {
        spec.files = operator.files.grants(&manifest.capabilities)?;
        Ok(())
    }
}
