//! Outbound HTTP, allowed only to hosts the extension's manifest declares
//! and the operator allows. Anything else fails with the code `denied`.

use crate::Error;
use crate::bindings::tether::extension::outbound_http::{self, Request};

pub use crate::bindings::tether::extension::outbound_http::Response;

/// Sends a GET request.
///
/// ```no_run
/// let response = tether_sdk::http::get("https://status.example.com/health")?;
/// assert_eq!(response.status, 200);
/// # Ok::<(), tether_sdk::Error>(())
/// ```
pub fn get(url: &str) -> Result<Response, Error> {
    send("GET", url, &[], None)
}

/// Sends a request with any method, headers and body.
///
/// ```no_run
/// let body = br#"{"ok":true}"#.to_vec();
/// let headers = [("content-type".to_string(), "application/json".to_string())];
/// tether_sdk::http::send("POST", "https://collector.example.com/v1", &headers, Some(body))?;
/// # Ok::<(), tether_sdk::Error>(())
/// ```
pub fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
) -> Result<Response, Error> {
    outbound_http::send(&Request {
        method: method.to_string(),
        url: url.to_string(),
        headers: headers.to_vec(),
        body,
    })
    .map_err(Error::from)
}
