//! The Resource Manager calls the lifecycle makes: the machine resource.
//!
//! As the Azure SDKs do, every call is retried on 429 and 5xx (after the
//! `Retry-After` ARM sends, within a bound), and an answer that starts a
//! long-running operation (202 with `Azure-AsyncOperation` or `Location`)
//! is followed until the operation ends.

use super::Endpoints;
use super::agent::retry_after_header as retry_after;
use super::proxy::{ProxyPolicy, client};
use crate::config::ProxyService;
use anyhow::{Context, Result, bail};
use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use std::time::{Duration, Instant};
use tether_cloud_api::arm::{API_VERSION, AsyncOperation, ErrorResponse, Machine};

/// Retries of one request answered 429 or 5xx.
const RETRIES: u32 = 4;
/// The longest one wait lasts, whatever `Retry-After` says.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long a long-running operation is followed before the agent gives up.
const OPERATION_LIMIT: Duration = Duration::from_secs(10 * 60);

/// An ARM request that failed, with ARM's own code and message.
#[derive(Debug, thiserror::Error)]
#[error("{message} ({status}, {code})")]
pub struct ArmFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

pub struct ArmClient {
    base: url::Url,
    token: String,
    http: reqwest::blocking::Client,
}

impl ArmClient {
    pub fn new(
        endpoints: &Endpoints,
        proxy: &ProxyPolicy,
        ca_pem: Option<&[u8]>,
        token: String,
    ) -> Result<Self> {
        let route = proxy.route(ProxyService::Arm, &endpoints.resource_manager);
        Ok(Self {
            base: endpoints.resource_manager.clone(),
            token,
            http: client(&route, ca_pem)?,
        })
    }

    fn url(&self, id: &str) -> Result<url::Url> {
        let mut url = self
            .base
            .join(id.trim_start_matches('/'))
            .with_context(|| format!("`{id}` is not a resource id"))?;
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        Ok(url)
    }

    fn failure(response: reqwest::blocking::Response) -> ArmFailure {
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        match serde_json::from_str::<ErrorResponse>(&text) {
            Ok(e) => ArmFailure {
                status,
                code: e.error.code,
                message: e.error.message,
            },
            Err(_) => ArmFailure {
                status,
                code: "Unknown".into(),
                message: text.chars().take(300).collect(),
            },
        }
    }

    /// Sends the request `build` makes, again after 429 and 5xx answers.
    fn send(&self, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        let mut attempt = 0;
        loop {
            let response = build()
                .bearer_auth(&self.token)
                .send()
                .map_err(super::unreachable("Azure Resource Manager"))?;
            let status = response.status();
            let transient = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if !transient || attempt == RETRIES {
                return Ok(response);
            }
            let wait = retry_after(&response)
                .unwrap_or(Duration::from_secs(1 << attempt))
                .min(MAX_WAIT);
            tracing::info!(
                "Resource Manager answered {status}; retrying in {}s",
                wait.as_secs()
            );
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    /// Follows the long-running operation `response` started, if it did,
    /// until it ends. The status URL must be on ARM's own origin: the
    /// token goes there.
    fn finish(&self, response: Response) -> Result<Result<Response, ArmFailure>> {
        if response.status() != StatusCode::ACCEPTED && response.status() != StatusCode::CREATED {
            return Ok(Ok(response));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let Some(status_url) = header("azure-asyncoperation").or_else(|| header("location")) else {
            return Ok(Ok(response));
        };
        let status_url = self.base.join(&status_url).with_context(|| {
            format!("ARM named an operation status URL that is no URL: {status_url}")
        })?;
        if status_url.origin() != self.base.origin() {
            bail!(
                "ARM named an operation status URL on another origin ({status_url}); the agent sends its token to {} only",
                self.base.origin().ascii_serialization()
            );
        }
        let deadline = Instant::now() + OPERATION_LIMIT;
        let mut wait = retry_after(&response).unwrap_or(Duration::from_secs(1));
        loop {
            std::thread::sleep(wait.min(MAX_WAIT));
            let poll = self.send(|| self.http.get(status_url.clone()))?;
            if poll.status() == StatusCode::ACCEPTED {
                // A `Location` URL answers 202 while the operation runs.
                wait = retry_after(&poll).unwrap_or(Duration::from_secs(1));
            } else if !poll.status().is_success() {
                return Ok(Err(Self::failure(poll)));
            } else if poll.status() == StatusCode::NO_CONTENT {
                return Ok(Ok(poll));
            } else {
                wait = retry_after(&poll).unwrap_or(Duration::from_secs(1));
                let text = poll.text().unwrap_or_default();
                let operation: AsyncOperation = match serde_json::from_str(&text) {
                    Ok(operation) => operation,
                    // A `Location` URL's final answer is the outcome itself.
                    Err(_) => return Ok(Ok(response)),
                };
                match operation.status.as_str() {
                    "Succeeded" => return Ok(Ok(response)),
                    "Failed" | "Canceled" => {
                        let error = operation.error.unwrap_or_default();
                        return Ok(Err(ArmFailure {
                            status: 200,
                            code: if error.code.is_empty() {
                                operation.status
                            } else {
                                error.code
                            },
                            message: error.message,
                        }));
                    }
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the Resource Manager operation {status_url} did not end within {} minutes; it may still finish: look at the resource before retrying",
                    OPERATION_LIMIT.as_secs() / 60
                );
            }
        }
    }

    /// Creates or updates the machine resource.
    pub fn put_machine(
        &self,
        id: &str,
        machine: &Machine,
        correlation_id: &str,
    ) -> Result<Result<Machine, ArmFailure>> {
        let url = self.url(id)?;
        let response = self.send(|| {
            self.http
                .put(url.clone())
                .header("x-ms-correlation-request-id", correlation_id)
                .json(machine)
        })?;
        if !response.status().is_success() {
            return Ok(Err(Self::failure(response)));
        }
        let accepted = response.status() == StatusCode::ACCEPTED;
        match self.finish(response)? {
            Ok(response) if !accepted => Ok(Ok(response
                .json()
                .context("ARM returned a machine that could not be read")?)),
            Ok(_) => {
                let done = self.send(|| self.http.get(url.clone()))?;
                if !done.status().is_success() {
                    return Ok(Err(Self::failure(done)));
                }
                Ok(Ok(done.json().context(
                    "ARM returned a machine that could not be read",
                )?))
            }
            Err(failure) => Ok(Err(failure)),
        }
    }

    /// Creates or updates an extension's resource. Its operation is not
    /// followed: it ends when the machine reports the extension.
    pub fn put_extension(
        &self,
        machine_id: &str,
        name: &str,
        extension: &tether_cloud_api::arm::MachineExtension,
        correlation_id: &str,
    ) -> Result<Result<(), ArmFailure>> {
        let url = self.url(&format!("{machine_id}/extensions/{name}"))?;
        let response = self.send(|| {
            self.http
                .put(url.clone())
                .header("x-ms-correlation-request-id", correlation_id)
                .json(extension)
        })?;
        if response.status().is_success() {
            return Ok(Ok(()));
        }
        Ok(Err(Self::failure(response)))
    }

    /// Deletes an extension's resource (its cloud record); gone counts as
    /// deleted. Its operation is not followed: on a connected machine it
    /// ends when this agent reports the extension removed, which it does
    /// only after the cloud's records are gone (disconnect deletes the
    /// machine next, which ends it).
    pub fn delete_extension(
        &self,
        machine_id: &str,
        name: &str,
        correlation_id: &str,
    ) -> Result<Result<(), ArmFailure>> {
        let url = self.url(&format!("{machine_id}/extensions/{name}"))?;
        let response = self.send(|| {
            self.http
                .delete(url.clone())
                .header("x-ms-correlation-request-id", correlation_id)
        })?;
        if response.status().is_success() || response.status() == StatusCode::NOT_FOUND {
            return Ok(Ok(()));
        }
        Ok(Err(Self::failure(response)))
    }

    /// Deletes the machine resource and follows its deletion to the end; a
    /// resource already gone counts as deleted.
    pub fn delete_machine(&self, id: &str, correlation_id: &str) -> Result<Result<(), ArmFailure>> {
        let url = self.url(id)?;
        let response = self.send(|| {
            self.http
                .delete(url.clone())
                .header("x-ms-correlation-request-id", correlation_id)
        })?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(Ok(()));
        }
        if !response.status().is_success() {
            return Ok(Err(Self::failure(response)));
        }
        Ok(self.finish(response)?.map(|_| ()))
    }
}
