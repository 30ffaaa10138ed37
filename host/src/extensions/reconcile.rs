//! Reconciliation with the cloud's desired state: fetch the desired
//! extensions from the agent service, download their packages (size cap
//! enforced while downloading, digest checked), install, update,
//! reconfigure and remove to match, and report each extension's status.
//! Trust and policy stay local: a refusal is reported as the extension's
//! failed status, with the reason. The package must be the one assigned
//! (publisher, name and version) and announced with its digest; the cloud
//! never causes a downgrade. Reports go through the outbox until the cloud
//! acknowledges them, and one extension's failure never stops the pass.

use super::manager::{
    CloudAssignment, InstallOptions, Installed, Manager, ProtectedSettings, parse_id,
};
use super::outbox;
use crate::cloud::agent::{join, token_for};
use crate::cloud::proxy::client;
use crate::config::{ProxyService, Settings};
use crate::lifecycle::ConnectedMachine;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::HashMap;
use std::io::Read;
use tether_cloud_api::agent::{DesiredExtension, DesiredExtensions, ExtensionStatusReport};
use tether_package::ExtensionId;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub name: String,
    /// installed, updated, reconfigured, unchanged, removed, refused, failed.
    pub action: String,
    pub message: String,
}

struct Agent {
    base: url::Url,
    token: String,
    http: reqwest::blocking::Client,
    downloads: reqwest::blocking::Client,
}

impl Agent {
    fn report(&self, name: &str, report: &ExtensionStatusReport) -> Result<()> {
        let url = join(&self.base, &format!("v1/extensions/{name}/status"));
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .json(report)
            .send()
            .context("could not report to the agent service")?;
        // A record the cloud already dropped has nothing left to hear.
        if !response.status().is_success() && response.status() != reqwest::StatusCode::NOT_FOUND {
            bail!(
                "the agent service refused the status of {name}: {}",
                response.status()
            );
        }
        Ok(())
    }

    fn download(&self, desired: &DesiredExtension) -> Result<Vec<u8>> {
        let url = desired.package_url.as_deref().with_context(|| {
            format!(
                "the cloud names no package for {}/{} {}",
                desired.publisher, desired.extension_type, desired.version
            )
        })?;
        // Without a digest nothing ties the bytes to what was assigned.
        let expected = desired.package_sha256.as_deref().with_context(|| {
            format!(
                "the cloud announced no SHA-256 for the package of {}/{} {}; refusing to download it",
                desired.publisher, desired.extension_type, desired.version
            )
        })?;
        let cap = desired
            .package_size
            .unwrap_or(u64::MAX)
            .min(tether_package::ReadLimits::default().package_bytes);
        let response = self
            .downloads
            .get(url)
            .send()
            .with_context(|| format!("could not download {url}"))?;
        if !response.status().is_success() {
            bail!("downloading {url} answered {}", response.status());
        }
        let mut bytes = Vec::new();
        response.take(cap + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > cap {
            bail!("{url} is larger than the {cap} bytes announced");
        }
        let actual = hex::encode(sha2::Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(expected) {
            bail!("{url} does not match its announced SHA-256 (got {actual})");
        }
        Ok(bytes)
    }
}

fn object(v: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap_or_default()
}

impl Agent {
    /// The agent service of the machine `state` belongs to, signed in
    /// with the machine's identity.
    fn of(state: &crate::state::StateRoot, settings: &Settings) -> Result<Self> {
        let machine = ConnectedMachine::require(state, settings)?;
        let (registration, proxy) = (&machine.registration, &machine.proxy);
        let ca = registration.ca_pem();
        let token = token_for(
            &machine.identity(),
            &registration.endpoints.agent_audience(),
        )?
        .access_token;
        let base = registration.endpoints.agent_service.clone();
        Ok(Agent {
            http: client(&proxy.route(ProxyService::Arc, &base), ca)?,
            downloads: client(
                &proxy.route(
                    ProxyService::Arc,
                    registration.endpoints.gallery.as_ref().unwrap_or(&base),
                ),
                ca,
            )?,
            base,
            token,
        })
    }

    fn desired(&self) -> Result<DesiredExtensions> {
        Ok(self
            .http
            .get(join(&self.base, "v1/extensions"))
            .bearer_auth(&self.token)
            .send()
            .context("could not fetch the desired extensions")?
            .error_for_status()?
            .json()?)
    }
}

/// Each desired extension's protected settings, by extension key.
fn protected_of(desired: &DesiredExtensions) -> ProtectedSettings {
    desired
        .extensions
        .iter()
        .filter_map(|want| {
            let id = parse_id(&format!("{}/{}", want.publisher, want.extension_type)).ok()?;
            Some((id.key(), object(want.protected_settings.as_ref()?)))
        })
        .collect()
}

/// The cloud's current protected settings of this machine's extensions,
/// for a process that must carry them (a rename); never written.
pub fn cloud_protected_settings(
    state: &crate::state::StateRoot,
    settings: &Settings,
) -> Result<ProtectedSettings> {
    Ok(protected_of(&Agent::of(state, settings)?.desired()?))
}

/// What a pass needs from the cloud, fetched without holding the
/// extensions: the desired extensions, and the packages of those not
/// applied yet, compiled ahead when a runtime is given.
pub struct Fetched {
    agent: Agent,
    desired: DesiredExtensions,
    /// By the assignment's name (lowercase, as ARM compares names).
    packages: HashMap<String, Result<Vec<u8>>>,
}

/// The assigned extension and version, from the cloud's names.
fn assigned(want: &DesiredExtension) -> Result<(ExtensionId, semver::Version)> {
    let id = parse_id(&format!("{}/{}", want.publisher, want.extension_type))?;
    let version = semver::Version::parse(&want.version)
        .with_context(|| format!("the assigned version `{}` is not a version", want.version))?;
    Ok((id, version))
}

fn installed_as<'a>(installed: &'a [Installed], id: &ExtensionId) -> Option<&'a Installed> {
    installed
        .iter()
        .find(|i| parse_id(&i.id).is_ok_and(|i| &i == id))
}

/// Whether `current` already runs this assignment (or a later one).
fn is_applied(current: Option<&Installed>, want: &DesiredExtension) -> bool {
    current
        .and_then(|c| c.cloud.as_ref())
        .is_some_and(|c| c.sequence >= want.sequence)
}

/// Fetches what the next pass applies. Compiling a large component takes
/// seconds; done here, with `runtime`, no other extension waits for it.
pub fn fetch(
    state: &crate::state::StateRoot,
    settings: &Settings,
    runtime: Option<&crate::runtime::Runtime>,
) -> Result<Fetched> {
    let agent = Agent::of(state, settings)?;
    let desired = agent.desired()?;
    let installed = super::manager::installed(state);
    let mut packages = HashMap::new();
    for want in &desired.extensions {
        let Ok((id, _)) = assigned(want) else {
            continue;
        };
        if is_applied(installed_as(&installed, &id), want) {
            continue;
        }
        let package = agent.download(want);
        if let (Ok(bytes), Some(runtime)) = (&package, runtime) {
            super::manager::precompile(state, runtime, bytes);
        }
        packages.insert(want.name.to_ascii_lowercase(), package);
    }
    Ok(Fetched {
        agent,
        desired,
        packages,
    })
}

/// One reconciliation pass. The manager keeps each desired extension's
/// protected settings for its later calls (in memory only).
pub fn run(manager: &mut Manager, settings: &Settings) -> Result<Vec<Outcome>> {
    let fetched = fetch(manager.state(), settings, None)?;
    apply(manager, settings, fetched)
}

/// Applies what [`fetch`] brought, to the extensions as they are now.
pub fn apply(manager: &mut Manager, settings: &Settings, fetched: Fetched) -> Result<Vec<Outcome>> {
    let Fetched {
        agent,
        desired,
        mut packages,
    } = fetched;
    let state = manager.state().clone();
    let installed = manager.list()?;
    let mut outcomes = Vec::new();
    // Every report goes to the outbox first; one flush at the end of the
    // pass sends them, with whatever earlier passes could not.
    let report = |name: &str, report: ExtensionStatusReport| -> Option<String> {
        outbox::put(&state, name, report)
            .err()
            .map(|e| format!("could not keep the report: {e:#}"))
    };

    manager.set_protected_settings(protected_of(&desired));
    for want in &desired.extensions {
        let (id, version) = match assigned(want) {
            Ok(assigned) => assigned,
            Err(e) => {
                let message = format!("{e:#}");
                let note = report(
                    &want.name,
                    ExtensionStatusReport {
                        sequence: want.sequence,
                        state: "error".into(),
                        version: want.version.clone(),
                        message: message.clone(),
                        document: None,
                    },
                );
                outcomes.push(Outcome {
                    name: want.name.clone(),
                    action: "refused".into(),
                    message: join_note(message, note),
                });
                continue;
            }
        };
        let current = installed_as(&installed, &id);
        if is_applied(current, want) {
            outcomes.push(Outcome {
                name: want.name.clone(),
                action: "unchanged".into(),
                message: String::new(),
            });
            continue;
        }
        let action = match current {
            None => "installed",
            Some(c) if c.version == want.version => "reconfigured",
            Some(_) => "updated",
        };
        let options = InstallOptions {
            settings: object(&want.settings),
            protected_settings: want
                .protected_settings
                .as_ref()
                .map(object)
                .unwrap_or_default(),
            cloud: Some(CloudAssignment {
                name: want.name.clone(),
                sequence: want.sequence,
            }),
            expect: Some((id.clone(), version)),
            allow_downgrade: false,
        };
        // Fetched ahead, unless the extensions changed since.
        let package = packages
            .remove(&want.name.to_ascii_lowercase())
            .unwrap_or_else(|| agent.download(want));
        let result = package.and_then(|bytes| manager.install_with(&bytes, settings, options));
        let (state_name, message, action, version) = match result {
            Ok(record) => (
                record.state.clone(),
                format!("{} {} {}", record.id, record.version, action),
                action.to_string(),
                record.version.clone(),
            ),
            Err(e) => {
                let refused = e.downcast_ref::<super::admission::Refusal>().is_some();
                // What runs here is what was installed before, if anything.
                let version = current.map(|c| c.version.clone()).unwrap_or_default();
                (
                    "error".to_string(),
                    format!("{e:#}"),
                    if refused { "refused" } else { "failed" }.to_string(),
                    version,
                )
            }
        };
        let note = report(
            &want.name,
            ExtensionStatusReport {
                sequence: want.sequence,
                state: state_name,
                version,
                message: message.clone(),
                document: None,
            },
        );
        outcomes.push(Outcome {
            name: want.name.clone(),
            action,
            message: join_note(message, note),
        });
    }

    // What the cloud put here and no longer wants goes.
    for record in installed.iter().filter(|r| r.cloud.is_some()) {
        let cloud = record
            .cloud
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let wanted = desired
            .extensions
            .iter()
            .any(|w| w.name.eq_ignore_ascii_case(&cloud));
        if wanted {
            continue;
        }
        let (action, message, warnings) = match manager.remove(&record.id) {
            Ok(warnings) => ("removed", record.id.clone(), warnings.join("; ")),
            Err(e) => ("failed", format!("{e:#}"), format!("{e:#}")),
        };
        let note = report(
            &cloud,
            ExtensionStatusReport {
                sequence: desired.sequence,
                state: if action == "removed" {
                    "removed"
                } else {
                    "error"
                }
                .into(),
                version: record.version.clone(),
                message: warnings,
                document: None,
            },
        );
        outcomes.push(Outcome {
            name: cloud,
            action: action.into(),
            message: join_note(message, note),
        });
    }
    let send = |name: &str, report: &ExtensionStatusReport| agent.report(name, report);
    for (name, e) in outbox::flush(&state, &send)? {
        let note = format!("not reported yet, will retry: {e:#}");
        match outcomes
            .iter_mut()
            .find(|o| o.name.eq_ignore_ascii_case(&name))
        {
            Some(outcome) => {
                outcome.message = join_note(std::mem::take(&mut outcome.message), Some(note))
            }
            None => tracing::warn!("the status of {name} is still not reported: {e:#}"),
        }
    }
    Ok(outcomes)
}

fn join_note(message: String, note: Option<String>) -> String {
    match note {
        Some(note) if message.is_empty() => note,
        Some(note) => format!("{message} ({note})"),
        None => message,
    }
}
