//! `tether extension …`.

use super::exit::coded;
use super::{Exit, Output, require_admin};
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
    /// The local trust store of publisher keys.
    #[command(subcommand)]
    Trust(TrustCommand),
    #[command(flatten)]
    Manage(ManageCommand),
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
        ExtensionCommand::Trust(command) => run_trust(out, command),
        ExtensionCommand::Manage(command) => run_manage(out, command),
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
        CacheOutcome::Memory => "memory",
    }
}

/// `tether extension trust …`
#[derive(Debug, clap::Subcommand)]
pub enum TrustCommand {
    /// Trust a publisher's key (root only). A key is trusted for exactly one publisher.
    Add {
        #[arg(long)]
        publisher: String,
        /// The line `tether-ext keygen` printed, or its base64 part.
        #[arg(long)]
        key: String,
    },
    /// The trusted keys.
    List,
    /// Stop trusting a publisher's keys (or one of them).
    Remove {
        #[arg(long)]
        publisher: String,
        #[arg(long)]
        key_id: Option<String>,
    },
}

/// Tells the running service, if any, to read its settings and trust anew.
fn reload_service(state: &StateRoot) {
    let reload = crate::service::control::Request::Reload;
    if let Err(e) = crate::service::control::client::ask(state, &reload, &mut |_| {}) {
        tracing::warn!("the running service could not be told to reload: {e:#}");
    }
}

pub fn run_trust(out: &Output, command: TrustCommand) -> anyhow::Result<Exit> {
    use crate::extensions::trust::TrustStore;
    let state = StateRoot::from_env();
    match command {
        TrustCommand::Add { publisher, key } => {
            require_admin("tether extension trust add")?;
            let added = TrustStore::add(&state, &publisher, &key)
                .map_err(|e| coded(Exit::Usage, format!("{e:#}")))?;
            if out.is_json() {
                out.json(&added)
            } else {
                out.line(format_args!(
                    "Trusted key {} for publisher {}.",
                    added.key_id, added.publisher
                ))
            }
        }
        TrustCommand::List => {
            let store = TrustStore::load(&state)?;
            if out.is_json() {
                out.json(&store.keys);
            } else {
                for k in &store.keys {
                    out.line(format_args!("{:<24} {}", k.publisher, k.key_id));
                }
            }
        }
        TrustCommand::Remove { publisher, key_id } => {
            require_admin("tether extension trust remove")?;
            let n = TrustStore::remove(&state, &publisher, key_id.as_deref())
                .map_err(|e| coded(Exit::Usage, format!("{e:#}")))?;
            // The running service drops what it verified with that key.
            reload_service(&state);
            if out.is_json() {
                out.json(&json!({"removed": n}))
            } else {
                out.line(format_args!("Removed {n} key(s) of {publisher}."))
            }
        }
    }
    Ok(Exit::Success)
}

fn read_source(source: &str) -> anyhow::Result<Vec<u8>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        crate::cloud::proxy::install_crypto();
        let client = reqwest::blocking::Client::builder().no_proxy().build()?;
        let mut response = client
            .get(source)
            .send()
            .map_err(|e| coded(Exit::Network, format!("could not download {source}: {e}")))?;
        if !response.status().is_success() {
            return Err(coded(
                Exit::Network,
                format!("downloading {source} answered {}", response.status()),
            ));
        }
        let cap = tether_package::ReadLimits::default().package_bytes;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut response, cap + 1), &mut bytes)?;
        if bytes.len() as u64 > cap {
            return Err(coded(
                Exit::BadInput,
                format!("{source} is larger than the {cap} bytes a package may be"),
            ));
        }
        return Ok(bytes);
    }
    std::fs::read(source).map_err(|e| {
        coded(
            Exit::BadInput,
            format!("could not read the package {source}: {e}"),
        )
    })
}

pub fn run_manage(out: &Output, command: ManageCommand) -> anyhow::Result<Exit> {
    use crate::extensions::manager::{Installed, installed, installed_one, parse_id};
    use crate::extensions::owner::{self, ExtensionOp};
    let state = StateRoot::from_env();
    let show_record = |e: &Installed, text: String| {
        if out.is_json() {
            out.json(e)
        } else {
            out.line(text)
        }
    };
    match command {
        // Reading needs neither root, the lock, nor a runtime, and never
        // recovers or deletes anything.
        ManageCommand::List => {
            let list = installed(&state);
            if out.is_json() {
                out.json(&list);
            } else if list.is_empty() {
                out.line("No extensions are installed.");
            } else {
                for e in &list {
                    out.line(format_args!(
                        "{:<32} {:<10} {:<8} {:<13} {}",
                        e.id,
                        e.version,
                        if e.enabled { "enabled" } else { "disabled" },
                        e.state,
                        e.message
                    ));
                }
            }
        }
        ManageCommand::Show { id } => {
            let id = parse_id(&id)?;
            let e = installed_one(&state, &id)?
                .ok_or_else(|| coded(Exit::Usage, format!("{id} is not installed")))?;
            // The record and, apart, the latest document it reported.
            let mut view = serde_json::to_value(&e)?;
            if let Some(document) = crate::extensions::manager::document(&state, &id) {
                view["document"] = document;
            }
            if out.is_json() {
                out.json(&view)
            } else {
                out.line(serde_json::to_string_pretty(&view)?)
            }
        }
        ManageCommand::Install {
            source,
            allow_downgrade,
        } => {
            require_admin("tether extension install")?;
            let bytes = read_source(&source)?;
            let answer = owner::run(&state, ExtensionOp::install(&bytes, allow_downgrade))?;
            let e: Installed = serde_json::from_value(answer)?;
            show_record(&e, format!("Installed and enabled {} {}.", e.id, e.version));
        }
        ManageCommand::Remove { id, all } => {
            require_admin("tether extension remove")?;
            let ids: Vec<String> = match (id, all) {
                (Some(id), false) => vec![parse_id(&id)?.to_string()],
                (None, true) => installed(&state).into_iter().map(|e| e.id).collect(),
                _ => {
                    return Err(coded(
                        Exit::Usage,
                        "name one extension (Publisher/Name) or --all",
                    ));
                }
            };
            let answer = owner::run(&state, ExtensionOp::Remove { ids: ids.clone() })?;
            for w in answer["warnings"].as_array().into_iter().flatten() {
                out.note(w.as_str().unwrap_or_default());
            }
            if out.is_json() {
                out.json(&json!({"removed": ids}))
            } else {
                out.line(format_args!("Removed {} extension(s).", ids.len()))
            }
        }
        ManageCommand::Enable { id } => {
            require_admin("tether extension enable")?;
            let answer = owner::run(&state, ExtensionOp::Enable { id })?;
            let e: Installed = serde_json::from_value(answer)?;
            show_record(&e, format!("{} is enabled.", e.id));
        }
        ManageCommand::Disable { id } => {
            require_admin("tether extension disable")?;
            let answer = owner::run(&state, ExtensionOp::Disable { id })?;
            let e: Installed = serde_json::from_value(answer)?;
            show_record(&e, format!("{} is disabled.", e.id));
        }
        ManageCommand::Reconcile => {
            require_admin("tether extension reconcile")?;
            let answer = owner::run(&state, ExtensionOp::Reconcile)?;
            let outcomes: Vec<crate::extensions::reconcile::Outcome> =
                serde_json::from_value(answer)?;
            if out.is_json() {
                out.json(&outcomes);
            } else if outcomes.is_empty() {
                out.line("Nothing to do: no extensions are assigned to this machine.");
            } else {
                for o in &outcomes {
                    out.line(format_args!(
                        "{:<24} {:<12} {}",
                        o.name, o.action, o.message
                    ));
                }
            }
        }
        ManageCommand::Invoke { id, command, args } => {
            require_admin("tether extension invoke")?;
            // The running service hosts the extensions: it runs the command.
            let answer = owner::run(
                &state,
                ExtensionOp::Invoke {
                    id: id.clone(),
                    command,
                    args,
                },
            )?;
            let result: crate::service::InvokeResult = serde_json::from_value(answer)?;
            if out.is_json() {
                out.json(&result);
            } else {
                print_logs(out, &id, &result.logs);
                if let Some(o) = result.output {
                    out.line(o);
                }
            }
        }
    }
    Ok(Exit::Success)
}

/// Commands on installed (signed) extensions.
#[derive(Debug, clap::Subcommand)]
pub enum ManageCommand {
    /// Installed extensions with version, state and status.
    List,
    /// One installed extension.
    Show { id: String },
    /// Install (or update to) a signed package from a file or URL (root only).
    Install {
        source: String,
        /// Allow a version lower than one installed here before (a local
        /// operator's decision; the cloud can never make it).
        #[arg(long)]
        allow_downgrade: bool,
    },
    /// Remove an extension, or --all (root only): disable, uninstall, data deleted.
    Remove {
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Enable an installed extension.
    Enable { id: String },
    /// Disable an installed extension.
    Disable { id: String },
    /// Match the cloud's desired extensions once: install, update,
    /// reconfigure and remove, and report each status (the service does
    /// this on its own schedule).
    Reconcile,
    /// Run an on-demand command of an installed extension.
    Invoke {
        id: String,
        command: String,
        args: Vec<String>,
    },
}
