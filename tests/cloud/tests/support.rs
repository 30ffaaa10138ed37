//! A bootstrapped tether-cloud and a small client for the suites.

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use tether_cloud::client::AdminClient;
use tether_cloud::{BackgroundCloud, CloudConfig};
use tether_cloud_api::jwt;

pub const API: &str = "api-version=2024-07-10";

pub struct World {
    pub cloud: BackgroundCloud,
    pub admin: AdminClient,
    pub demo: Value,
    pub http: Client,
}

impl World {
    pub fn start() -> Result<Self> {
        Self::with(CloudConfig {
            page_size: 2,
            device_code_interval: 1,
            ..CloudConfig::default()
        })
    }

    pub fn with(config: CloudConfig) -> Result<Self> {
        let cloud = BackgroundCloud::start(config)?;
        let admin = cloud.admin()?;
        let demo = admin.bootstrap()?;
        let http = Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            cloud,
            admin,
            demo,
            http,
        })
    }

    pub fn url(&self) -> &str {
        &self.cloud.url
    }

    pub fn tenant(&self) -> String {
        self.demo["tenantId"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn sub(&self) -> String {
        self.demo["subscriptionId"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.url(), self.tenant())
    }

    pub fn arm_scope(&self) -> String {
        format!("{}/.default", self.url())
    }

    pub fn agent_scope(&self) -> String {
        format!("{}/agent/.default", self.url())
    }

    pub fn form(&self, url: &str, form: &[(&str, &str)]) -> Result<Response> {
        Ok(self.http.post(url).form(form).send()?)
    }

    /// A token for one of the demo service principals ("administrator" or
    /// "onboarding").
    pub fn sp_token(&self, who: &str, scope: &str) -> Result<String> {
        let sp = &self.demo[who];
        let response = self.form(
            &self.token_url(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", sp["clientId"].as_str().unwrap_or_default()),
                ("client_secret", sp["secret"].as_str().unwrap_or_default()),
                ("scope", scope),
            ],
        )?;
        let body: Value = response.json()?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .context(format!("no token: {body}"))
    }

    pub fn admin_token(&self) -> Result<String> {
        self.sp_token("administrator", &self.arm_scope())
    }

    pub fn machine_path(&self, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/demo/providers/Microsoft.HybridCompute/machines/{name}",
            self.sub()
        )
    }

    pub fn arm(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Result<Response> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut request = self
            .http
            .request(method, format!("{}{path}{sep}{API}", self.url()))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Ok(request.send()?)
    }

    /// Connects a machine (ARM PUT with a fresh identity key); returns its
    /// resource and key.
    pub fn connect(&self, name: &str, vm_id: &str) -> Result<(Value, SigningKey)> {
        let key = SigningKey::from_bytes(&tether_key());
        let body = json!({
            "location": "local",
            "properties": {"vmId": vm_id, "osType": "linux", "osName": "debian", "agentVersion": "0.1.0",
                           "clientPublicKey": jwt::public_key_text(&key.verifying_key())}
        });
        let response = self.arm(
            reqwest::Method::PUT,
            &self.machine_path(name),
            &self.admin_token()?,
            Some(body),
        )?;
        anyhow::ensure!(
            response.status().is_success(),
            "connect failed: {}",
            response.text()?
        );
        Ok((response.json()?, key))
    }

    /// A token for a connected machine, with a client assertion signed by
    /// its own key.
    pub fn machine_token(&self, machine: &Value, key: &SigningKey) -> Result<String> {
        let principal = machine["identity"]["principalId"]
            .as_str()
            .unwrap_or_default();
        let assertion =
            jwt::client_assertion(principal, &self.token_url(), key, None, now(), &uuid());
        let response = self.form(
            &self.token_url(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", principal),
                (
                    "client_assertion_type",
                    tether_cloud_api::identity::JWT_BEARER_ASSERTION,
                ),
                ("client_assertion", &assertion),
                ("scope", &self.agent_scope()),
            ],
        )?;
        let body: Value = response.json()?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .context(format!("no machine token: {body}"))
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn uuid() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

pub fn tether_key() -> [u8; 32] {
    let mut b = [0u8; 32];
    let _ = getrandom::fill(&mut b);
    b
}

/// Asserts an Entra-shaped error.
pub fn assert_oauth_error(response: Response, status: u16, error: &str, code: &str) -> Result<()> {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json()?;
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.starts_with(&format!("AADSTS{code}")), "{body}");
    Ok(())
}

/// Asserts an ARM error envelope.
pub fn assert_arm_error(response: Response, status: u16, code: &str) -> Result<Value> {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json()?;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    Ok(body)
}

/// A `tether-cloud serve` process, killed when dropped.
pub struct Served(pub Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tether-cloud serve` on a free loopback port with `args`, and the JSON
/// line it prints once it serves.
pub fn serve(args: &[&str]) -> Result<(Served, Value)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether-cloud"))
        .args(["serve", "--listen", "127.0.0.1:0", "--json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let served = Served(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let info: Value = serde_json::from_str(&line).with_context(|| line.clone())?;
    Ok((served, info))
}
