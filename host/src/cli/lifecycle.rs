//! `tether connect`, `disconnect`, `show`, `genkey`.

use super::exit::coded;
use super::{Exit, Output, require_admin};
use crate::auth::{AuthFailure, SignIn, SignInFlags};
use crate::cloud::ProxyPolicy;
use crate::config::SettingsStore;
use crate::extensions::manager::Manager;
use crate::lifecycle::connect::{ConnectRequest, connect, parse_tags};
use crate::lifecycle::disconnect::{DisconnectRequest, disconnect, plan};
use crate::lifecycle::show::ShowView;
use crate::lifecycle::{LifecycleError, Registration, machine_key};
use crate::service::control::Request;
use crate::service::control::client::{Connection, ask};
use crate::state::StateRoot;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ConnectArgs {
    #[arg(long)]
    pub subscription_id: Option<String>,
    #[arg(long)]
    pub resource_group: Option<String>,
    /// The region (ARM location) of the machine resource.
    #[arg(long)]
    pub location: Option<String>,
    /// The machine resource's name (default: the host name).
    #[arg(long)]
    pub resource_name: Option<String>,
    /// Tags: "k=v,k2='v w'".
    #[arg(long)]
    pub tags: Option<String>,
    #[arg(long)]
    pub correlation_id: Option<String>,
    #[arg(long)]
    pub private_link_scope: Option<String>,
    /// AzureCloud (default), AzureUSGovernment, AzureChinaCloud, or a cloud metadata URL.
    #[arg(long)]
    pub cloud: Option<String>,
    /// A CA certificate (PEM) to trust for the cloud's endpoints.
    #[arg(long)]
    pub cloud_ca_cert: Option<PathBuf>,
    /// Skip the network check before connecting.
    #[arg(long)]
    pub ignore_network_check: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub sign_in: SignInFlags,
    /// Take flags from a JSON or YAML file (keys are the long flag names);
    /// the command line wins. Keeps secrets off command lines.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DisconnectArgs {
    #[command(flatten)]
    pub sign_in: SignInFlags,
    /// Remove only the local registration; leave the cloud resource alone.
    #[arg(long)]
    pub force_local_only: bool,
    /// List what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The tenant of the signing-in user, when it differs from the machine's.
    #[arg(long)]
    pub user_tenant_id: Option<String>,
    /// Take flags from a JSON or YAML file (keys are the long flag names).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// Only these properties (their names as in --json).
    pub properties: Vec<String>,
    /// Add the operating system's details.
    #[arg(long)]
    pub os: bool,
}

fn read_config_file(path: &PathBuf) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        coded(
            Exit::BadConfigFile,
            format!("could not read the config file {}: {e}", path.display()),
        )
    })?;
    let parsed: Result<Value, String> =
        if path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{') {
            serde_json::from_str(&text).map_err(|e| {
                format!(
                    "line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    e.classify_name()
                )
            })
        } else {
            serde_norway::from_str(&text).map_err(|e| {
                e.location()
                    .map(|l| format!("line {}, column {}", l.line(), l.column()))
                    .unwrap_or_else(|| "invalid YAML".into())
            })
        };
    // The file may hold secrets: errors name the place, never the content.
    parsed.map_err(|where_| {
        coded(
            Exit::BadConfigFile,
            format!(
                "the config file {} is not valid JSON or YAML ({where_})",
                path.display()
            ),
        )
    })
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected value",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

pub(super) fn from_config_file<T: for<'de> Deserialize<'de>>(path: &PathBuf) -> anyhow::Result<T> {
    let value = read_config_file(path)?;
    serde_json::from_value(value).map_err(|e| {
        let text = e.to_string();
        // Name the offending key (serde says "unknown field `x`"), not values.
        let detail = text.split(", expected").next().unwrap_or(&text).to_string();
        coded(Exit::BadConfigFile, format!("the config file {} has a problem: {detail}; its keys are the long flag names, such as subscription-id", path.display()))
    })
}

fn require<'a>(value: &'a Option<String>, flag: &str) -> anyhow::Result<&'a str> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            coded(
                Exit::MissingParameter,
                format!("--{flag} is required (on the command line or in --config)"),
            )
        })
}

/// Fixes the exit code of a lifecycle or sign-in failure on the error, so
/// that later context cannot hide it.
pub(super) fn lifecycle_error(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<LifecycleError>().is_some() || e.downcast_ref::<AuthFailure>().is_some() {
        coded(Exit::of(&e), format!("{e:#}"))
    } else {
        e
    }
}

pub(super) fn resolve_sign_in(
    flags: &SignInFlags,
    state: &StateRoot,
    settings: &crate::config::Settings,
) -> anyhow::Result<SignIn> {
    crate::auth::resolve(flags, state, &ProxyPolicy::from_settings(settings))
        .map_err(lifecycle_error)
}

/// Keeps the failure for `show`'s last error.
pub(super) fn record(state: &StateRoot, e: &anyhow::Error) {
    let code = super::Exit::of(e).name();
    crate::lifecycle::status::record_error(state, code, &format!("{e:#}"));
}

/// An ARM token for this machine's cloud, signed in here, where the
/// operator sees any prompt; the service or a background reset gets only
/// the token.
fn sign_in_here(
    out: &Output,
    sign_in: &SignIn,
    registration: &Registration,
    settings: &crate::config::Settings,
) -> anyhow::Result<String> {
    crate::auth::arm_token(
        sign_in,
        &registration.endpoints,
        &ProxyPolicy::from_settings(settings),
        registration.ca_pem(),
        &mut say(out),
    )
    .map_err(lifecycle_error)
}

/// The service's state as `show` reports it.
pub(super) fn say(out: &Output) -> impl FnMut(&str) + '_ {
    move |text: &str| out.note(text)
}

pub fn run_connect(out: &Output, mut args: ConnectArgs) -> anyhow::Result<Exit> {
    require_admin("tether connect")?;
    if let Some(path) = args.config.clone() {
        let file: ConnectArgs = from_config_file(&path)?;
        args.subscription_id = args.subscription_id.or(file.subscription_id);
        args.resource_group = args.resource_group.or(file.resource_group);
        args.location = args.location.or(file.location);
        args.resource_name = args.resource_name.or(file.resource_name);
        args.tags = args.tags.or(file.tags);
        args.correlation_id = args.correlation_id.or(file.correlation_id);
        args.private_link_scope = args.private_link_scope.or(file.private_link_scope);
        args.cloud = args.cloud.or(file.cloud);
        args.cloud_ca_cert = args.cloud_ca_cert.or(file.cloud_ca_cert);
        args.ignore_network_check |= file.ignore_network_check;
        args.sign_in.merge(file.sign_in);
    }
    let request = ConnectRequest {
        subscription_id: require(&args.subscription_id, "subscription-id")?.to_string(),
        resource_group: require(&args.resource_group, "resource-group")?.to_string(),
        location: require(&args.location, "location")?.to_string(),
        resource_name: args.resource_name.clone(),
        tags: match &args.tags {
            Some(t) => parse_tags(t).map_err(|e| coded(Exit::Usage, format!("--tags: {e:#}")))?,
            None => Default::default(),
        },
        correlation_id: args.correlation_id.clone(),
        private_link_scope: args.private_link_scope.clone(),
        cloud: args.cloud.clone().unwrap_or_else(|| "AzureCloud".into()),
        cloud_ca_cert: args
            .cloud_ca_cert
            .as_deref()
            .map(crate::cloud::read_ca_certificate)
            .transpose()?,
        ignore_network_check: args.ignore_network_check,
        sign_in: SignIn::AccessToken(String::new()),
    };
    let state = StateRoot::from_env();
    let settings = SettingsStore::new(&state).load()?;
    let mut request = request;
    request.sign_in = resolve_sign_in(&args.sign_in, &state, &settings)?;
    let registration = connect(&state, &settings, request, &mut say(out))
        .map_err(lifecycle_error)
        .inspect_err(|e| record(&state, e))?;
    // A running service starts heartbeating and reconciling now rather
    // than on its next tick.
    let _ = ask(&state, &Request::Heartbeat, &mut |_| {});
    if out.is_json() {
        out.json(&registration);
    } else {
        out.line(format_args!(
            "Connected {} ({}).",
            registration.resource_name, registration.resource_id
        ));
    }
    Ok(Exit::Success)
}

pub fn run_disconnect(out: &Output, mut args: DisconnectArgs) -> anyhow::Result<Exit> {
    let state = StateRoot::from_env();
    if args.dry_run {
        let plan = plan(&state, args.force_local_only).map_err(lifecycle_error)?;
        if out.is_json() {
            out.json(&plan);
        } else {
            out.line("A disconnect would remove:");
            for e in &plan.extensions {
                out.line(format_args!("  extension {e}"));
            }
            match &plan.resource {
                Some(r) => out.line(format_args!("  the machine resource {r}")),
                None => out.line("  (the machine resource is left alone: --force-local-only)"),
            }
            for f in &plan.local_files {
                out.line(format_args!("  {}", f.display()));
            }
            out.line("Operator settings are kept.");
        }
        return Ok(Exit::Success);
    }
    require_admin("tether disconnect")?;
    if let Some(path) = args.config.clone() {
        let file: SignInFlags = from_config_file(&path)?;
        args.sign_in.merge(file);
    }
    if args.user_tenant_id.is_some() && args.sign_in.tenant_id.is_none() {
        args.sign_in.tenant_id = args.user_tenant_id.clone();
    }
    let registration = Registration::load(&state)?;
    if args.sign_in.tenant_id.is_none() {
        args.sign_in.tenant_id = registration.as_ref().map(|r| r.tenant_id.clone());
    }
    let settings = SettingsStore::new(&state).load()?;
    let sign_in = if args.force_local_only {
        None
    } else {
        Some(resolve_sign_in(&args.sign_in, &state, &settings)?)
    };
    if let Some(registration) = &registration
        && let Ok(service) = Connection::open(&state)
    {
        // The service hosts the extensions, so it removes them: sign in
        // here (prompts show here) and hand it the token.
        let arm_token = match &sign_in {
            Some(sign_in) => Some(sign_in_here(out, sign_in, registration, &settings)?),
            None => None,
        };
        out.note("the service is running: it carries out the disconnect");
        let answer = service
            .call(
                &Request::Disconnect {
                    arm_token,
                    force_local_only: args.force_local_only,
                },
                &mut say(out),
            )
            .inspect_err(|e| record(&state, e))?;
        let resource = answer["resource"].as_str().map(str::to_string);
        let removed: Vec<PathBuf> = serde_json::from_value(answer["localFiles"].clone())?;
        print_disconnected(out, resource.as_deref(), &removed);
        return Ok(Exit::Success);
    }
    let plan = disconnect(
        &mut Manager::new(state.clone())?,
        &settings,
        DisconnectRequest {
            sign_in,
            force_local_only: args.force_local_only,
        },
        &mut say(out),
    )
    .map_err(lifecycle_error)
    .inspect_err(|e| record(&state, e))?;
    print_disconnected(out, plan.resource.as_deref(), &plan.local_files);
    Ok(Exit::Success)
}

fn print_disconnected(out: &Output, resource: Option<&str>, removed: &[PathBuf]) {
    if out.is_json() {
        out.json(&json!({"disconnected": true, "resourceDeleted": resource, "removed": removed}));
    } else {
        match resource {
            Some(r) => out.line(format_args!(
                "Disconnected: {r} is deleted and the local registration removed."
            )),
            None => out.line(
                "Disconnected locally; the machine resource was left alone (--force-local-only).",
            ),
        }
    }
}

pub fn run_show(out: &Output, args: ShowArgs) -> anyhow::Result<Exit> {
    let view = ShowView::load(&StateRoot::from_env(), args.os)?;
    let picked = if args.properties.is_empty() {
        None
    } else {
        Some(view.pick(&args.properties).map_err(|p| {
            coded(
                Exit::Usage,
                format!("`{p}` is not a property of show; use a --json key (resourceName) or a display name (\"Resource Name\")"),
            )
        })?)
    };
    if out.is_json() {
        match &picked {
            Some(picked) => out.json(picked),
            None => out.json(&view),
        }
    } else {
        out.line(view.render(picked.as_ref()).trim_end());
    }
    Ok(Exit::Success)
}

pub fn run_genkey(out: &Output) -> anyhow::Result<Exit> {
    require_admin("tether genkey")?;
    let public = machine_key::genkey(&StateRoot::from_env())?;
    if out.is_json() {
        out.json(&json!({"publicKey": public}));
    } else {
        out.line(public);
    }
    Ok(Exit::Success)
}

#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ResetArgs {
    #[command(subcommand)]
    pub action: Option<ResetAction>,
    #[command(flatten)]
    pub sign_in: SignInFlags,
    /// Take sign-in flags from a JSON or YAML file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Remove only the local registration.
    #[arg(long)]
    pub force_local_only: bool,
    /// Show progress until the reset is done.
    #[arg(long)]
    pub wait: bool,
    #[arg(long, hide = true)]
    pub run_operation: Option<String>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ResetAction {
    /// The step, percent complete and errors of the last reset.
    Status,
}

pub fn run_reset(out: &Output, mut args: ResetArgs) -> anyhow::Result<Exit> {
    use crate::lifecycle::reset;
    let state = StateRoot::from_env();
    if let Some(ResetAction::Status) = args.action {
        let status = reset::status(&state)?.ok_or_else(|| {
            coded(
                Exit::NotConnected,
                "no reset has been started on this machine",
            )
        })?;
        print_reset(out, &status);
        return Ok(if status.state == "Failed" {
            Exit::Failure
        } else {
            Exit::Success
        });
    }
    require_admin("tether reset")?;
    let settings = SettingsStore::new(&state).load()?;
    if let Some(id) = args.run_operation {
        reset::run(&mut Manager::new(state)?, &settings, &id)?;
        return Ok(Exit::Success);
    }
    if let Some(path) = args.config.clone() {
        let file: SignInFlags = from_config_file(&path)?;
        args.sign_in.merge(file);
    }
    let registration = Registration::load(&state)?
        .ok_or_else(|| lifecycle_error(LifecycleError::NotConnected.into()))?;
    if args.sign_in.tenant_id.is_none() {
        args.sign_in.tenant_id = Some(registration.tenant_id.clone());
    }
    // Sign in here, where the operator can see prompts; the background
    // process gets only the resulting token.
    let token = if args.force_local_only {
        None
    } else {
        let sign_in = resolve_sign_in(&args.sign_in, &state, &settings)?;
        Some(sign_in_here(out, &sign_in, &registration, &settings)?)
    };
    // The running service hosts the extensions, so it runs the reset.
    let in_service = ask(
        &state,
        &Request::Reset {
            arm_token: token.clone(),
        },
        &mut say(out),
    )?;
    let started = match in_service {
        Some(answer) => serde_json::from_value(answer)?,
        None => reset::start(&state, token, &std::env::current_exe()?).map_err(lifecycle_error)?,
    };
    if !args.wait {
        if out.is_json() {
            out.json(&started);
        } else {
            out.line(format_args!(
                "Reset {} started; follow it with `tether reset status`.",
                started.id
            ));
        }
        return Ok(Exit::Success);
    }
    let done = reset::wait(&state, &started, &mut |status| {
        if !out.is_json() {
            out.note(format_args!(
                "{:>3}% {}",
                status.percent_complete, status.step
            ));
        }
    })?;
    print_reset(out, &done);
    Ok(if done.state == "Succeeded" {
        Exit::Success
    } else {
        Exit::ArmDeleteFailed
    })
}

fn print_reset(out: &Output, status: &crate::lifecycle::reset::ResetStatus) {
    if out.is_json() {
        out.json(status);
        return;
    }
    out.line(format_args!("operation  {}", status.id));
    out.line(format_args!("state      {}", status.state));
    out.line(format_args!("step       {}", status.step));
    out.line(format_args!("percent    {}", status.percent_complete));
    for e in &status.errors {
        out.line(format_args!("error      {e}"));
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub sign_in: SignInFlags,
    /// AzureCloud (default), AzureUSGovernment, AzureChinaCloud, or a cloud metadata URL.
    #[arg(long, default_value = "AzureCloud")]
    pub cloud: String,
    /// A CA certificate (PEM) to trust for the cloud's endpoints.
    #[arg(long)]
    pub cloud_ca_cert: Option<PathBuf>,
    /// Take sign-in flags from a JSON or YAML file.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn run_login(out: &Output, mut args: LoginArgs) -> anyhow::Result<Exit> {
    require_admin("tether login")?;
    if let Some(path) = args.config.clone() {
        let file: SignInFlags = from_config_file(&path)?;
        args.sign_in.merge(file);
    }
    let state = StateRoot::from_env();
    let settings = SettingsStore::new(&state).load()?;
    let proxy = ProxyPolicy::from_settings(&settings);
    let ca = args
        .cloud_ca_cert
        .as_deref()
        .map(crate::cloud::read_ca_certificate)
        .transpose()?;
    let spec = crate::cloud::CloudSpec::parse(&args.cloud)
        .map_err(|e| coded(Exit::Usage, format!("{e:#}")))?;
    let endpoints =
        crate::cloud::Endpoints::resolve(&spec, &proxy, ca.as_deref().map(str::as_bytes))
            .map_err(|e| coded(Exit::Network, format!("{e:#}")))?;
    let sign_in =
        SignIn::from_flags(&args.sign_in).map_err(|e| coded(Exit::Usage, format!("{e:#}")))?;
    let context = crate::auth::session::login(
        &state,
        &sign_in,
        &args.cloud,
        endpoints,
        &proxy,
        ca,
        &mut say(out),
    )
    .map_err(lifecycle_error)?;
    if out.is_json() {
        out.json(&context);
    } else {
        out.line(format_args!("Signed in ({}, {}); connect, disconnect and reset use this session until `tether logout`.", context.auth_type, context.token_credential_type));
    }
    Ok(Exit::Success)
}

pub fn run_logout(out: &Output) -> anyhow::Result<Exit> {
    require_admin("tether logout")?;
    let state = StateRoot::from_env();
    let context = crate::auth::session::logout(&state)?;
    match context {
        None => {
            if out.is_json() {
                out.json(&json!({"cleared": null}));
            } else {
                out.line("No sign-in session to clear.");
            }
        }
        Some(c) => {
            if out.is_json() {
                out.json(&json!({"cleared": c}));
            } else {
                out.line("Cleared the sign-in session:");
                let v = serde_json::to_value(&c)?;
                for (k, v) in v.as_object().into_iter().flatten() {
                    let text = v.as_str().map(str::to_string).unwrap_or_else(|| {
                        if v.is_null() {
                            "-".into()
                        } else {
                            v.to_string()
                        }
                    });
                    out.line(format_args!("  {k:<22} {text}"));
                }
            }
        }
    }
    Ok(Exit::Success)
}
