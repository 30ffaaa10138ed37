//! Files: the grants admission decided ([`grants`]), opened as WASI
//! preopens when an instance is made; copies of granted single files live
//! as long as the instance.

pub(crate) mod grants;

use super::{Setup, Unit};
use anyhow::Context;

pub(crate) struct Files {
    _snapshot: grants::Snapshot,
}

impl Unit for Files {
    fn prepare(setup: &mut Setup<'_>) -> anyhow::Result<Self> {
        let files = &setup.extension.spec.files;
        let snapshot = grants::preopen(setup.wasi, files)
            .context("a granted directory could not be opened")?;
        Ok(Self {
            _snapshot: snapshot,
        })
    }
}
