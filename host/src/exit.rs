//! Stable exit codes. Scripts depend on these numbers: never renumber one,
//! only add. The table is in the README.

use crate::auth::AuthFailure;
use crate::config::ConfigError;
use crate::lifecycle::LifecycleError;
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
    /// The host service is not running (for commands that need it).
    ServiceNotRunning = 17,
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
        if let Some(lifecycle) = error.downcast_ref::<LifecycleError>() {
            return match lifecycle {
                LifecycleError::AlreadyConnected(_) => Exit::AlreadyConnected,
                LifecycleError::NotConnected => Exit::NotConnected,
                LifecycleError::NameTaken(_) => Exit::NameTaken,
                LifecycleError::ArmCreateFailed(_) => Exit::ArmCreateFailed,
                LifecycleError::ArmDeleteFailed(_) => Exit::ArmDeleteFailed,
                LifecycleError::IdentityFailed(_) => Exit::IdentityFailed,
                LifecycleError::Network(_) => Exit::Network,
            };
        }
        if error.downcast_ref::<AuthFailure>().is_some() {
            return Exit::BadCredentials;
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

    /// The exit code with this number (an answer from the service).
    pub fn from_code(code: u8) -> Exit {
        match code {
            0 => Exit::Success,
            2 => Exit::Usage,
            3 => Exit::BadInput,
            4 => Exit::NotAdmin,
            5 => Exit::BadConfig,
            6 => Exit::Network,
            7 => Exit::Refused,
            10 => Exit::AlreadyConnected,
            11 => Exit::NotConnected,
            12 => Exit::BadCredentials,
            13 => Exit::ArmCreateFailed,
            14 => Exit::ArmDeleteFailed,
            15 => Exit::NameTaken,
            16 => Exit::IdentityFailed,
            17 => Exit::ServiceNotRunning,
            20 => Exit::ExtensionError,
            21 => Exit::ExtensionStopped,
            _ => Exit::Failure,
        }
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
            Exit::ServiceNotRunning => "service-not-running",
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
