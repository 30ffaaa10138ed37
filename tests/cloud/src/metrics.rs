//! A small metrics sink for extensions such as the health sample: a
//! machine's extension posts its latest measurements, tether-cloud keeps
//! the latest per machine and shows them on its page and in the admin
//! API's machine list. Posting needs the sink's key (`metricsKey` in the
//! bootstrap's answer, given to the extension as a protected setting) and
//! names a machine tether-cloud knows.

use crate::Cloud;
use crate::errors::ArmError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// The most one post may hold.
pub const MAX_BODY: usize = 64 * 1024;

/// The latest measurements of one machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsRecord {
    /// When they arrived (tether-cloud's clock).
    pub received: u64,
    pub values: Value,
}

/// `POST /metrics/v1/ingest` with `{"resourceId": …, …}`.
pub async fn ingest(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let key = cloud.read(|m| m.meta.metrics_key.clone());
    let presented = crate::auth::bearer(&headers).unwrap_or_default();
    if key.is_empty() || !crate::util::same(presented, &key) {
        return ArmError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidMetricsKey",
            "Send the sink's key as 'Authorization: Bearer KEY' (metricsKey in the bootstrap's answer).",
        )
        .into_response();
    }
    if body.len() > MAX_BODY {
        return ArmError::bad_request(
            "PayloadTooLarge",
            format!("At most {MAX_BODY} bytes per post."),
        )
        .into_response();
    }
    let values: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return ArmError::bad_request("InvalidMetrics", "The body is one JSON object.")
                .into_response();
        }
    };
    let machine = values
        .get("resourceId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let now = cloud.now();
    let known = cloud.write(|m| {
        if !m.machines.contains_key(&machine) {
            return false;
        }
        m.metrics.insert(
            machine.clone(),
            MetricsRecord {
                received: now,
                values,
            },
        );
        true
    });
    if known {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ArmError::not_found(
            "MachineNotFound",
            "resourceId names no machine of this cloud.",
        )
        .into_response()
    }
}

/// One line for the page: the values that matter most, if present.
pub fn summary(record: &MetricsRecord) -> String {
    let v = &record.values;
    let mut parts = Vec::new();
    if let Some(cpu) = v.get("cpuPercent").and_then(Value::as_f64) {
        parts.push(format!("CPU {cpu:.1}%"));
    }
    if let Some(memory) = v.pointer("/memory/usedPercent").and_then(Value::as_f64) {
        parts.push(format!("memory {memory:.1}%"));
    }
    if let Some(load) = v.pointer("/load/0").and_then(Value::as_f64) {
        parts.push(format!("load {load:.2}"));
    }
    format!(
        "{} at {}",
        parts.join(", "),
        crate::util::rfc3339(record.received)
    )
}
