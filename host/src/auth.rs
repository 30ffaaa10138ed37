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
