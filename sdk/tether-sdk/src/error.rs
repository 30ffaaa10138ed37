use crate::bindings::tether::extension::types::Error as WitError;
use std::fmt;

/// An error an extension returns to the host: a short, stable `code` and a
/// message for people. The host shows both, tagged with the extension's id.
///
/// ```
/// let err = tether_sdk::Error::new("bad-setting", "`interval` must be positive");
/// assert_eq!(err.code(), "bad-setting");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: String,
    message: String,
}

impl Error {
    /// An error with the given code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The error `invoke` returns for a command the extension does not know.
    ///
    /// ```
    /// let err = tether_sdk::Error::unknown_command("frobnicate");
    /// assert_eq!(err.code(), "unknown-command");
    /// ```
    pub fn unknown_command(command: &str) -> Self {
        Self::new(
            "unknown-command",
            format!("this extension has no command `{command}`"),
        )
    }

    /// An error about an argument or setting the caller got wrong.
    ///
    /// ```
    /// let err = tether_sdk::Error::invalid_argument("NAME is required");
    /// assert_eq!(err.code(), "invalid-argument");
    /// ```
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new("invalid-argument", message)
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for WitError {
    fn from(e: Error) -> Self {
        WitError {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<WitError> for Error {
    fn from(e: WitError) -> Self {
        Error {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new("invalid-json", e.to_string())
    }
}
