//! The Resource Manager calls the lifecycle makes: the machine resource.

use super::Endpoints;
use super::proxy::{ProxyPolicy, client};
use crate::config::ProxyService;
use anyhow::{Context, Result};
use reqwest::StatusCode;
use tether_cloud_api::arm::{API_VERSION, ErrorResponse, Machine};

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

    /// Creates or updates the machine resource.
    pub fn put_machine(
        &self,
        id: &str,
        machine: &Machine,
        correlation_id: &str,
    ) -> Result<Result<Machine, ArmFailure>> {
        let response = self
            .http
            .put(self.url(id)?)
            .bearer_auth(&self.token)
            .header("x-ms-correlation-request-id", correlation_id)
            .json(machine)
            .send()
            .context("could not reach Azure Resource Manager")?;
        if response.status().is_success() {
            return Ok(Ok(response
                .json()
                .context("ARM returned a machine that could not be read")?));
        }
        Ok(Err(Self::failure(response)))
    }

    /// Deletes an extension's resource (its cloud record); gone counts as deleted.
    pub fn delete_extension(
        &self,
        machine_id: &str,
        name: &str,
        correlation_id: &str,
    ) -> Result<Result<(), ArmFailure>> {
        self.delete_machine(&format!("{machine_id}/extensions/{name}"), correlation_id)
    }

    /// Deletes the machine resource; a resource already gone counts as deleted.
    pub fn delete_machine(&self, id: &str, correlation_id: &str) -> Result<Result<(), ArmFailure>> {
        let response = self
            .http
            .delete(self.url(id)?)
            .bearer_auth(&self.token)
            .header("x-ms-correlation-request-id", correlation_id)
            .send()
            .context("could not reach Azure Resource Manager")?;
        if response.status().is_success() || response.status() == StatusCode::NOT_FOUND {
            return Ok(Ok(()));
        }
        Ok(Err(Self::failure(response)))
    }
}
