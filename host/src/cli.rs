//! The command line: argument parsing and output only. Each command parses
//! its flags, calls one operation of the library, and renders the result as
//! text or, with `--json`, as JSON. Exit codes are stable ([`exit::Exit`]).

mod check;
mod config;
mod extension;
mod lifecycle;
mod output;
mod rename;
mod service;
mod support;
mod upgrade;
mod version;

pub use crate::exit::{self, Exit};

use clap::{Parser, Subcommand};
use output::Output;
use std::process::ExitCode;

/// Tether connects this machine to a cloud control plane and extends it
/// with signed, sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "tether", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Print the result as JSON (errors too, as {"error": {...}}).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log more (repeat for more still) to stderr.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Do not color output.
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Write Tether's own log (info and up) to stderr as it works.
    #[arg(long, global = true)]
    pub log_stderr: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show Tether's version, commit, wasmtime version and contract version.
    Version,
    /// Connect this machine to a cloud.
    Connect(Box<lifecycle::ConnectArgs>),
    /// Disconnect: remove every extension, delete the machine resource, and
    /// remove the local registration (settings are kept).
    Disconnect(lifecycle::DisconnectArgs),
    /// Rename the machine resource: its extensions are recorded, removed,
    /// the resource deleted, the machine connected under the new name and
    /// the extensions redeployed, as one journaled command.
    Rename(rename::RenameArgs),
    /// Unregister in the background, leaving the machine ready to connect
    /// again; `tether reset status` follows it.
    Reset(lifecycle::ResetArgs),
    /// Sign in once; connect, disconnect and reset use the session.
    Login(lifecycle::LoginArgs),
    /// End the sign-in session and show what it was.
    Logout,
    /// Show the machine's registration and status.
    Show(lifecycle::ShowArgs),
    /// Make a machine key for pre-provisioned onboarding; prints its public key.
    Genkey,
    /// Write a zip of logs, journal, state and settings, secrets redacted.
    Logs(support::LogsArgs),
    /// Show the license.
    License,
    /// Operator settings: list, get, set, clear, info.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Check that this machine can reach the cloud's endpoints.
    Check(check::CheckArgs),
    /// Work with extensions.
    #[command(subcommand)]
    Extension(extension::ExtensionCommand),
    /// The host service: run it, register it with the OS, see its status.
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Move Tether to another version with the platform's package manager
    /// (apt-get, dnf, yum, zypper, msiexec), as `azcmagent upgrade` does.
    // Its --version is the version to move to, as azcmagent's; `tether
    // version` tells this one.
    #[command(disable_version_flag = true)]
    Upgrade(upgrade::UpgradeArgs),
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                _ if !e.use_stderr() => Exit::Success,
                clap::error::ErrorKind::MissingRequiredArgument
                | clap::error::ErrorKind::MissingSubcommand
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Exit::MissingParameter
                }
                _ => Exit::Usage,
            };
            let _ = e.print();
            return code.into();
        }
    };
    // The service sets up its own logging (a rotating file and stderr).
    if !matches!(
        cli.command,
        Command::Service(service::ServiceCommand::Run(_))
    ) {
        init_logging(cli.global.verbose.max(u8::from(cli.global.log_stderr)));
    }
    let out = Output::new(cli.global.json);
    if crate::platform::is_admin()
        && !matches!(cli.command, Command::Version | Command::License)
        && let Err(error) =
            crate::platform::secure_state_root(crate::state::StateRoot::from_env().path())
    {
        out.error(Exit::Refused, &error);
        return Exit::Refused.into();
    }
    if !matches!(cli.command, Command::Version | Command::License)
        && let Err(error) = crate::state::schema::prepare(
            &crate::state::StateRoot::from_env(),
            crate::platform::is_admin(),
        )
    {
        let code = Exit::of(&error);
        out.error(code, &error);
        return code.into();
    }
    let result = match cli.command {
        Command::Version => version::run(&out),
        Command::Connect(args) => lifecycle::run_connect(&out, *args),
        Command::Disconnect(args) => lifecycle::run_disconnect(&out, args),
        Command::Show(args) => lifecycle::run_show(&out, args),
        Command::Reset(args) => lifecycle::run_reset(&out, args),
        Command::Rename(args) => rename::run(&out, args),
        Command::Login(args) => lifecycle::run_login(&out, args),
        Command::Logout => lifecycle::run_logout(&out),
        Command::Genkey => lifecycle::run_genkey(&out),
        Command::Logs(args) => support::run_logs(&out, args),
        Command::License => support::run_license(&out),
        Command::Config(command) => config::run(&out, command),
        Command::Check(args) => check::run(&out, args),
        Command::Extension(command) => extension::run(&out, command),
        Command::Service(command) => service::run(&out, command, cli.global.verbose),
        Command::Upgrade(args) => upgrade::run(&out, args),
    };
    match result {
        Ok(code) => code.into(),
        Err(error) => {
            let code = Exit::of(&error);
            out.error(code, &error);
            code.into()
        }
    }
}

/// Refuses `what` unless this process runs as root (administrator).
fn require_admin(what: &str) -> anyhow::Result<()> {
    if crate::platform::is_admin() {
        Ok(())
    } else {
        Err(exit::coded(
            Exit::NotAdmin,
            format!(
                "`{what}` needs root or administrator rights: {}",
                crate::platform::NEEDS_ADMIN
            ),
        ))
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // Extensions' own lines are rendered by the commands that ran them;
    // they reach the log stream only when asked for.
    let default = match verbose {
        0 => "warn,tether_guest=off",
        1 => "info,tether_guest=off",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::service::logfile::RedactedStderr)
        .with_target(false)
        .try_init();
}
