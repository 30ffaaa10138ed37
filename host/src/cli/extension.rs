//! `tether extension …`.

use super::exit::coded;
use super::{Exit, Output};
use crate::extensions::dev::{self, RunLocal, RunLocalReport};
use crate::runtime::{
    CacheOutcome, HostPattern, LogRecord, LogSource, log_level_name, status_name,
};
use crate::state::StateRoot;
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ExtensionCommand {
    /// DEVELOPMENT ONLY: run one call of an unsigned component, with default
    /// limits and nothing granted but what the flags name. Installed
    /// extensions are always signed packages.
    ///
    /// CALL is install, enable, disable, uninstall, update FROM-VERSION, or
    /// invoke COMMAND [ARGS…].
    #[command(name = "run-local")]
    RunLocal(RunLocalArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunLocalArgs {
    /// The component (.wasm built for wasm32-wasip2).
    pub component: PathBuf,
    /// The call and its arguments (put `--` before arguments that start with `-`).
    #[arg(required = true, num_args = 1..)]
    pub call: Vec<String>,
    /// How long the call may run, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub timeout_ms: u64,
    /// How much memory the component may use, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub memory_mib: u64,
    /// Public settings: a JSON object, or @FILE holding one.
    #[arg(long)]
    pub settings: Option<String>,
    /// Protected settings: @FILE holding a JSON object (or the JSON itself).
    #[arg(long)]
    pub protected_settings: Option<String>,
    /// Allow outbound HTTP to scheme://host[:port] (repeatable).
    #[arg(long = "allow-http", value_name = "ORIGIN")]
    pub allow_http: Vec<String>,
    /// Compile afresh instead of using the compiled-component cache.
    #[arg(long)]
    pub no_cache: bool,
}

pub fn run(out: &Output, command: ExtensionCommand) -> anyhow::Result<Exit> {
    match command {
        ExtensionCommand::RunLocal(args) => run_local(out, args),
    }
}

fn run_local(out: &Output, args: RunLocalArgs) -> anyhow::Result<Exit> {
    let call = dev::parse_call(&args.call).map_err(|e| coded(Exit::Usage, e))?;
    let settings = match &args.settings {
        Some(text) => {
            dev::parse_settings(text, "settings").map_err(|e| coded(Exit::BadInput, e))?
        }
        None => Default::default(),
    };
    let protected_settings = match &args.protected_settings {
        Some(text) => {
            dev::parse_settings(text, "protected settings").map_err(|e| coded(Exit::BadInput, e))?
        }
        None => Default::default(),
    };
    let outbound = args
        .allow_http
        .iter()
        .map(|s| s.parse::<HostPattern>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| coded(Exit::Usage, e))?;
    if !args.component.is_file() {
        return Err(coded(
            Exit::BadInput,
            format!(
                "{} is not a file; give the path of a component built for wasm32-wasip2",
                args.component.display()
            ),
        ));
    }
    let request = RunLocal {
        component: args.component,
        call,
        limits: dev::limits(args.memory_mib, args.timeout_ms),
        settings,
        protected_settings,
        outbound,
        use_cache: !args.no_cache,
    };
    let report = dev::run_local(&StateRoot::from_env(), request)
        .map_err(|e| coded(Exit::BadInput, format!("{e:#}")))?;
    render(out, report)
}

fn render(out: &Output, report: RunLocalReport) -> anyhow::Result<Exit> {
    if out.is_json() {
        let (ok, output, logs, dropped, status, error) = match &report.result {
            Ok(outcome) => (
                true,
                outcome.output.clone(),
                &outcome.logs,
                outcome.dropped_logs,
                outcome
                    .status
                    .as_ref()
                    .map(|s| json!({"state": status_name(s.state), "message": s.message})),
                None,
            ),
            Err(e) => (
                false,
                None,
                &report.failure_logs,
                0,
                None,
                Some(json!({"code": e.kind.code(), "message": e.to_string()})),
            ),
        };
        out.json(&json!({
            "extension": report.extension,
            "call": report.call,
            "ok": ok,
            "output": output,
            "logs": logs,
            "droppedLogs": dropped,
            "status": status,
            "error": error,
            "cache": cache_name(report.cache),
        }));
        return Ok(match &report.result {
            Ok(_) => Exit::Success,
            Err(e) if e.kind.is_trap() => Exit::ExtensionStopped,
            Err(_) => Exit::ExtensionError,
        });
    }
    out.note("note: development run of an unsigned component (tether extension run-local)");
    let logs = match &report.result {
        Ok(outcome) => &outcome.logs,
        Err(_) => &report.failure_logs,
    };
    print_logs(out, &report.extension, logs);
    match report.result {
        Ok(outcome) => {
            if let Some(status) = &outcome.status {
                out.note(format_args!(
                    "[{}] status: {}: {}",
                    report.extension,
                    status_name(status.state),
                    status.message
                ));
            }
            if let Some(output) = outcome.output {
                out.line(output);
            } else {
                out.note(format_args!("{} succeeded", report.call));
            }
            Ok(Exit::Success)
        }
        Err(e) => Err(e.into()),
    }
}

fn print_logs(out: &Output, extension: &str, logs: &[LogRecord]) {
    for record in logs {
        let source = match record.source {
            LogSource::Log => "",
            LogSource::Stdout => " stdout",
            LogSource::Stderr => " stderr",
            LogSource::Host => " host",
        };
        out.note(format_args!(
            "[{extension}]{source} {}: {}",
            log_level_name(record.level),
            record.message
        ));
    }
}

fn cache_name(cache: CacheOutcome) -> &'static str {
    match cache {
        CacheOutcome::Compiled => "compiled",
        CacheOutcome::CompiledAndStored => "compiled-and-stored",
        CacheOutcome::Loaded => "loaded",
        CacheOutcome::Replaced => "replaced",
    }
}
