//! `inventory`: collects what the machine is, as JSON, for the control
//! plane or a script.
//!
//! `invoke collect` returns a JSON document built from the machine's
//! metadata and the extension's settings, and counts its activations in the
//! key-value store, so the count survives host restarts.
//!
//! Settings: `labels` (an object of strings, copied into the document) and
//! `includeStatus` (bool, default true). Protected: `uploadToken`, a secret
//! the document only says is present (it never leaves the extension).

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
        labels,
        activations: kv::get(ACTIVATIONS)?.unwrap_or(0),
        collections,
        has_upload_token: settings::protected::<String>("uploadToken")?.is_some(),
    };
    let json = serde_json::to_string_pretty(&document)?;
    tether_sdk::report_status(StatusState::Success, &format!("collection {collections}"));
    Ok(json)
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
