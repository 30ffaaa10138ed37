//! `inventory`: what the machine is, as one JSON document, collected on a
//! schedule (see `extension.toml`) and on demand (`invoke collect`).
//!
//! It reads only what the operator granted: `/etc/os-release`, the
//! machine-wide `/proc` files (CPU, memory, mounts) and the package
//! database (dpkg's status file; an rpm database is named, not read).
//! Whatever is not granted or not there is left out of the document, never
//! an error. Each collection reports a one-line summary as the
//! extension's status, which reaches the cloud's instance view, and the
//! whole document (`report_document`), which the cloud keeps beside it.
//!
//! Settings: `labels` (an object of strings, copied into the document) and
//! `includeStatus` (bool, default true). Protected: `uploadToken`, a secret
//! the document only says is present (it never leaves the extension).

mod facts;

use serde::Serialize;
use std::collections::BTreeMap;
use tether_sdk::{ConnectionStatus, Error, Extension, StatusState, info, kv, settings};

struct Inventory;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    name: String,
    resource_id: String,
    location: String,
    os_type: String,
    os_name: String,
    vm_id: String,
    tenant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<facts::OsRelease>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<facts::Cpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<facts::Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filesystems: Option<Vec<facts::Filesystem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packages: Option<facts::Packages>,
    labels: BTreeMap<String, String>,
    activations: u64,
    collections: u64,
    /// Whether the protected `uploadToken` reached the extension.
    has_upload_token: bool,
}

const ACTIVATIONS: &str = "activations";
const COLLECTIONS: &str = "collections";

fn bump(key: &str) -> Result<u64, Error> {
    let next = kv::get::<u64>(key)?.unwrap_or(0) + 1;
    kv::set(key, &next)?;
    Ok(next)
}

fn status_name(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Connected => "Connected",
        ConnectionStatus::Disconnected => "Disconnected",
        ConnectionStatus::Expired => "Expired",
        ConnectionStatus::NotConnected => "NotConnected",
    }
}

fn summary(document: &Document) -> String {
    let mut parts = Vec::new();
    if let Some(os) = &document.os {
        parts.push(os.pretty_name.clone());
    }
    if let Some(cpu) = &document.cpu {
        parts.push(format!("{} CPUs", cpu.count));
    }
    if let Some(memory) = &document.memory {
        parts.push(format!("{} MiB", memory.total_kib / 1024));
    }
    if let Some(packages) = &document.packages {
        parts.push(format!("{} {} packages", packages.count, packages.source));
    }
    if parts.is_empty() {
        parts.push("no machine files granted".into());
    }
    format!("collection {}: {}", document.collections, parts.join(", "))
}

fn collect() -> Result<String, Error> {
    let machine = tether_sdk::machine();
    let labels: BTreeMap<String, String> = settings::get("labels")?.unwrap_or_default();
    let include_status: bool = settings::get("includeStatus")?.unwrap_or(true);
    let collections = bump(COLLECTIONS)?;
    let document = Document {
        name: machine.name,
        resource_id: machine.resource_id,
        location: machine.location,
        os_type: machine.os_type,
        os_name: machine.os_name,
        vm_id: machine.vm_id,
        tenant_id: machine.tenant_id,
        status: include_status.then(|| status_name(machine.status)),
        os: facts::os_release(),
        cpu: facts::cpu(),
        memory: facts::memory(),
        filesystems: facts::filesystems(),
        packages: facts::packages(),
        labels,
        activations: kv::get(ACTIVATIONS)?.unwrap_or(0),
        collections,
        has_upload_token: settings::protected::<String>("uploadToken")?.is_some(),
    };
    tether_sdk::report_status(StatusState::Success, &summary(&document));
    // The whole document reaches the cloud beside the status (0.2.0).
    tether_sdk::report_document(&document)?;
    Ok(serde_json::to_string_pretty(&document)?)
}

impl Extension for Inventory {
    fn enable() -> Result<(), Error> {
        let n = bump(ACTIVATIONS)?;
        info!("inventory: enabled (activation {n})");
        Ok(())
    }

    fn uninstall() -> Result<(), Error> {
        info!("inventory: uninstalling");
        Ok(())
    }

    fn invoke(command: &str, _args: &[String]) -> Result<String, Error> {
        match command {
            "collect" => collect(),
            other => Err(Error::unknown_command(other)),
        }
    }
}

tether_sdk::export_extension!(Inventory);
