//! The machine's lifecycle: connect, disconnect, and what they leave
//! behind (registration, machine key), as journaled operations: killed at
//! any step, the next run resumes or rolls back, and leaves neither an
//! orphaned cloud resource nor half a registration.

pub mod connect;
pub mod disconnect;
pub mod journal;
pub mod machine_key;
pub mod registration;
pub mod rename;
pub mod reset;
pub mod show;
pub mod status;
pub mod upgrade;

pub use registration::{ConnectedMachine, Registration};

/// Why a lifecycle operation failed, for the exit code.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("this machine is already connected as {0}; run `tether disconnect` first")]
    AlreadyConnected(String),
    #[error("this machine is not connected; run `tether connect` first")]
    NotConnected,
    #[error("{0}")]
    NameTaken(String),
    #[error("{0}")]
    ArmCreateFailed(String),
    #[error("{0}")]
    ArmDeleteFailed(String),
    #[error("{0}")]
    IdentityFailed(String),
    #[error("{0}")]
    Network(String),
}
