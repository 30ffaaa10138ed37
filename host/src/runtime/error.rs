//! What went wrong in a guest call, named for an operator.

use super::limits::MemoryLimitExceeded;
use std::time::Duration;
use thiserror::Error;
use wasmtime::Trap;

/// A failed call into an extension: which extension, which call, and why.
#[derive(Debug, Error)]
#[error("extension `{extension}` failed in `{call}`: {kind}")]
pub struct GuestError {
    pub extension: String,
    pub call: String,
    pub kind: GuestErrorKind,
}

/// Why a call failed.
#[derive(Debug, Error)]
pub enum GuestErrorKind {
    /// The extension returned an error of its own.
    #[error("{code}: {message}")]
    Returned { code: String, message: String },
    #[error("it ran past its time limit of {} ms and was stopped", limit.as_millis())]
    Timeout { limit: Duration },
    #[error("it reached its memory limit of {} MiB and was stopped", limit_bytes >> 20)]
    MemoryLimit { limit_bytes: usize },
    #[error("it overflowed its stack and was stopped")]
    StackOverflow,
    #[error("it panicked{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Panic { message: Option<String> },
    #[error("it trapped: {0}")]
    Trap(String),
    #[error("it returned {size} bytes, more than the {limit} bytes an invoke may return")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("it could not be started: {0}")]
    Instantiate(String),
}

impl GuestErrorKind {
    /// A short, stable name for scripts (`--json` output, exit codes).
    pub fn code(&self) -> &'static str {
        match self {
            GuestErrorKind::Returned { .. } => "returned-error",
            GuestErrorKind::Timeout { .. } => "timeout",
            GuestErrorKind::MemoryLimit { .. } => "memory-limit",
            GuestErrorKind::StackOverflow => "stack-overflow",
            GuestErrorKind::Panic { .. } => "panic",
            GuestErrorKind::Trap(_) => "trap",
            GuestErrorKind::OutputTooLarge { .. } => "output-too-large",
            GuestErrorKind::Instantiate(_) => "instantiate",
        }
    }

    /// Whether the host stopped the guest or refused its result (as opposed
    /// to the guest returning an error of its own). Such an instance is
    /// discarded.
    pub fn is_trap(&self) -> bool {
        !matches!(self, GuestErrorKind::Returned { .. })
    }
}

/// Classifies an error wasmtime returned from a guest call.
pub(crate) fn classify(
    error: &wasmtime::Error,
    timeout: Duration,
    stderr_tail: &[String],
) -> GuestErrorKind {
    if let Some(limit) = find::<MemoryLimitExceeded>(error) {
        return GuestErrorKind::MemoryLimit {
            limit_bytes: limit.limit,
        };
    }
    match find::<Trap>(error) {
        Some(Trap::Interrupt) => GuestErrorKind::Timeout { limit: timeout },
        Some(Trap::StackOverflow) => GuestErrorKind::StackOverflow,
        Some(Trap::UnreachableCodeReached) => match panic_message(stderr_tail) {
            Some(message) => GuestErrorKind::Panic {
                message: Some(message),
            },
            // Rust guests abort through `unreachable`; so do others.
            None => GuestErrorKind::Panic { message: None },
        },
        Some(trap) => GuestErrorKind::Trap(trap.to_string()),
        None => GuestErrorKind::Trap(format!("{error:#}")),
    }
}

fn find<E: std::error::Error + Send + Sync + 'static>(error: &wasmtime::Error) -> Option<&E> {
    error
        .downcast_ref::<E>()
        .or_else(|| error.chain().find_map(|e| e.downcast_ref::<E>()))
}

/// The panic message a Rust guest printed to stderr before aborting.
fn panic_message(stderr_tail: &[String]) -> Option<String> {
    let at = stderr_tail
        .iter()
        .rposition(|l| l.contains("panicked at"))?;
    let detail: Vec<&str> = stderr_tail[at..]
        .iter()
        .map(|s| s.trim())
        .filter(|l| !l.is_empty() && !l.starts_with("note:"))
        .collect();
    Some(detail.join(" "))
}
