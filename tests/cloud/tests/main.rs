//! tether-cloud driven over real HTTP on loopback: every grant, every ARM
//! verb, RBAC, long-running operations, the agent service and its clock,
//! the gallery, faults, persistence, and the command line.

mod support;

mod agent;
mod arm;
mod azure_sdk;
mod cli;
mod faults;
mod gallery;
mod identity;
mod persistence;
mod postgres;
mod run_commands;
mod tls;
