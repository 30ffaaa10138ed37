//! Faults injected per route (a status such as 429 with Retry-After, 500,
//! 503; added latency; a reset connection; for the next N requests or with
//! a probability), and the log of every request seen, for tests to assert
//! retries and proxies. The admin API is neither faulted nor logged.

use crate::Cloud;
use crate::errors::ArmError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

const MAX_RECORDS: usize = 20_000;

/// One fault rule. A request matches when its path starts with `path` and,
/// if given, its method is `method`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub method: Option<String>,
    pub path: String,
    /// Answer with this status (and an error body in the route's shape).
    #[serde(default)]
    pub status: Option<u16>,
    /// With `status`: the `Retry-After` header, in seconds.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Delay the request this long first.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Drop the connection without a complete response.
    #[serde(default)]
    pub reset: bool,
    /// Fire for this many requests, then stop; unlimited when absent.
    #[serde(default)]
    pub count: Option<u32>,
    /// Fire with this probability (0 to 1); always when absent.
    #[serde(default)]
    pub probability: Option<f64>,
    /// How many times it fired.
    #[serde(default)]
    pub fired: u32,
}

/// A request tether-cloud saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    /// The `Via` header, which proxies add.
    pub via: Option<String>,
    pub user_agent: Option<String>,
    /// Seconds since the epoch (real time).
    pub time: u64,
    /// The id of the fault that answered it, if one did.
    pub fault: Option<u64>,
}

#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
    /// The latest requests, oldest first, at most [`MAX_RECORDS`].
    requests: Mutex<std::collections::VecDeque<RequestRecord>>,
    next_id: AtomicU64,
    next_seq: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Faults {
    pub fn add(&self, mut fault: Fault) -> u64 {
        fault.id = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        fault.fired = 0;
        let id = fault.id;
        lock(&self.rules).push(fault);
        id
    }

    pub fn list(&self) -> Vec<Fault> {
        lock(&self.rules).clone()
    }

    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    pub fn requests(&self, since: u64) -> Vec<RequestRecord> {
        lock(&self.requests)
            .iter()
            .filter(|r| r.seq > since)
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.requests).clear();
    }

    /// The rule that fires for this request, consuming one of its count.
    fn fire(&self, method: &str, path: &str) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        let rule = rules.iter_mut().find(|r| {
            path.starts_with(&r.path)
                && r.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && r.count.is_none_or(|c| c > 0)
                && r.probability.is_none_or(|p| roll() < p)
        })?;
        if let Some(c) = rule.count.as_mut() {
            *c -= 1;
        }
        rule.fired += 1;
        Some(rule.clone())
    }

    fn record(&self, mut record: RequestRecord) {
        record.seq = self.next_seq.fetch_add(1, Ordering::SeqCst) + 1;
        let mut requests = lock(&self.requests);
        if requests.len() >= MAX_RECORDS {
            requests.pop_front();
        }
        requests.push_back(record);
    }
}

fn roll() -> f64 {
    let n = u64::from_le_bytes(crate::util::random_bytes::<8>());
    (n >> 11) as f64 / (1u64 << 53) as f64
}

fn fault_response(path: &str, status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = if path.contains("/oauth2/") {
        crate::errors::OAuthErr::new(
            status,
            "temporarily_unavailable",
            90033,
            "Injected fault: the service is temporarily unavailable.",
        )
        .into_response()
    } else {
        let code = match status.as_u16() {
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            _ => "InternalServerError",
        };
        ArmError::new(status, code, format!("Injected fault: {status}.")).into_response()
    };
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::try_from(secs.to_string())
    {
        response.headers_mut().insert("retry-after", v);
    }
    response
}

/// A response whose body fails at once, so the connection is dropped
/// without a complete answer.
fn reset_response() -> Response {
    let mut response = Response::new(Body::new(FailingBody(false)));
    response
        .headers_mut()
        .insert("content-length", HeaderValue::from_static("1024"));
    response
}

struct FailingBody(bool);

impl http_body::Body for FailingBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.0 {
            return std::task::Poll::Ready(None);
        }
        self.0 = true;
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))))
    }
}

fn header(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub async fn middleware(State(cloud): State<Arc<Cloud>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with("/admin") {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let via = header(request.headers(), "via");
    let user_agent = header(request.headers(), "user-agent");
    let query = request.uri().query().unwrap_or_default().to_string();
    let mut record = RequestRecord {
        seq: 0,
        method: method.clone(),
        path: path.clone(),
        query,
        status: 0,
        via,
        user_agent,
        time: crate::util::real_now(),
        fault: None,
    };
    let fault = cloud.faults.fire(&method, &path);
    if let Some(f) = &fault
        && let Some(ms) = f.latency_ms
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let response = match &fault {
        Some(f) if f.reset => {
            record.fault = Some(f.id);
            reset_response()
        }
        Some(f) if f.status.is_some() => {
            record.fault = Some(f.id);
            fault_response(&path, f.status.unwrap_or(500), f.retry_after)
        }
        _ => next.run(request).await,
    };
    record.status = response.status().as_u16();
    cloud.faults.record(record);
    response
}
