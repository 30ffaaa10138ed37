//! A client of a running tether-cloud's admin API, for the `admin`
//! commands and for tests.

use crate::faults::{Fault, RequestRecord};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

pub struct AdminClient {
    base: String,
    key: String,
    http: reqwest::blocking::Client,
}

impl AdminClient {
    pub fn new(url: &str, admin_key: &str) -> Result<Self> {
        Self::with_ca(url, admin_key, None)
    }

    /// A client that also trusts `ca_pem` (tether-cloud's `--tls` CA).
    pub fn with_ca(url: &str, admin_key: &str, ca_pem: Option<&str>) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::blocking::Client::builder().no_proxy();
        if let Some(pem) = ca_pem {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
        }
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            key: admin_key.to_string(),
            http: builder.build()?,
        })
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}/admin{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .with_context(|| format!("could not reach tether-cloud at {}", self.base))?;
        let status = response.status();
        let text = response.text().unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {path} failed with {status}: {text}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {path} returned something that is not JSON"))
    }

    pub fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.send(reqwest::Method::POST, path, Some(body))
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.send(reqwest::Method::GET, path, None)
    }

    pub fn delete(&self, path: &str) -> Result<Value> {
        self.send(reqwest::Method::DELETE, path, None)
    }

    /// A demo world: tenant, subscription, group, an administrator and an
    /// onboarding service principal (with secrets), and a user.
    pub fn bootstrap(&self) -> Result<Value> {
        self.post("/bootstrap", json!({}))
    }

    pub fn advance_clock(&self, seconds: u64) -> Result<Value> {
        self.post("/clock/advance", json!({"seconds": seconds}))
    }

    pub fn approve_device_code(&self, user_code: &str, username: &str) -> Result<Value> {
        self.post(
            &format!("/deviceCodes/{user_code}/approve"),
            json!({"username": username}),
        )
    }

    pub fn deny_device_code(&self, user_code: &str) -> Result<Value> {
        self.post(&format!("/deviceCodes/{user_code}/deny"), json!({}))
    }

    pub fn add_fault(&self, fault: &Fault) -> Result<u64> {
        let v = self.post("/faults", serde_json::to_value(fault)?)?;
        v["id"]
            .as_u64()
            .context("tether-cloud did not return the fault's id")
    }

    pub fn clear_faults(&self) -> Result<()> {
        self.delete("/faults").map(|_| ())
    }

    pub fn requests(&self, since: u64) -> Result<Vec<RequestRecord>> {
        Ok(serde_json::from_value(
            self.get(&format!("/requests?since={since}"))?,
        )?)
    }

    pub fn upload_package(
        &self,
        publisher: &str,
        name: &str,
        version: &str,
        bytes: Vec<u8>,
    ) -> Result<Value> {
        let url = format!("{}/admin/gallery/{publisher}/{name}/{version}", self.base);
        let response = self
            .http
            .put(&url)
            .bearer_auth(&self.key)
            .body(bytes)
            .send()?;
        let status = response.status();
        let text = response.text().unwrap_or_default();
        if !status.is_success() {
            bail!("uploading the package failed with {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }
}
