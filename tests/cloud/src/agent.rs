//! The agent service: the data plane a connected machine talks to with its
//! own identity: heartbeats, desired extensions, extension status.

use crate::Cloud;
use crate::arm::{settle_operations, status_of};
use crate::auth;
use crate::errors::ArmError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use tether_cloud_api::agent::{
    DesiredExtension, DesiredExtensions, ExtensionStatusReport, HeartbeatRequest, HeartbeatResponse,
};

/// The lower-cased resource id of the calling machine, from its token.
pub(crate) fn machine(cloud: &Cloud, headers: &HeaderMap) -> Result<String, ArmError> {
    let claims = auth::verify_token(cloud, headers, &cloud.agent_audience())?;
    let id = claims
        .get("xms_mirid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let oid = claims
        .get("oid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let known = cloud.read(|m| {
        m.machines.get(&id).is_some_and(|r| {
            r.resource
                .identity
                .as_ref()
                .and_then(|i| i.principal_id.as_deref())
                == Some(oid.as_str())
        })
    });
    if !known {
        return Err(ArmError::new(
            StatusCode::FORBIDDEN,
            "MachineNotFound",
            "This token does not belong to a connected machine; the machine may have been deleted. Connect it again.",
        ));
    }
    Ok(id)
}

/// `POST /agent/v1/heartbeat`
pub async fn heartbeat(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    Json(beat): Json<HeartbeatRequest>,
) -> Response {
    let id = match machine(&cloud, &headers) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let now = cloud.now();
    let result = cloud.write(|m| {
        let sequence = m.machine_sequence(&id);
        let record = m.machines.get_mut(&id)?;
        let before = status_of(record, now);
        if before == "Expired" {
            return Some(Err(ArmError::new(
                StatusCode::FORBIDDEN,
                "MachineExpired",
                "This machine has not sent a heartbeat in 45 days and its identity has expired; only a fresh `tether connect` revives it.",
            )));
        }
        if before != "Connected" {
            record.status_since = now;
        }
        record.last_heartbeat = Some(now);
        let p = &mut record.resource.properties;
        p.agent_version = Some(beat.agent_version.clone());
        if !beat.service_statuses.is_null() {
            p.service_statuses = Some(beat.service_statuses.clone());
        }
        if !beat.agent_configuration.is_null() {
            p.agent_configuration = Some(beat.agent_configuration.clone());
        }
        Some(Ok(HeartbeatResponse { status: "Connected".into(), extensions_sequence: sequence }))
    });
    match result {
        Some(Ok(body)) => Json(body).into_response(),
        Some(Err(e)) => e.into_response(),
        None => ArmError::not_found("MachineNotFound", "The machine was deleted.").into_response(),
    }
}

/// `GET /agent/v1/extensions`
pub async fn desired(State(cloud): State<Arc<Cloud>>, headers: HeaderMap) -> Response {
    let id = match machine(&cloud, &headers) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let body = cloud.read(|m| {
        let extensions = m
            .extensions_of(&id)
            .filter(|e| !e.deleting)
            .map(|e| {
                let p = &e.resource.properties;
                let item = m.gallery.get(&crate::gallery::key(
                    &p.publisher,
                    &p.extension_type,
                    &p.type_handler_version,
                ));
                DesiredExtension {
                    name: e.resource.name.clone(),
                    publisher: p.publisher.clone(),
                    extension_type: p.extension_type.clone(),
                    version: p.type_handler_version.clone(),
                    settings: p.settings.clone(),
                    protected_settings: e.protected_settings.clone(),
                    enable_automatic_upgrade: p.enable_automatic_upgrade,
                    package_url: item.map(|i| crate::gallery::url(&cloud, i)),
                    package_sha256: item.map(|i| i.sha256.clone()),
                    package_size: item.map(|i| i.size),
                    sequence: e.sequence,
                }
            })
            .collect();
        DesiredExtensions {
            sequence: m.machine_sequence(&id),
            extensions,
        }
    });
    Json(body).into_response()
}

/// `POST /agent/v1/extensions/{name}/status`
pub async fn report(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(report): Json<ExtensionStatusReport>,
) -> Response {
    let id = match machine(&cloud, &headers) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let key = format!("{id}/extensions/{}", name.to_ascii_lowercase());
    let now = cloud.now();
    let found = cloud.write(|m| {
        let Some(record) = m.extensions.get_mut(&key) else {
            return false;
        };
        record.resource.properties.provisioning_state = Some(
            match report.state.as_str() {
                "success" | "warning" => "Succeeded",
                "error" => "Failed",
                "removed" => "Deleted",
                _ => "Updating",
            }
            .into(),
        );
        let remove = report.state == "removed" && record.deleting;
        record.last_report = Some(report.clone());
        record.reported_at = Some(now);
        let pending = std::mem::take(&mut record.operations);
        let still = settle_operations(
            m,
            pending,
            report.sequence,
            &report.state,
            &report.message,
            now,
        );
        if remove {
            m.extensions.remove(&key);
        } else if let Some(record) = m.extensions.get_mut(&key) {
            record.operations = still;
        }
        true
    });
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ArmError::not_found(
            "ExtensionNotFound",
            format!("No extension '{name}' is assigned to this machine."),
        )
        .into_response()
    }
}
