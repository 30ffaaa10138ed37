//! Talking to a cloud: which cloud (built-in names or a metadata URL),
//! which proxy each service's traffic takes, and the connectivity check.

pub mod agent;
pub mod arm;
pub mod check;
pub mod endpoints;
pub mod proxy;

pub use endpoints::{CloudSpec, Endpoints};

/// A cloud endpoint did not answer at all (name resolution, connection,
/// TLS, timeout): the network's fault, not the cloud's word. Commands end
/// with the network exit code for it.
#[derive(Debug, thiserror::Error)]
#[error("could not reach {what}: {cause}")]
pub struct Unreachable {
    pub what: String,
    pub cause: String,
}

/// Turns a request that got no answer into [`Unreachable`], naming `what`.
pub fn unreachable(what: impl Into<String>) -> impl FnOnce(reqwest::Error) -> anyhow::Error {
    move |error| {
        let mut cause = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            cause.push_str(": ");
            cause.push_str(&inner.to_string());
            source = inner.source();
        }
        Unreachable {
            what: what.into(),
            cause,
        }
        .into()
    }
}
pub use proxy::{ProxyPolicy, Route};
