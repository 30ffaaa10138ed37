//! `tether service run | install | uninstall | status | reload`.

use super::exit::coded;
use super::{Exit, Output};
use crate::service::control::Request;
use crate::service::control::client::ask;
use crate::service::unit::{self, UNIT_DIR};
use crate::service::{ServiceOptions, metadata};
use crate::state::StateRoot;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum ServiceCommand {
    /// Run the service in the foreground (systemd and the Windows Service
    /// Control Manager start it this way).
    Run(RunArgs),
    /// Register the service with the operating system, enabled at boot, and
    /// start it (root/administrator).
    Install(InstallArgs),
    /// Stop the service and remove its registration; state stays (root/administrator).
    Uninstall(UnitArgs),
    /// Whether the service is installed and running, and its live status.
    Status(UnitArgs),
    /// Make the running service re-read the settings now.
    Reload,
    /// The proxy for the machine's other services (a systemd drop-in; the
    /// machine-wide environment on Windows), distinct from `proxy.url`,
    /// which only Tether uses.
    #[command(subcommand)]
    ProxyEnv(ProxyEnvCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum ProxyEnvCommand {
    /// Give the machine's services HTTPS_PROXY, HTTP_PROXY and NO_PROXY.
    Set(ProxyEnvSetArgs),
    /// Take them away again.
    Clear(UnitArgs),
}

#[derive(Debug, clap::Args)]
pub struct ProxyEnvSetArgs {
    /// http://host:port or https://host:port (no credentials).
    pub url: String,
    /// Hosts, domains or ranges that bypass it (NO_PROXY), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub bypass: Vec<String>,
    #[command(flatten)]
    pub unit: UnitArgs,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// How often to heartbeat ("5m", "30s").
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,
    /// How often to reconcile extensions even when the cloud's sequence
    /// has not moved.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub reconcile_interval: Duration,
    /// The metadata service's port on 127.0.0.1 and ::1 (0: any free port).
    #[arg(long, default_value_t = metadata::DEFAULT_PORT)]
    pub metadata_port: u16,
    /// Where the identity endpoint writes its one-time key files. Default:
    /// Azure Arc's directory (/var/opt/azcmagent/tokens,
    /// %ProgramData%\AzureConnectedMachineAgent\Tokens), where the Azure
    /// SDKs' Arc credential looks, when the state root is the default one;
    /// `tokens/` in the state root otherwise.
    #[arg(long, env = "TETHER_IDENTITY_TOKENS_DIR")]
    pub identity_tokens_dir: Option<PathBuf>,
    /// Run under the Windows Service Control Manager.
    #[arg(long, hide = true)]
    pub windows_service: bool,
}

#[derive(Debug, clap::Args)]
pub struct UnitArgs {
    /// Where the systemd unit lives.
    #[arg(long, default_value = UNIT_DIR)]
    pub unit_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub unit: UnitArgs,
    /// Enable at boot but do not start now.
    #[arg(long)]
    pub no_start: bool,
}

pub fn run(out: &Output, command: ServiceCommand, verbose: u8) -> anyhow::Result<Exit> {
    let state = StateRoot::from_env();
    match command {
        ServiceCommand::Run(args) => {
            super::require_admin("tether service run")?;
            if args.heartbeat_interval.is_zero() || args.reconcile_interval.is_zero() {
                return Err(coded(
                    Exit::Usage,
                    "intervals must be longer than zero (for example --heartbeat-interval 30s)",
                ));
            }
            let options = ServiceOptions {
                heartbeat_interval: args.heartbeat_interval,
                reconcile_interval: args.reconcile_interval,
                metadata_port: args.metadata_port,
                identity_tokens_dir: args.identity_tokens_dir,
            };
            crate::service::logfile::init(state.path(), verbose)?;
            if args.windows_service {
                crate::service::windows::run_dispatcher(state, options)?;
            } else {
                crate::service::run(state, options)?;
            }
            Ok(Exit::Success)
        }
        ServiceCommand::Install(args) => {
            super::require_admin("tether service install")?;
            let exe = std::env::current_exe()?;
            let done = crate::service::install(&args.unit.unit_dir, &exe, &state, !args.no_start)?;
            print_registration(out, &done, "installed");
            Ok(Exit::Success)
        }
        ServiceCommand::Uninstall(args) => {
            super::require_admin("tether service uninstall")?;
            let done = crate::service::uninstall(&args.unit_dir)?;
            print_registration(out, &done, "uninstalled");
            Ok(Exit::Success)
        }
        ServiceCommand::Status(args) => {
            let registration = crate::service::registration_status(&args.unit_dir);
            let live = ask(&state, &Request::Status, &mut |_| {})?;
            if out.is_json() {
                out.json(&json!({
                    "running": live.is_some(),
                    "registration": registration,
                    "live": live,
                }));
            } else {
                out.line(format_args!(
                    "Registration: {} ({}{})",
                    if registration.installed {
                        "installed"
                    } else {
                        "not installed"
                    },
                    registration.manager,
                    registration
                        .state
                        .as_deref()
                        .map(|s| format!(", {s}"))
                        .unwrap_or_default()
                ));
                match &live {
                    Some(live) => print_live(out, live),
                    None => out.line("Service: not running"),
                }
            }
            Ok(if live.is_some() {
                Exit::Success
            } else {
                Exit::ServiceNotRunning
            })
        }
        ServiceCommand::ProxyEnv(command) => {
            super::require_admin("tether service proxy-env")?;
            let done = match command {
                ProxyEnvCommand::Set(args) => {
                    crate::service::proxy_env::set(&args.unit.unit_dir, &args.url, &args.bypass)
                        .map_err(|e| coded(Exit::Usage, format!("{e:#}")))?
                }
                ProxyEnvCommand::Clear(args) => crate::service::proxy_env::clear(&args.unit_dir)?,
            };
            if out.is_json() {
                out.json(&done);
            } else if done.url.is_empty() {
                out.line("The machine's services have no proxy from Tether.");
            } else {
                out.line(format_args!(
                    "The machine's services use {}{}.",
                    done.url,
                    if done.bypass.is_empty() {
                        String::new()
                    } else {
                        format!(", bypassing {}", done.bypass.join(","))
                    }
                ));
            }
            for note in &done.notes {
                out.note(note);
            }
            Ok(Exit::Success)
        }
        ServiceCommand::Reload => {
            super::require_admin("tether service reload")?;
            match ask(&state, &Request::Reload, &mut |_| {})? {
                Some(_) => {
                    if out.is_json() {
                        out.json(&json!({"reloaded": true}));
                    } else {
                        out.line("The service reloaded the settings.");
                    }
                    Ok(Exit::Success)
                }
                None => Err(coded(
                    Exit::ServiceNotRunning,
                    "the service is not running; settings take effect when it starts (`tether service run`, or `systemctl start tether`)",
                )),
            }
        }
    }
}

fn print_registration(out: &Output, done: &unit::Registration, what: &str) {
    if out.is_json() {
        out.json(done);
        return;
    }
    match &done.unit {
        Some(unit) => out.line(format_args!(
            "Service {what} ({}: {}).",
            done.manager,
            unit.display()
        )),
        None => out.line(format_args!("Service {what} ({}).", done.manager)),
    }
    for note in &done.notes {
        out.note(note);
    }
}

fn print_live(out: &Output, live: &serde_json::Value) {
    let time = |v: &serde_json::Value| {
        v.as_u64()
            .map(crate::util::rfc3339)
            .unwrap_or_else(|| "never".into())
    };
    out.line(format_args!("Service: running (pid {})", live["pid"]));
    out.line(format_args!(
        "Connected: {}{}",
        live["connected"].as_bool().unwrap_or(false),
        live["cloudStatus"]
            .as_str()
            .map(|s| format!(" (cloud says {s})"))
            .unwrap_or_default()
    ));
    out.line(format_args!(
        "Last heartbeat: {}",
        time(&live["lastHeartbeat"])
    ));
    out.line(format_args!(
        "Next heartbeat: {}",
        time(&live["nextHeartbeatAt"])
    ));
    if let Some(e) = live["lastHeartbeatError"].as_str() {
        out.line(format_args!(
            "Last heartbeat error ({} in a row): {e}",
            live["consecutiveFailures"]
        ));
    }
    out.line(format_args!(
        "Last reconcile: {}",
        time(&live["lastReconcile"])
    ));
    for endpoint in live["metadataEndpoints"].as_array().into_iter().flatten() {
        out.line(format_args!(
            "Metadata: {}",
            endpoint.as_str().unwrap_or_default()
        ));
    }
    out.line(format_args!(
        "Control: {}",
        live["control"].as_str().unwrap_or_default()
    ));
    out.line(format_args!(
        "Log: {}",
        live["logFile"].as_str().unwrap_or_default()
    ));
    if let Some(e) = live["settingsError"].as_str() {
        out.line(format_args!(
            "Settings: broken file, previous settings kept: {e}"
        ));
    }
}
