//! Extensions on this machine: the local trust store, the admission
//! checks, the manager, and the unsigned development path (`dev`).

pub mod admission;
pub mod capabilities;
pub mod dev;
pub mod manager;
pub mod outbox;
pub mod owner;
pub mod reconcile;
pub mod run_command;
pub mod schedule;
pub mod trust;
