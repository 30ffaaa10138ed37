//! Run commands: ARM's `machines/{machine}/runCommands/{name}` (PUT starts
//! a run as a long-running operation; GET shows its instance view; DELETE
//! removes it) and the agent service's side, where the machine long-polls
//! for runs and reports their outcome.
//!
//! A run is carried to the machine only: tether-cloud never runs anything.
//! The operation ends when the machine reports the run done, or, with
//! `asyncExecution`, started; a run the machine could not start at all
//! (no such extension, disabled, not allowed) fails the operation.

use crate::Cloud;
use crate::arm::{Paging, accepted_with, page};
use crate::errors::ArmError;
use crate::model::{Operation, OperationKind, RunCommandRecord};
use crate::util;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_cloud_api::arm::ErrorDetail;
use tether_cloud_api::names::{RESOURCE_NAME_RULE, is_valid_resource_name};
use tether_cloud_api::run_command::{
    MAX_TIMEOUT_SECONDS, MachineRunCommand, PendingRunCommand, PendingRunCommands,
    RUN_COMMAND_TYPE, RunCommandInstanceView, RunCommandReport, split_command_id, tail,
};

fn key(machine_id: &str, name: &str) -> String {
    format!("{machine_id}/runCommands/{name}").to_ascii_lowercase()
}

fn not_found(name: &str, machine_id: &str) -> ArmError {
    let machine = machine_id.rsplit('/').next().unwrap_or(machine_id);
    ArmError::not_found(
        "ResourceNotFound",
        format!("The run command '{name}' was not found on machine '{machine}'."),
    )
}

fn invalid(message: impl Into<String>) -> ArmError {
    ArmError::bad_request("InvalidParameter", message)
}

/// What ARM returns: never the protected parameters nor a password.
fn view(record: &RunCommandRecord) -> MachineRunCommand {
    let mut resource = record.resource.clone();
    resource.properties.protected_parameters.clear();
    resource.properties.run_as_password = None;
    resource.system_data = Some(crate::arm::system_data(record.created, record.modified));
    resource
}

/// Checks what Tether can do of a run command, and says why not.
fn check(resource: &MachineRunCommand) -> Result<(), ArmError> {
    let p = &resource.properties;
    if p.source.script.is_some() || p.source.script_uri.is_some() {
        return Err(ArmError::bad_request(
            "RunCommandSourceNotSupported",
            "Tether runs no native scripts: properties.source.script and scriptUri are refused. Package the logic as a signed extension and name its command in properties.source.commandId as 'Publisher/Name:command'.",
        ));
    }
    let command_id = p.source.command_id.as_deref().unwrap_or_default();
    if split_command_id(command_id).is_none() {
        return Err(invalid(format!(
            "properties.source.commandId '{command_id}' must name an installed extension's command as 'Publisher/Name:command', for example 'Contoso.Ops/Diag:collect'."
        )));
    }
    if p.run_as_user.as_deref().is_some_and(|u| !u.is_empty())
        || p.run_as_password.as_deref().is_some_and(|u| !u.is_empty())
    {
        return Err(invalid(
            "properties.runAsUser and runAsPassword are refused: a Tether run command runs inside its extension's sandbox, as no user of the machine.",
        ));
    }
    if p.output_blob_uri.is_some() || p.error_blob_uri.is_some() {
        return Err(invalid(
            "properties.outputBlobUri and errorBlobUri are not supported: the output (its last 4 KiB) is in properties.instanceView.output.",
        ));
    }
    if p.timeout_in_seconds > MAX_TIMEOUT_SECONDS {
        return Err(invalid(format!(
            "properties.timeoutInSeconds is at most {MAX_TIMEOUT_SECONDS}."
        )));
    }
    let parameters = p.parameters.iter().chain(&p.protected_parameters);
    for parameter in parameters {
        if parameter.name.is_empty() || parameter.name.contains('=') {
            return Err(invalid(format!(
                "a parameter's name is required and holds no '=' (got '{}').",
                parameter.name
            )));
        }
    }
    Ok(())
}

pub(crate) fn list(cloud: &Cloud, machine_id: &str, paging: &Paging) -> Result<Response, ArmError> {
    let prefix = format!("{}/runcommands/", machine_id.to_ascii_lowercase());
    let items: Vec<MachineRunCommand> = cloud.read(|m| {
        m.run_commands
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, r)| view(r))
            .collect()
    });
    Ok(Json(page(cloud, items, paging)?).into_response())
}

pub(crate) fn get(cloud: &Cloud, machine_id: &str, name: &str) -> Result<Response, ArmError> {
    cloud
        .read(|m| m.run_commands.get(&key(machine_id, name)).map(view))
        .map(|r| Json(r).into_response())
        .ok_or_else(|| not_found(name, machine_id))
}

/// PUT: creates the resource (or replaces it) and starts a run.
pub(crate) fn put(
    cloud: &Cloud,
    machine_id: &str,
    name: &str,
    body: &[u8],
    api_version: &str,
) -> Result<Response, ArmError> {
    if !is_valid_resource_name(name) {
        return Err(ArmError::bad_request(
            "InvalidResourceName",
            format!("The resource name '{name}' is invalid: {RESOURCE_NAME_RULE}."),
        ));
    }
    let mut resource: MachineRunCommand = serde_json::from_slice(body).map_err(|e| {
        ArmError::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}"),
        )
    })?;
    check(&resource)?;
    let machine_key = machine_id.to_ascii_lowercase();
    let now = cloud.now();
    let key = key(machine_id, name);
    let (op, created) = cloud.write(|m| {
        let Some(machine) = m.machines.get(&machine_key) else {
            return Err(ArmError::not_found(
                "ParentResourceNotFound",
                format!("The machine '{machine_id}' was not found."),
            ));
        };
        let (location, subscription) = (
            machine.resource.location.clone(),
            machine.subscription.clone(),
        );
        let existing = m.run_commands.remove(&key);
        let protected = std::mem::take(&mut resource.properties.protected_parameters);
        resource.id = format!("{machine_id}/runCommands/{name}");
        resource.name = name.to_string();
        resource.kind = RUN_COMMAND_TYPE.into();
        if resource.location.is_empty() {
            resource.location = location.clone();
        }
        resource.properties.provisioning_state = Some("Creating".into());
        resource.properties.instance_view = Some(RunCommandInstanceView {
            execution_state: "Pending".into(),
            execution_message: "Waiting for the machine to pick the run up".into(),
            ..Default::default()
        });
        let op = Operation {
            id: util::guid(),
            extension: key.clone(),
            kind: OperationKind::RunCommand,
            sequence: 0,
            status: "InProgress".into(),
            start: now,
            end: None,
            error: None,
            location,
            subscription,
        };
        // A run replaced before it ended is over for whoever waited on it.
        if let Some(old) = &existing
            && let Some(old_op) = m.operations.get_mut(&old.operation)
            && old_op.status == "InProgress"
        {
            old_op.status = "Canceled".into();
            old_op.end = Some(now);
        }
        m.operations.insert(op.id.clone(), op.clone());
        m.run_commands.insert(
            key.clone(),
            RunCommandRecord {
                resource,
                machine: machine_key.clone(),
                protected_parameters: protected,
                run_id: util::guid(),
                operation: op.id.clone(),
                created: existing.as_ref().map(|e| e.created).unwrap_or(now),
                modified: now,
            },
        );
        Ok((op, existing.is_none()))
    })?;
    let body = cloud.read(|m| m.run_commands.get(&key).map(view));
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(accepted_with(cloud, &op, api_version, status, body))
}

/// DELETE: the resource goes at once; a run the machine already has ends
/// there on its own, and its report finds nothing to update.
pub(crate) fn delete(
    cloud: &Cloud,
    machine_id: &str,
    name: &str,
    api_version: &str,
) -> Result<Response, ArmError> {
    let key = key(machine_id, name);
    let now = cloud.now();
    let op = cloud.write(|m| {
        let record = m.run_commands.remove(&key)?;
        if let Some(op) = m.operations.get_mut(&record.operation)
            && op.status == "InProgress"
        {
            op.status = "Canceled".into();
            op.end = Some(now);
        }
        let op = Operation {
            id: util::guid(),
            extension: key.clone(),
            kind: OperationKind::Delete,
            sequence: 0,
            status: "Succeeded".into(),
            start: now,
            end: Some(now),
            error: None,
            location: record.resource.location.clone(),
            subscription: m
                .machines
                .get(&record.machine)
                .map(|r| r.subscription.clone())
                .unwrap_or_default(),
        };
        m.operations.insert(op.id.clone(), op.clone());
        Some(op)
    });
    Ok(match op {
        Some(op) => accepted_with(cloud, &op, api_version, StatusCode::ACCEPTED, None::<()>),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// The longest a machine's poll is held open.
const MAX_WAIT: Duration = Duration::from_secs(60);

fn pending_for(cloud: &Cloud, machine: &str) -> Vec<PendingRunCommand> {
    cloud.read(|m| {
        m.run_commands
            .values()
            .filter(|r| r.machine == machine)
            .filter(|r| {
                r.resource
                    .properties
                    .instance_view
                    .as_ref()
                    .is_some_and(|v| v.execution_state == "Pending")
            })
            .map(|r| PendingRunCommand {
                name: r.resource.name.clone(),
                run_id: r.run_id.clone(),
                command_id: r
                    .resource
                    .properties
                    .source
                    .command_id
                    .clone()
                    .unwrap_or_default(),
                parameters: r.resource.properties.parameters.clone(),
                protected_parameters: r.protected_parameters.clone(),
                timeout_in_seconds: r.resource.properties.timeout_in_seconds,
            })
            .collect()
    })
}

/// `GET /agent/v1/runcommands?wait=SECONDS`: the runs waiting for this
/// machine, answered as soon as there is one, or empty after `wait`.
pub async fn pending(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let machine = match crate::agent::machine(&cloud, &headers) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let wait = query
        .get("wait")
        .and_then(|w| w.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or_default()
        .min(MAX_WAIT);
    let until = Instant::now() + wait;
    loop {
        let commands = pending_for(&cloud, &machine);
        if !commands.is_empty() || Instant::now() >= until {
            return Json(PendingRunCommands { commands }).into_response();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `POST /agent/v1/runcommands/{name}/status`
pub async fn report(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(report): Json<RunCommandReport>,
) -> Response {
    let machine = match crate::agent::machine(&cloud, &headers) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let key = key(&machine, &name);
    let now = cloud.now();
    let found = cloud.write(|m| {
        let Some(record) = m.run_commands.get_mut(&key) else {
            return false;
        };
        // A report of a run since replaced changes nothing.
        if record.run_id != report.run_id {
            return true;
        }
        let async_execution = record.resource.properties.async_execution;
        let view = record
            .resource
            .properties
            .instance_view
            .get_or_insert_with(Default::default);
        let running = report.execution_state == "Running";
        if running || view.start_time.is_none() {
            view.start_time = Some(util::rfc3339(now));
        }
        view.execution_state = report.execution_state.clone();
        view.execution_message = report.execution_message.clone();
        if !running {
            view.exit_code = report.exit_code;
            view.output = tail(&report.output);
            view.error = tail(&report.error);
            view.end_time = Some(util::rfc3339(now));
        }
        // It ran (whatever its exit code) or, async, it started: the
        // operation succeeds. Refused on the machine: it fails.
        let refused = !running && report.exit_code.is_none();
        let settled = if refused {
            Some(Some(ErrorDetail {
                code: "RunCommandRefused".into(),
                message: report.error.clone(),
                target: None,
                details: Vec::new(),
            }))
        } else if !running || async_execution {
            Some(None)
        } else {
            None
        };
        if let Some(error) = settled {
            record.resource.properties.provisioning_state = Some(
                if error.is_some() {
                    "Failed"
                } else {
                    "Succeeded"
                }
                .into(),
            );
            let operation = record.operation.clone();
            if let Some(op) = m.operations.get_mut(&operation)
                && op.status == "InProgress"
            {
                op.finish(error, now);
            }
        }
        true
    });
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ArmError::not_found(
            "RunCommandNotFound",
            format!("No run command '{name}' is on this machine; it was deleted."),
        )
        .into_response()
    }
}
