//! Stable exit codes. Scripts depend on these numbers: never renumber one,
//! only add. The table is in the README.

use crate::config::ConfigError;
use crate::runtime::GuestError;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    /// Anything not covered below.
    Failure = 1,
    /// A flag or argument is missing or wrong.
    Usage = 2,
    /// A file given on the command line could not be read or is invalid.
    BadInput = 3,
    /// The command needs root (administrator on Windows).
    NotAdmin = 4,
    /// The settings file is broken.
    BadConfig = 5,
    /// A cloud endpoint could not be reached.
    Network = 6,
    /// The machine's local policy refuses the request.
    Refused = 7,
    /// `connect` on a machine that is already connected.
    AlreadyConnected = 10,
    /// A command that needs a connected machine, on one that is not.
    NotConnected = 11,
    /// Sign-in failed: wrong credentials, a declined or expired code.
    BadCredentials = 12,
    /// The machine resource could not be created.
    ArmCreateFailed = 13,
    /// The machine resource could not be deleted.
    ArmDeleteFailed = 14,
    /// The resource name is held by another machine, or invalid.
    NameTaken = 15,
    /// The machine identity could not be confirmed.
    IdentityFailed = 16,
    /// The extension returned an error of its own.
    ExtensionError = 20,
    /// The host stopped the extension: timeout, memory limit, stack
    /// overflow, panic or another trap.
    ExtensionStopped = 21,
}

/// An error that carries the exit code it should end the process with.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Coded {
    pub exit: Exit,
    pub message: String,
}

impl Exit {
    /// The exit code an error calls for.
    pub fn of(error: &anyhow::Error) -> Exit {
        if let Some(coded) = error.downcast_ref::<Coded>() {
            return coded.exit;
        }
        if let Some(config) = error.downcast_ref::<ConfigError>() {
            return match config {
                ConfigError::Corrupt { .. } => Exit::BadConfig,
                ConfigError::Invalid(_) => Exit::Usage,
                ConfigError::MonitorMode => Exit::Refused,
                ConfigError::Io { .. } => Exit::Failure,
            };
        }
        if let Some(guest) = error.downcast_ref::<GuestError>() {
            return if guest.kind.is_trap() {
                Exit::ExtensionStopped
            } else {
                Exit::ExtensionError
            };
        }
        Exit::Failure
    }

    /// A short, stable name for `--json` errors.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failure => "failure",
            Exit::Usage => "usage",
            Exit::BadInput => "bad-input",
            Exit::NotAdmin => "not-admin",
            Exit::BadConfig => "bad-config",
            Exit::Network => "network",
            Exit::Refused => "refused",
            Exit::AlreadyConnected => "already-connected",
            Exit::NotConnected => "not-connected",
            Exit::BadCredentials => "bad-credentials",
            Exit::ArmCreateFailed => "arm-create-failed",
            Exit::ArmDeleteFailed => "arm-delete-failed",
            Exit::NameTaken => "name-taken",
            Exit::IdentityFailed => "identity-failed",
            Exit::ExtensionError => "extension-error",
            Exit::ExtensionStopped => "extension-stopped",
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Wraps an error with an exit code.
pub fn coded(exit: Exit, error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Coded {
        exit,
        message: error.to_string(),
    })
}
