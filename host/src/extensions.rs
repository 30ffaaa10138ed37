//! Extensions on this machine. Today: running a component for
//! development ([`dev`]); packages, policy and the manager come next.

pub mod dev;
