//! Logging: the contract's `log`, and the guest's stdout and stderr, all
//! into the call's bounded capture (`log_capture`), never a file or
//! terminal of the host.

use super::{Setup, Unit};
use crate::runtime::log_capture::{CaptureStream, LogCapture, LogSource};
use crate::runtime::wit::Level;
use std::sync::Arc;

pub(crate) struct Logging {
    capture: Arc<LogCapture>,
}

impl Unit for Logging {
    fn prepare(setup: &mut Setup<'_>) -> anyhow::Result<Self> {
        let capture = setup.capture.clone();
        setup
            .wasi
            .stdout(CaptureStream::new(capture.clone(), LogSource::Stdout))
            .stderr(CaptureStream::new(capture.clone(), LogSource::Stderr));
        Ok(Self { capture })
    }
}

impl Logging {
    pub(crate) fn log(&self, level: Level, message: &str) {
        self.capture.log(level, LogSource::Log, message);
    }

    /// What the host tells the operator about the guest's call.
    pub(crate) fn host(&self, level: Level, message: &str) {
        self.capture.log(level, LogSource::Host, message);
    }
}
