//! Tether, the agent: connects a machine to a control plane and extends it
//! with signed, sandboxed WebAssembly components.
//!
//! The binary (`src/main.rs`) is thin: [`cli`] parses a command, calls one
//! operation of this library and renders its result. Each other module is
//! one concern; see `host/README.md` for the map.

pub mod auth;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod diagnostics;
pub mod exit;
pub mod extensions;
pub mod lifecycle;
pub mod platform;
pub mod runtime;
pub mod service;
pub mod state;
pub mod util;
pub mod version;
