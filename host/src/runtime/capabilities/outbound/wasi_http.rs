//! Standard WASI HTTP (`wasi:http/outgoing-handler`), so that components
//! built with other languages' ordinary HTTP libraries work unchanged.
//! There is one implementation behind it and Tether's own `outbound-http`:
//! each request is handed to [`HttpClient::send`], with the same origin
//! check against the extension's grant, the same network guard, the same
//! deadline (the call's) and the same 8 MiB bodies.

use super::client::{HttpClient, MAX_BODY_BYTES, OutboundGrant};
use crate::runtime::wit::latest::outbound_http::Request;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use std::time::Instant;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// What one activation's `wasi:http` requests are sent with.
pub(crate) struct Hooks {
    pub(crate) grant: OutboundGrant,
    pub(crate) http: Arc<HttpClient>,
    /// The current call's deadline, set before each use.
    pub(crate) deadline: Instant,
}

/// Tether's error codes in `wasi:http`'s terms.
fn error_code(code: &str, message: String) -> Error {
    match code {
        "denied" => Error::HttpRequestDenied,
        "timeout" => Error::ConnectionTimeout,
        "too-large" => Error::HttpResponseBodySize(None),
        "unreachable" => Error::DestinationUnavailable,
        _ => Error::InternalError(Some(message)),
    }
}

type Sent = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<(), Error>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for Hooks {
    // reqwest sets `Host` from the URL, which the grant was checked against.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let (http, grant, deadline) = (self.http.clone(), self.grant.clone(), self.deadline);
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = Limited::new(body, MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|_| Error::HttpRequestBodySize(None))?
                .to_bytes();
            let request = Request {
                method: parts.method.to_string(),
                url: parts.uri.to_string(),
                headers: parts
                    .headers
                    .iter()
                    .filter(|(name, _)| *name != http::header::HOST)
                    .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                    .collect(),
                body: (!body.is_empty()).then(|| body.to_vec()),
            };
            // The client is blocking: off the runtime's threads.
            let answer = tokio::task::spawn_blocking(move || http.send(&grant, request, deadline))
                .await
                .map_err(|e| Error::InternalError(Some(e.to_string())))?
                .map_err(|e| {
                    // wasi:http's error codes carry no text: the reason
                    // goes to the host's log.
                    tracing::warn!("an extension's wasi:http request failed: {}", e.message);
                    error_code(&e.code, e.message)
                })?;
            let mut response = http::Response::builder().status(answer.status);
            for (name, value) in &answer.headers {
                response = response.header(name, value);
            }
            let body = Full::new(Bytes::from(answer.body))
                .map_err(|never| match never {})
                .boxed_unsync();
            let response = response
                .body(body)
                .map_err(|e| Error::InternalError(Some(e.to_string())))?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}
