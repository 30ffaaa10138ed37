//! Talking to a cloud: which cloud (built-in names or a metadata URL),
//! which proxy each service's traffic takes, and the connectivity check.

pub mod agent;
pub mod arm;
pub mod check;
pub mod endpoints;
pub mod proxy;

pub use endpoints::{CloudSpec, Endpoints};
pub use proxy::{ProxyPolicy, Route};
