//! `tether connect`: network check → machine key → ARM resource with the
//! public key → machine identity confirmed → registration written.

use super::journal::{self, Journal};
use super::registration::{Registration, vm_id};
use super::{LifecycleError, machine_key};
use crate::auth::{SignIn, arm_token};
use crate::cloud::arm::ArmClient;
use crate::cloud::{CloudSpec, Endpoints, ProxyPolicy, agent, check};
use crate::config::Settings;
use crate::state::StateRoot;
use anyhow::{Context, Result};
use serde_json::json;
use std::collections::BTreeMap;
use tether_cloud_api::arm::{Machine, MachineProperties};
use tether_cloud_api::names::{RESOURCE_NAME_RULE, is_valid_resource_name, machine_id};

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
    pub resource_name: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub correlation_id: Option<String>,
    pub private_link_scope: Option<String>,
    pub cloud: String,
    pub cloud_ca_cert: Option<String>,
    pub ignore_network_check: bool,
    pub sign_in: SignIn,
}

/// Parses `k=v,k2='v w'` into tags.
pub fn parse_tags(text: &str) -> Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim().to_string();
        anyhow::ensure!(
            !key.is_empty(),
            "a tag has no name in `{text}`; write name=value pairs separated by commas"
        );
        let value = match chars.peek() {
            Some(q @ ('\'' | '"')) => {
                let quote = *q;
                chars.next();
                let v: String = chars.by_ref().take_while(|c| *c != quote).collect();
                v
            }
            _ => chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string(),
        };
        anyhow::ensure!(
            key.len() <= 512 && value.len() <= 256,
            "tag `{key}` is too long (names up to 512, values up to 256 characters)"
        );
        anyhow::ensure!(
            !key.contains(['<', '>', '%', '&', '\\', '?', '/']),
            "tag name `{key}` may not contain < > % & \\ ? /"
        );
        tags.insert(key, value);
    }
    anyhow::ensure!(tags.len() <= 50, "a resource takes at most 50 tags");
    Ok(tags)
}

fn os_release(field: &str) -> Option<String> {
    std::fs::read_to_string("/etc/os-release")
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}="))
                .map(|v| v.trim_matches('"').to_string())
        })
}

/// Connects this machine. `say` receives progress for people.
pub fn connect(
    state: &StateRoot,
    settings: &Settings,
    request: ConnectRequest,
    say: &mut dyn FnMut(&str),
) -> Result<Registration> {
    if let Some(existing) = Registration::load(state)? {
        return Err(LifecycleError::AlreadyConnected(existing.resource_id).into());
    }
    let name = match &request.resource_name {
        Some(n) => n.clone(),
        None => crate::runtime::MachineInfo::local().name,
    };
    if !is_valid_resource_name(&name) {
        anyhow::bail!(LifecycleError::NameTaken(format!(
            "`{name}` is not a valid machine name ({RESOURCE_NAME_RULE}); give one with --resource-name"
        )));
    }
    let spec = CloudSpec::parse(&request.cloud)?;
    let proxy = ProxyPolicy::from_settings(settings);
    let ca = request.cloud_ca_cert.as_deref().map(str::as_bytes);
    let endpoints = Endpoints::resolve(&spec, &proxy, ca)
        .map_err(|e| LifecycleError::Network(format!("{e:#}")))?;

    if !request.ignore_network_check {
        say("checking the network…");
        let report = check::run(settings, &spec, ca, false)
            .map_err(|e| LifecycleError::Network(format!("{e:#}")))?;
        if let Some(bad) = report.endpoints.iter().find(|e| !e.reachable) {
            return Err(LifecycleError::Network(format!(
                "{} ({}) is unreachable: {}. Fix the network or the proxy (tether check shows the details), or pass --ignore-network-check",
                bad.endpoint,
                bad.url,
                bad.error.as_deref().unwrap_or("no answer")
            ))
            .into());
        }
    }

    say(&format!("signing in ({})…", request.sign_in.kind()));
    let token = arm_token(&request.sign_in, &endpoints, &proxy, ca, say)?;
    let arm = ArmClient::new(&endpoints, &proxy, ca, token)?;
    let correlation_id = request
        .correlation_id
        .clone()
        .unwrap_or_else(crate::util::guid);

    // An earlier connect that was killed half-way: remove what it made.
    if let Some(left) = journal::pending(state, "connect")? {
        if let Some(id) = left.data.get("resourceId").and_then(|v| v.as_str())
            && left.has("resource-created")
        {
            say(&format!("removing {id}, left by an interrupted connect…"));
            arm.delete_machine(id, &correlation_id)?.map_err(|e| {
                LifecycleError::ArmDeleteFailed(format!(
                    "could not remove the resource an interrupted connect left behind: {e}"
                ))
            })?;
        }
        machine_key::remove_active(state)?;
        Journal::begin(state, "connect", json!({}))?.finish()?;
    }

    let resource_id = machine_id(&request.subscription_id, &request.resource_group, &name);
    let key = machine_key::for_connect(state)?;
    let vm_id = vm_id(state)?;
    let mut journal = Journal::begin(state, "connect", json!({ "resourceId": resource_id }))?;
    machine_key::activate(state, &key)?;
    journal.done("key-ready")?;

    let os_type = if cfg!(windows) {
        "windows"
    } else {
        std::env::consts::OS
    };
    let machine = Machine {
        location: request.location.clone(),
        tags: request.tags.clone(),
        properties: MachineProperties {
            vm_id: Some(vm_id.clone()),
            os_type: Some(os_type.to_string()),
            os_name: os_release("ID").or_else(|| Some(std::env::consts::OS.to_string())),
            os_version: os_release("VERSION_ID"),
            agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            client_public_key: Some(key.client_public_key()),
            private_link_scope_resource_id: request.private_link_scope.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    say(&format!("creating {resource_id}…"));
    let created = match arm.put_machine(&resource_id, &machine, &correlation_id)? {
        Ok(created) => created,
        Err(e) => {
            machine_key::remove_active(state)?;
            journal.finish()?;
            return Err(match e.status {
                409 => LifecycleError::NameTaken(format!("{}; the name is held by another machine", e.message)),
                403 => LifecycleError::ArmCreateFailed(format!("not allowed to create the machine: {}. The sign-in needs the Azure Connected Machine Onboarding role (Microsoft.HybridCompute/machines/write) on the resource group", e.message.trim_end_matches('.'))),
                _ => LifecycleError::ArmCreateFailed(format!("could not create the machine resource: {e}")),
            }
            .into());
        }
    };
    journal.done("resource-created")?;

    let identity = created.identity.clone().unwrap_or_default();
    let principal_id = identity.principal_id.unwrap_or_default();
    let tenant_id = identity.tenant_id.unwrap_or_default();
    say("confirming the machine identity…");
    let confirmed = agent::machine_token(&endpoints, &proxy, ca, &tenant_id, &principal_id, &key)
        .and_then(|token| {
            agent::heartbeat(
                &endpoints,
                &proxy,
                ca,
                &token,
                &tether_cloud_api::agent::HeartbeatRequest {
                    agent_version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                },
            )
        });
    if let Err(e) = confirmed {
        // Leave nothing behind: the resource goes, and the key.
        let _ = arm.delete_machine(&resource_id, &correlation_id);
        machine_key::remove_active(state)?;
        journal.finish()?;
        return Err(LifecycleError::IdentityFailed(format!("the machine resource was created but its identity could not be confirmed, so it was removed again: {e:#}")).into());
    }
    journal.done("identity-confirmed")?;
    super::status::record_heartbeat(state);

    let registration = Registration {
        resource_id: created.id.clone(),
        resource_name: name,
        resource_group: request.resource_group.clone(),
        subscription_id: request.subscription_id.clone(),
        tenant_id,
        location: request.location.clone(),
        cloud: request.cloud.clone(),
        endpoints,
        vm_id,
        principal_id,
        correlation_id,
        private_link_scope: request.private_link_scope.clone(),
        tags: request.tags.clone(),
        connected_at: crate::util::now(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        cloud_ca_cert: request.cloud_ca_cert.clone(),
    };
    registration
        .save(state)
        .context("could not write the registration")?;
    journal.finish()?;
    Ok(registration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_with_quotes_and_refuse_nameless_ones() -> Result<()> {
        let tags = parse_tags("env=prod, team='ops and dev',empty=,q=\"a,b\"")?;
        assert_eq!(tags["env"], "prod");
        assert_eq!(tags["team"], "ops and dev");
        assert_eq!(tags["empty"], "");
        assert_eq!(tags["q"], "a,b");
        assert!(parse_tags("=x").is_err());
        assert!(parse_tags("a/b=c").is_err());
        Ok(())
    }
}
