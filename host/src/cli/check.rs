//! `tether check`.

use super::exit::coded;
use super::{Exit, Output};
use crate::cloud::CloudSpec;
use crate::cloud::check;
use crate::config::SettingsStore;
use crate::state::StateRoot;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// AzureCloud, AzureUSGovernment, AzureChinaCloud, or a cloud metadata URL.
    #[arg(long, default_value = "AzureCloud")]
    pub cloud: String,
    /// A CA certificate (PEM) to trust for the cloud's endpoints.
    #[arg(long)]
    pub cloud_ca_cert: Option<PathBuf>,
    /// The region the machine would be onboarded to (reported only).
    #[arg(long)]
    pub location: Option<String>,
    /// Also report whether each name resolves to a private address.
    #[arg(long)]
    pub enable_pls_check: bool,
}

pub fn run(out: &Output, args: CheckArgs) -> anyhow::Result<Exit> {
    let spec = CloudSpec::parse(&args.cloud).map_err(|e| coded(Exit::Usage, format!("{e:#}")))?;
    let ca = args
        .cloud_ca_cert
        .as_deref()
        .map(crate::cloud::read_ca_certificate)
        .transpose()?
        .map(String::into_bytes);
    let settings = SettingsStore::new(&StateRoot::from_env()).load()?;
    let report = check::run(&settings, &spec, ca.as_deref(), args.enable_pls_check)
        .map_err(|e| coded(Exit::Network, format!("{e:#}")))?;
    let code = if report.all_reachable() {
        Exit::Success
    } else {
        Exit::Network
    };
    if out.is_json() {
        out.json(&report);
        return Ok(code);
    }
    out.line(format_args!(
        "cloud {}{}",
        report.cloud,
        args.location
            .map(|l| format!(", location {l}"))
            .unwrap_or_default()
    ));
    for e in &report.endpoints {
        let via = e
            .proxy
            .as_deref()
            .map(|p| format!("via {p}"))
            .unwrap_or_else(|| "direct".into());
        let state = if e.reachable {
            format!("reachable ({})", e.status.unwrap_or(0))
        } else {
            "UNREACHABLE".into()
        };
        let tls = match e.tls {
            "valid" => ", TLS valid",
            "invalid" => ", TLS INVALID",
            _ => "",
        };
        let private = match (e.private_checked, e.private) {
            (true, true) => ", private address",
            (true, false) => ", public address",
            _ => "",
        };
        out.line(format_args!(
            "{:<16} {:<4} {state}{tls}{private}, {} ms, {via} ({})  {}",
            e.name,
            e.service.name(),
            e.latency_ms,
            e.route,
            e.url
        ));
        if let Some(err) = &e.error {
            out.line(format_args!("                 {err}"));
        }
    }
    if code != Exit::Success {
        out.note("some endpoints are unreachable: check the network, the proxy settings (tether config list) and the firewall");
    }
    Ok(code)
}
