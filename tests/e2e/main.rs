//! End-to-end suites: the real `tether` binary, real components built for
//! wasm32-wasip2 (by `tests/artifacts`), real HTTP on loopback. One test
//! binary for all of them, so the two-core CI links once.

mod support;

mod attacks;
mod cache;
mod cli_run_local;
mod config;
mod containment;
mod contract;
mod extensions;
mod lifecycle;
mod operations;
mod outbound;
mod packages;
mod proxy;
mod rename;
mod run_commands;
mod samples;
mod schedules;
mod service;
mod state;
mod tiers;
mod version;
