//! Heartbeats move a machine Connected → Disconnected → Expired as the
//! clock advances; only a fresh connect revives an expired machine.

use crate::support::*;
use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};

fn status(w: &World, token: &str) -> Result<String> {
    let m: Value = w
        .arm(Method::GET, &w.machine_path("m1"), token, None)?
        .json()?;
    Ok(m["properties"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

#[test]
fn status_follows_heartbeats_and_the_clock() -> Result<()> {
    let w = World::start()?;
    let token = w.admin_token()?;
    let (machine, key) = w.connect("m1", "v1")?;
    let beat = |w: &World| -> Result<reqwest::blocking::Response> {
        let machine_token = w.machine_token(&machine, &key)?;
        Ok(w.http
            .post(format!("{}/agent/v1/heartbeat", w.url()))
            .bearer_auth(machine_token)
            .json(&json!({"agentVersion": "0.1.1", "serviceStatuses": {"tether": "running"}, "extensions": []}))
            .send()?)
    };
    assert_eq!(status(&w, &token)?, "Connected");
    let response = beat(&w)?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>()?["status"], "Connected");
    let m: Value = w
        .arm(Method::GET, &w.machine_path("m1"), &token, None)?
        .json()?;
    assert_eq!(m["properties"]["agentVersion"], "0.1.1");
    assert_eq!(m["properties"]["serviceStatuses"]["tether"], "running");

    w.admin.advance_clock(14 * 60)?;
    assert_eq!(status(&w, &w.admin_token()?)?, "Connected");
    w.admin.advance_clock(2 * 60)?;
    let token = w.admin_token()?;
    assert_eq!(status(&w, &token)?, "Disconnected");
    assert_eq!(beat(&w)?.status(), 200);
    assert_eq!(status(&w, &token)?, "Connected");

    w.admin.advance_clock(46 * 24 * 3600)?;
    let token = w.admin_token()?;
    assert_eq!(status(&w, &token)?, "Expired");
    let refused = beat(&w)?;
    let e = assert_arm_error(refused, 403, "MachineExpired")?;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("tether connect")
    );
    // A fresh connect (PUT by the same machine) revives it.
    w.connect("m1", "v1")?;
    assert_eq!(status(&w, &token)?, "Connected");
    Ok(())
}

#[test]
fn the_agent_service_takes_only_machine_tokens() -> Result<()> {
    let w = World::start()?;
    let arm_token = w.admin_token()?;
    let response = w
        .http
        .post(format!("{}/agent/v1/heartbeat", w.url()))
        .bearer_auth(arm_token)
        .json(&json!({"agentVersion": "x"}))
        .send()?;
    assert_arm_error(response, 401, "InvalidAuthenticationTokenAudience")?;
    let sp_agent_token = w.sp_token("administrator", &w.agent_scope())?;
    let response = w
        .http
        .post(format!("{}/agent/v1/heartbeat", w.url()))
        .bearer_auth(sp_agent_token)
        .json(&json!({"agentVersion": "x"}))
        .send()?;
    assert_arm_error(response, 403, "MachineNotFound")?;
    // A deleted machine's token stops working.
    let (machine, key) = w.connect("m1", "v1")?;
    let machine_token = w.machine_token(&machine, &key)?;
    w.arm(
        Method::DELETE,
        &w.machine_path("m1"),
        &w.admin_token()?,
        None,
    )?;
    let response = w
        .http
        .get(format!("{}/agent/v1/extensions", w.url()))
        .bearer_auth(machine_token)
        .send()?;
    assert_arm_error(response, 403, "MachineNotFound")?;
    Ok(())
}
