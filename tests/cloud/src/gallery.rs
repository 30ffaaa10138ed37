//! The extension gallery: packages uploaded as opaque bytes under
//! publisher/name/version, downloaded by URL with their length and digest.
//! The gallery never alters or re-signs a package.

use crate::Cloud;
use crate::auth;
use crate::errors::ArmError;
use crate::model::GalleryItem;
use crate::util;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::sync::Arc;

/// Largest package the gallery accepts.
pub const MAX_PACKAGE_BYTES: usize = 64 << 20;

pub fn key(publisher: &str, name: &str, version: &str) -> String {
    format!("{publisher}/{name}/{version}").to_ascii_lowercase()
}

pub fn url(cloud: &Cloud, item: &GalleryItem) -> String {
    format!(
        "{}/gallery/{}/{}/{}",
        cloud.base_url, item.publisher, item.name, item.version
    )
}

/// `PUT /admin/gallery/{publisher}/{name}/{version}`
pub async fn upload(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    Path((publisher, name, version)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if let Err(e) = auth::admin(&cloud, &headers) {
        return e.into_response();
    }
    if body.is_empty() || body.len() > MAX_PACKAGE_BYTES {
        return ArmError::bad_request(
            "InvalidPackage",
            format!(
                "A package is 1 byte to {MAX_PACKAGE_BYTES} bytes; this one is {}.",
                body.len()
            ),
        )
        .into_response();
    }
    let item = GalleryItem {
        publisher,
        name,
        version,
        sha256: util::sha256_hex(&body),
        size: body.len() as u64,
        content: base64::engine::general_purpose::STANDARD.encode(&body),
    };
    let k = key(&item.publisher, &item.name, &item.version);
    let link = url(&cloud, &item);
    let meta = serde_json::json!({"url": link, "sha256": item.sha256, "size": item.size});
    cloud.write(|m| m.gallery.insert(k, item));
    (StatusCode::CREATED, Json(meta)).into_response()
}

/// `GET /gallery/{publisher}/{name}/{version}`
pub async fn download(
    State(cloud): State<Arc<Cloud>>,
    Path((publisher, name, version)): Path<(String, String, String)>,
) -> Response {
    let Some(item) = cloud.read(|m| m.gallery.get(&key(&publisher, &name, &version)).cloned())
    else {
        return ArmError::not_found(
            "PackageNotFound",
            format!("No package {publisher}/{name} version {version} in the gallery."),
        )
        .into_response();
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&item.content) else {
        return ArmError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "PackageCorrupt",
            "The stored package is damaged.",
        )
        .into_response();
    };
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::try_from(format!(
        "sha-256={}",
        base64::engine::general_purpose::STANDARD
            .encode(hex::decode(&item.sha256).unwrap_or_default())
    )) {
        h.insert("digest", v);
    }
    if let Ok(v) = HeaderValue::try_from(item.sha256.clone()) {
        h.insert("x-ms-content-sha256", v);
    }
    response
}
