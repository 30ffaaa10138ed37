//! Talking to a cloud: which cloud (built-in names or a metadata URL),
//! which proxy each service's traffic takes, and the connectivity check.

pub mod agent;
pub mod arm;
pub mod check;
pub mod endpoints;
pub mod identity_endpoint;
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
        Unreachable {
            what: what.into(),
            cause: crate::util::error_chain(&error),
        }
        .into()
    }
}
pub use proxy::{ProxyPolicy, Route};

/// Reads the CA certificate (PEM) a cloud's endpoints are to be trusted
/// with (`--cloud-ca-cert`): a file that cannot be read, or holds no PEM
/// certificate, is the operator's input error.
pub fn read_ca_certificate(path: &std::path::Path) -> anyhow::Result<String> {
    use crate::exit::{Exit, coded};
    let text = std::fs::read_to_string(path).map_err(|e| {
        coded(
            Exit::BadInput,
            format!("could not read the CA certificate {}: {e}", path.display()),
        )
    })?;
    if reqwest::Certificate::from_pem(text.as_bytes()).is_err()
        || !text.contains("-----BEGIN CERTIFICATE-----")
    {
        return Err(coded(
            Exit::BadInput,
            format!(
                "{} is not a PEM certificate (-----BEGIN CERTIFICATE-----); give the CA certificate the cloud's endpoints are signed with",
                path.display()
            ),
        ));
    }
    Ok(text)
}
