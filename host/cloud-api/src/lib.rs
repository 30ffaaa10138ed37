//! The one place for the types that cross the wire between the Tether agent
//! and a control plane (a real cloud, or `tether-cloud`): ARM resources and
//! errors, Entra-shaped identity messages, the agent-service messages, the
//! cloud metadata document, and the JWTs both sides sign and verify.
//!
//! Both the agent (`host/`) and `tether-cloud` (`tests/cloud`) use these
//! types, so the two can never disagree about a field's name or shape.

pub mod agent;
pub mod arm;
pub mod identity;
pub mod jwt;
pub mod metadata;
pub mod names;
pub mod pem;
pub mod run_command;
