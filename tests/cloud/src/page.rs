//! A read-only page: the fleet's counts by status, then its machines a
//! page at a time with their status, last heartbeat and extensions, the
//! way an operator glances at a portal.

use crate::Cloud;
use crate::arm::{status_of, view_extension};
use crate::util::rfc3339;
use axum::extract::{Query, State};
use axum::response::Html;
use std::sync::Arc;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Machines on one page.
const PAGE: usize = 50;

#[derive(serde::Deserialize)]
pub struct PageQuery {
    /// Where the page before ended (opaque).
    after: Option<String>,
}

pub async fn index(
    State(cloud): State<Arc<Cloud>>,
    Query(query): Query<PageQuery>,
) -> Html<String> {
    let now = cloud.now();
    let fleet = crate::fleet::summary(&cloud);
    let after = query
        .after
        .and_then(|t| tether_cloud_api::jwt::b64url_decode(&t).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (rows, next): (String, Option<String>) =
        cloud.read(|m| {
            let (page, more) = m.machines.page("", after.as_deref(), PAGE);
            let next = page
                .last()
                .filter(|_| more)
                .map(|(key, _)| tether_cloud_api::jwt::b64url(key.as_bytes()));
            let rows = page
            .into_iter()
            .map(|(key, r)| {
                let extensions: Vec<String> = m
                    .extensions_of(key)
                    .map(|e| {
                        let v = view_extension(e);
                        let mut status = v
                            .properties
                            .instance_view
                            .as_ref()
                            .map(|i| format!(": {}", escape(&i.status.message)))
                            .unwrap_or_default();
                        if let Some(document) = e.last_report.as_ref().and_then(|r| r.document.as_ref()) {
                            let size = document.to_string().len();
                            status.push_str(&format!(" [document, {size} bytes]"));
                        }
                        format!(
                            "{}/{} {} ({}){status}",
                            escape(&v.properties.publisher),
                            escape(&v.properties.extension_type),
                            escape(&v.properties.type_handler_version),
                            escape(v.properties.provisioning_state.as_deref().unwrap_or("-"))
                        )
                    })
                    .collect();
                let metrics = m
                    .metrics
                    .get(key)
                    .map(|r| escape(&crate::metrics::summary(r)))
                    .unwrap_or_else(|| "-".into());
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{metrics}</td></tr>",
                    escape(&r.resource.name),
                    escape(key.split('/').nth(4).unwrap_or_default()),
                    status_of(r, now),
                    r.last_heartbeat.map(rfc3339).unwrap_or_else(|| "-".into()),
                    escape(r.resource.properties.agent_version.as_deref().unwrap_or("-")),
                    if extensions.is_empty() { "-".to_string() } else { extensions.join("<br>") }
                )
            })
            .collect();
            (rows, next)
        });
    let next = next
        .map(|token| format!("<p><a href=\"/?after={token}\">Next {PAGE} machines</a></p>"))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>tether-cloud</title><meta http-equiv=refresh content=5></head>\
<body style=\"font-family:sans-serif\"><h1>tether-cloud</h1>\
<p>{} machines: <b>{} Connected</b>, {} Disconnected, {} Expired; {} extensions, {} operations in progress (the clock reads {}).</p>\
<table border=1 cellpadding=4 style=\"border-collapse:collapse\"><tr><th>Name</th><th>Resource group</th><th>Status</th><th>Last heartbeat</th><th>Agent</th><th>Extensions</th><th>Metrics</th></tr>{rows}</table>{next}</body></html>",
        fleet.machines,
        fleet.connected,
        fleet.disconnected,
        fleet.expired,
        fleet.extensions,
        fleet.operations_in_progress,
        rfc3339(now)
    ))
}
