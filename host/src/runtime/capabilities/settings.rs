//! Settings: the public and protected settings the extension was deployed
//! with, read-only, as JSON text per key.

use super::{Setup, Unit};
use crate::runtime::ExtensionSpec;
use std::sync::Arc;

pub(crate) struct Settings {
    spec: Arc<ExtensionSpec>,
}

impl Unit for Settings {
    fn prepare(setup: &mut Setup<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            spec: setup.spec().clone(),
        })
    }
}

impl Settings {
    pub(crate) fn public(&self, key: &str) -> Option<String> {
        self.spec.settings.get(key).map(|v| v.to_string())
    }

    pub(crate) fn protected(&self, key: &str) -> Option<String> {
        self.spec.protected_settings.get(key).map(|v| v.to_string())
    }
}
