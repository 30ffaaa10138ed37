//! `tether rename NEW-NAME`: sign in here (where the operator sees any
//! prompt), then rename in the running service, which hosts the
//! extensions, or here when none runs.

use super::lifecycle::{from_config_file, lifecycle_error, record, resolve_sign_in, say};
use super::{Exit, Output, require_admin};
use crate::auth::{SignIn, SignInFlags};
use crate::cloud::ProxyPolicy;
use crate::config::SettingsStore;
use crate::extensions::manager::Manager;
use crate::lifecycle::rename::{RenameRequest, Renamed, rename, sign_in_target};
use crate::service::control::Request;
use crate::service::control::client::ask;
use crate::state::StateRoot;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct RenameArgs {
    /// The machine resource's new name.
    pub new_name: String,
    #[command(flatten)]
    pub sign_in: SignInFlags,
    /// Take sign-in flags from a JSON or YAML file (keys are the long flag names).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn run(out: &Output, mut args: RenameArgs) -> anyhow::Result<Exit> {
    require_admin("tether rename")?;
    let state = StateRoot::from_env();
    if let Some(path) = args.config.clone() {
        let file: SignInFlags = from_config_file(&path)?;
        args.sign_in.merge(file);
    }
    let (endpoints, ca, tenant) = sign_in_target(&state).map_err(lifecycle_error)?;
    args.sign_in.tenant_id.get_or_insert(tenant);
    let settings = SettingsStore::new(&state).load()?;
    let sign_in = resolve_sign_in(&args.sign_in, &state, &settings)?;
    let arm_token = crate::auth::arm_token(
        &sign_in,
        &endpoints,
        &ProxyPolicy::from_settings(&settings),
        ca.as_deref().map(str::as_bytes),
        &mut say(out),
    )
    .map_err(lifecycle_error)?;
    let in_service = ask(
        &state,
        &Request::Rename {
            arm_token: arm_token.clone(),
            new_name: args.new_name.clone(),
        },
        &mut say(out),
    )
    .inspect_err(|e| record(&state, e))?;
    let renamed: Renamed = match in_service {
        Some(answer) => serde_json::from_value(answer)?,
        None => rename(
            &mut Manager::new(state.clone())?,
            &settings,
            RenameRequest {
                new_name: args.new_name,
                sign_in: SignIn::AccessToken(arm_token),
            },
            &mut say(out),
        )
        .map_err(lifecycle_error)
        .inspect_err(|e| record(&state, e))?,
    };
    print(out, &renamed);
    Ok(Exit::Success)
}

fn print(out: &Output, renamed: &Renamed) {
    if out.is_json() {
        out.json(renamed);
        return;
    }
    out.line(format_args!(
        "Renamed {} to {}: {}",
        renamed.from, renamed.to, renamed.resource_id
    ));
    for id in &renamed.redeployed {
        out.line(format_args!("  redeployed {id}"));
    }
    for outcome in renamed
        .reconciled
        .iter()
        .filter(|o| o.action == "failed" || o.action == "refused")
    {
        out.line(format_args!(
            "  {} {}: {}",
            outcome.name, outcome.action, outcome.message
        ));
    }
    if !renamed.protected_settings_not_carried.is_empty() {
        out.line(format_args!(
            "Protected settings could not be carried for {}: set them again on the new resource's extensions.",
            renamed.protected_settings_not_carried.join(", ")
        ));
    }
}
