//! Stable exit codes. Scripts depend on these numbers: never renumber one,
//! only add. The table is in host/README.md.

use crate::auth::AuthFailure;
use crate::config::ConfigError;
use crate::lifecycle::LifecycleError;
use crate::runtime::GuestError;
use std::process::ExitCode;

/// Where azcmagent has a code of the same meaning, the number is its
/// (process exit N is its AZCM00NN); Tether's own meanings take numbers
/// azcmagent does not use (2–9, 20–21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    /// Anything not covered below (AZCM0001).
    Failure = 1,
    /// A flag or argument the command needs is not given (AZCM0016).
    MissingParameter = 16,
    /// The command needs root (administrator on Windows) (AZCM0018).
    NotAdmin = 18,
    /// The `--config` file could not be read or is invalid (AZCM0019).
    BadConfigFile = 19,
    /// A flag or argument is wrong (AZCM0023).
    Usage = 23,
    /// A cloud endpoint could not be reached (AZCM0026).
    Network = 26,
    /// Sign-in failed: wrong credentials, a declined or expired code (AZCM0041).
    BadCredentials = 41,
    /// The machine resource could not be created (AZCM0042).
    ArmCreateFailed = 42,
    /// The machine resource could not be deleted (AZCM0043).
    ArmDeleteFailed = 43,
    /// The resource name is held by another machine, or invalid (AZCM0044).
    NameTaken = 44,
    /// The host service is not running, for commands that need it (AZCM0064).
    ServiceNotRunning = 64,
    /// `connect` on a machine that is already connected (AZCM0067).
    AlreadyConnected = 67,
    /// Tether: a file given on the command line (other than `--config`)
    /// could not be read or is invalid.
    BadInput = 3,
    /// Tether: the settings file is broken.
    BadConfig = 5,
    /// Tether: the state was written by a newer Tether (a downgrade).
    NewerState = 6,
    /// Tether: the machine's local policy refuses the request.
    Refused = 7,
    /// Tether: a command that needs a connected machine, on one that is not.
    NotConnected = 8,
    /// Tether: the machine identity could not be confirmed.
    IdentityFailed = 9,
    /// Tether: the extension returned an error of its own.
    ExtensionError = 20,
    /// Tether: the host stopped the extension: timeout, memory limit,
    /// stack overflow, panic or another trap.
    ExtensionStopped = 21,
}

impl Exit {
    /// Whether azcmagent documents this meaning under the same number.
    pub fn shared_with_azcmagent(self) -> bool {
        !matches!(
            self,
            Exit::BadInput
                | Exit::BadConfig
                | Exit::NewerState
                | Exit::Refused
                | Exit::NotConnected
                | Exit::IdentityFailed
                | Exit::ExtensionError
                | Exit::ExtensionStopped
        )
    }

    /// Every code, for the table and for reading a number back.
    pub const ALL: [Exit; 21] = [
        Exit::Success,
        Exit::Failure,
        Exit::MissingParameter,
        Exit::NotAdmin,
        Exit::BadConfigFile,
        Exit::Usage,
        Exit::Network,
        Exit::BadCredentials,
        Exit::ArmCreateFailed,
        Exit::ArmDeleteFailed,
        Exit::NameTaken,
        Exit::ServiceNotRunning,
        Exit::AlreadyConnected,
        Exit::BadInput,
        Exit::BadConfig,
        Exit::NewerState,
        Exit::Refused,
        Exit::NotConnected,
        Exit::IdentityFailed,
        Exit::ExtensionError,
        Exit::ExtensionStopped,
    ];
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
        if error.downcast_ref::<crate::cloud::Unreachable>().is_some() {
            return Exit::Network;
        }
        if error
            .downcast_ref::<crate::state::record::NewerState>()
            .is_some()
        {
            return Exit::NewerState;
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
        Exit::ALL
            .into_iter()
            .find(|exit| *exit as u8 == code)
            .unwrap_or(Exit::Failure)
    }

    /// A short, stable name for `--json` errors.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failure => "failure",
            Exit::MissingParameter => "missing-parameter",
            Exit::BadConfigFile => "bad-config-file",
            Exit::Usage => "usage",
            Exit::BadInput => "bad-input",
            Exit::NotAdmin => "not-admin",
            Exit::BadConfig => "bad-config",
            Exit::NewerState => "newer-state",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// azcmagent's documented numbers, where Tether has the same meaning.
    #[test]
    fn shared_meanings_keep_azcmagents_numbers() {
        for (exit, azcm) in [
            (Exit::Success, 0),
            (Exit::Failure, 1),
            (Exit::MissingParameter, 16),
            (Exit::NotAdmin, 18),
            (Exit::BadConfigFile, 19),
            (Exit::Usage, 23),
            (Exit::Network, 26),
            (Exit::BadCredentials, 41),
            (Exit::ArmCreateFailed, 42),
            (Exit::ArmDeleteFailed, 43),
            (Exit::NameTaken, 44),
            (Exit::ServiceNotRunning, 64),
            (Exit::AlreadyConnected, 67),
        ] {
            assert_eq!(exit as u8, azcm, "{exit:?}");
        }
        let mut numbers: Vec<u8> = Exit::ALL.iter().map(|e| *e as u8).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(
            numbers.len(),
            Exit::ALL.len(),
            "two meanings share a number"
        );
        for exit in Exit::ALL {
            assert_eq!(Exit::from_code(exit as u8), exit);
        }
    }
}
