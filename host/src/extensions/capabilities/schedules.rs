//! Schedules: every `[[schedule]]` entry runs no more often than
//! `extensions.schedules.mininterval` allows. The service's runner reads
//! the entries from the extension's record (`granted.schedules`); the
//! instance itself holds nothing of them.

use super::{Capability, Operator};
use crate::runtime::ExtensionSpec;
use tether_package::Manifest;

pub struct Schedules;

impl Capability for Schedules {
    fn check(&self) -> &'static str {
        "schedules"
    }

    fn grant(
        &self,
        manifest: &Manifest,
        operator: &Operator<'_>,
        _spec: &mut ExtensionSpec,
    ) -> Result<(), String> {
        let settings = &operator.settings.extensions.schedules;
        let floor = settings.min_interval();
        match manifest.schedules.iter().find(|s| s.interval() < floor) {
            Some(s) => Err(format!(
                "schedule `{}` runs every {}, more often than extensions.schedules.mininterval ({}) allows; the operator allows it with `tether config set extensions.schedules.mininterval {}`",
                s.label(),
                s.every,
                settings.mininterval,
                s.every
            )),
            None => Ok(()),
        }
    }
}
