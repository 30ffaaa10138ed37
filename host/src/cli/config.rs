//! `tether config …`.

use super::exit::coded;
use super::{Exit, Output, require_admin};
use crate::cloud::ProxyPolicy;
use crate::cloud::proxy::ProxySource;
use crate::config::{Edit, PROPERTIES, SettingsStore, find};
use crate::state::StateRoot;
use clap::Subcommand;
use serde_json::{Map, Value, json};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every setting with its value, and the effective proxy.
    List,
    /// One setting's value (lists comma-separated).
    Get { key: String },
    /// Set a setting (root/administrator). Lists take comma-separated values.
    Set {
        key: String,
        value: String,
        /// Add the values to the list.
        #[arg(long, conflicts_with = "remove")]
        add: bool,
        /// Remove the values from the list.
        #[arg(long)]
        remove: bool,
    },
    /// Return a setting to its default (root/administrator).
    Clear { key: String },
    /// What each setting means, its format, default and an example.
    Info { key: Option<String> },
}

pub fn run(out: &Output, command: ConfigCommand) -> anyhow::Result<Exit> {
    let store = SettingsStore::new(&StateRoot::from_env());
    match command {
        ConfigCommand::List => list(out, &store),
        ConfigCommand::Get { key } => {
            let property = find(&key).map_err(|e| coded(Exit::Usage, e))?;
            let settings = store.load()?;
            if out.is_json() {
                out.json(&json!({"key": property.key, "value": property.get(&settings)}));
            } else {
                out.line(property.text(&settings));
            }
            Ok(Exit::Success)
        }
        ConfigCommand::Set {
            key,
            value,
            add,
            remove,
        } => {
            require_admin("tether config set")?;
            let edit = if add {
                Edit::Add
            } else if remove {
                Edit::Remove
            } else {
                Edit::Replace
            };
            let settings = store.set(&key, &value, edit)?;
            let applied = tell_service(out);
            show_one(out, &key, &settings, applied)
        }
        ConfigCommand::Clear { key } => {
            require_admin("tether config clear")?;
            let settings = store.clear(&key)?;
            let applied = tell_service(out);
            show_one(out, &key, &settings, applied)
        }
        ConfigCommand::Info { key } => info(out, key.as_deref()),
    }
}

/// Tells a running service to reload; whether one did. The change is
/// written either way: a service that is not running reads it at start.
fn tell_service(out: &Output) -> bool {
    let state = crate::state::StateRoot::from_env();
    let reload = crate::service::control::Request::Reload;
    match crate::service::control::client::ask(&state, &reload, &mut |_| {}) {
        Ok(Some(_)) => true,
        Ok(None) => false,
        Err(e) => {
            out.note(format_args!(
                "warning: the setting is saved, but the running service did not take it: {e:#}"
            ));
            false
        }
    }
}

fn show_one(
    out: &Output,
    key: &str,
    settings: &crate::config::Settings,
    applied_by_service: bool,
) -> anyhow::Result<Exit> {
    let property = find(key).map_err(|e| coded(Exit::Usage, e))?;
    if out.is_json() {
        out.json(&json!({"key": property.key, "value": property.get(settings), "appliedByService": applied_by_service}));
    } else {
        out.line(format_args!(
            "{} = {}",
            property.key,
            property.text(settings)
        ));
        if applied_by_service {
            out.note("the running service applied it");
        }
    }
    Ok(Exit::Success)
}

fn source_text(policy: &ProxyPolicy) -> String {
    match &policy.source {
        ProxySource::Setting => "the proxy.url setting".into(),
        ProxySource::Environment(name) => format!("the environment variable {name}"),
        ProxySource::None => "nothing: no proxy.url setting and no HTTPS_PROXY".into(),
    }
}

fn list(out: &Output, store: &SettingsStore) -> anyhow::Result<Exit> {
    let settings = store.load()?;
    let policy = ProxyPolicy::from_settings(&settings);
    if out.is_json() {
        let values: Map<String, Value> = PROPERTIES
            .iter()
            .map(|p| (p.key.to_string(), p.get(&settings)))
            .collect();
        out.json(&json!({
            "file": store.path(),
            "settings": values,
            "effectiveProxy": {
                "url": policy.shown_url(),
                "source": policy.source,
                "bypass": policy.bypass,
                "noProxy": policy.no_proxy,
            },
        }));
        return Ok(Exit::Success);
    }
    let width = PROPERTIES.iter().map(|p| p.key.len()).max().unwrap_or(0);
    out.line(format_args!("{:<width$}  VALUE", "SETTING"));
    for p in PROPERTIES {
        let marker = if p.is_default(&settings) {
            ""
        } else {
            "  (set)"
        };
        out.line(format_args!(
            "{:<width$}  {}{marker}",
            p.key,
            p.text(&settings)
        ));
    }
    out.line("");
    out.line(format_args!(
        "effective proxy: {} (from {})",
        policy.shown_url().as_deref().unwrap_or("none, direct"),
        source_text(&policy)
    ));
    let bypass: Vec<&str> = policy.bypass.iter().map(|s| s.name()).collect();
    out.line(format_args!(
        "bypassing the proxy: {} (from proxy.bypass)",
        if bypass.is_empty() {
            "none".to_string()
        } else {
            bypass.join(", ")
        }
    ));
    if !policy.no_proxy.is_empty() {
        out.line(format_args!("NO_PROXY: {}", policy.no_proxy.join(",")));
    }
    Ok(Exit::Success)
}

fn info(out: &Output, key: Option<&str>) -> anyhow::Result<Exit> {
    let properties: Vec<_> = match key {
        Some(k) => vec![find(k).map_err(|e| coded(Exit::Usage, e))?],
        None => PROPERTIES.iter().collect(),
    };
    if out.is_json() {
        let items: Vec<Value> = properties
            .iter()
            .map(|p| json!({"key": p.key, "meaning": p.meaning, "format": p.format, "default": p.default, "example": p.example, "list": p.is_list, "effect": p.effect.unwrap_or("as described")}))
            .collect();
        out.json(&items);
        return Ok(Exit::Success);
    }
    for (i, p) in properties.iter().enumerate() {
        if i > 0 {
            out.line("");
        }
        out.line(p.key);
        out.line(format_args!("  {}", p.meaning));
        out.line(format_args!(
            "  format:  {}{}",
            p.format,
            if p.is_list {
                " (--add / --remove edit the list)"
            } else {
                ""
            }
        ));
        out.line(format_args!("  default: {}", p.default));
        out.line(format_args!("  example: {}", p.example));
        if let Some(effect) = p.effect {
            out.line(format_args!("  effect:  none. {effect}"));
        }
    }
    Ok(Exit::Success)
}
