//! The device code flow: show a code, wait while the user signs in
//! elsewhere, honouring `authorization_pending` and `slow_down`; give up
//! after five minutes.

use super::token::{AGENT_CLIENT_ID, AuthFailure, Identity};
use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use tether_cloud_api::identity::{DEVICE_CODE_GRANT, DeviceCodeResponse, TokenResponse};

const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

pub(super) fn run(
    id: &Identity,
    tenant: &str,
    scope: &str,
    say: &mut dyn FnMut(&str),
) -> Result<TokenResponse> {
    let scope = &format!("{scope} offline_access");
    let url = id.url(tenant, "devicecode")?;
    let response = id
        .http(&url)?
        .post(url.clone())
        .form(&[("client_id", AGENT_CLIENT_ID), ("scope", scope)])
        .send()
        .map_err(crate::cloud::unreachable("the identity endpoint"))?;
    if !response.status().is_success() {
        let text = response.text().unwrap_or_default();
        return Err(AuthFailure {
            method: "device code",
            message: format!("the device code could not be started: {text}"),
        }
        .into());
    }
    let code: DeviceCodeResponse = response
        .json()
        .context("the device code response could not be read")?;
    say(&code.message);
    let started = Instant::now();
    let limit = GIVE_UP_AFTER.min(Duration::from_secs(code.expires_in));
    let mut interval = Duration::from_secs(code.interval.max(1));
    let mut last_note = Instant::now();
    loop {
        std::thread::sleep(interval);
        let waited = started.elapsed();
        if waited >= limit {
            return Err(AuthFailure { method: "device code", message: format!("nobody signed in with code {} within {} seconds; run the command again to get a new code", code.user_code, limit.as_secs()) }.into());
        }
        if last_note.elapsed() >= Duration::from_secs(15) {
            say(&format!(
                "waiting for the sign-in with code {}… {} s left",
                code.user_code,
                (limit - waited).as_secs()
            ));
            last_note = Instant::now();
        }
        match id.token(
            tenant,
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("client_id", AGENT_CLIENT_ID),
                ("device_code", &code.device_code),
            ],
        )? {
            Ok(token) => return Ok(token),
            Err(e) if e.error == "authorization_pending" => {}
            Err(e) if e.error == "slow_down" => interval += Duration::from_secs(5),
            Err(e) => {
                let why = match e.error.as_str() {
                    "expired_token" => "the code expired; run the command again".to_string(),
                    "access_denied" | "authorization_declined" => {
                        "the sign-in was declined".to_string()
                    }
                    _ => e.error_description,
                };
                return Err(AuthFailure {
                    method: "device code",
                    message: why,
                }
                .into());
            }
        }
    }
}
