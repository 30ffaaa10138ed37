//! Errors in the shapes real clients expect: ARM's envelope and Entra's.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tether_cloud_api::arm::ErrorResponse;
use tether_cloud_api::identity::OAuthError;

/// An ARM error: `{"error": {"code", "message"}}` with a status.
#[derive(Debug)]
pub struct ArmError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ArmError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorResponse::new(self.code, self.message)),
        )
            .into_response();
        response
            .headers_mut()
            .insert("x-ms-failure-cause", HeaderValue::from_static("gateway"));
        response
    }
}

/// An Entra token-endpoint error.
#[derive(Debug)]
pub struct OAuthErr {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub code: u32,
}

impl OAuthErr {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            code,
        }
    }

    pub fn invalid_client(code: u32, description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        )
    }

    pub fn invalid_grant(code: u32, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", code, description)
    }

    pub fn invalid_request(code: u32, description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            code,
            description,
        )
    }
}

impl IntoResponse for OAuthErr {
    fn into_response(self) -> Response {
        let body = OAuthError {
            error: self.error.to_string(),
            error_description: format!("AADSTS{}: {}", self.code, self.description),
            error_codes: vec![self.code],
            timestamp: Some(crate::util::rfc3339(crate::util::real_now())),
            trace_id: Some(crate::util::guid()),
            correlation_id: Some(crate::util::guid()),
        };
        (self.status, Json(body)).into_response()
    }
}
