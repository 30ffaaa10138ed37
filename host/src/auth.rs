//! Signing in: service principal with a secret or a certificate, an access
//! token given outright, the device code flow, and the browser flow
//! (authorization code with PKCE and a loopback listener). Each yields an
//! access token for Resource Manager. Secrets are never logged nor echoed.

mod browser;
pub mod certificate;
mod device_code;
pub mod session;
mod sign_in;
mod token;

pub use sign_in::{SignIn, SignInFlags};
pub use token::{AuthFailure, arm_token, arm_tokens};

/// The sign-in the flags name; without any, the `tether login` session
/// when there is one; else the interactive default. Flags that do not
/// make a sign-in are the operator's argument error.
pub fn resolve(
    flags: &SignInFlags,
    state: &crate::state::StateRoot,
    proxy: &crate::cloud::ProxyPolicy,
) -> anyhow::Result<SignIn> {
    if flags.is_empty()
        && let Some(from_session) = session::sign_in_from_session(state, proxy)?
    {
        return Ok(from_session);
    }
    SignIn::from_flags(flags)
        .map_err(|e| crate::exit::coded(crate::exit::Exit::Usage, format!("{e:#}")))
}
