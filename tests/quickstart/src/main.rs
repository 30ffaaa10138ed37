//! `tether-quickstart`: the whole loop on one machine, saying what it does.
//!
//! Starts tether-cloud on loopback with a demo tenant, subscription and
//! service principal; connects this machine (state under a temporary
//! TETHER_HOME unless `--home` says otherwise); trusts a demo publisher;
//! deploys the sample extensions through the cloud; runs the host service
//! and shows them running and heartbeating; and on Ctrl-C (or at once with
//! `--non-interactive`) disconnects cleanly — extensions removed first —
//! and stops.

mod steps;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "tether-quickstart", version)]
pub struct Args {
    /// Where tether-cloud listens (loopback).
    #[arg(long, default_value = "127.0.0.1:8450")]
    pub listen: SocketAddr,
    /// Keep Tether's state here instead of a temporary directory.
    #[arg(long)]
    pub home: Option<PathBuf>,
    /// The `tether` binary (default: beside this one, built if missing).
    #[arg(long)]
    pub tether: Option<PathBuf>,
    /// Disconnect and stop as soon as everything is shown (for CI).
    #[arg(long)]
    pub non_interactive: bool,
    /// The service's heartbeat interval.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match steps::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
