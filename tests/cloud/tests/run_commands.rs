//! Run commands over real HTTP: ARM's resource (RBAC, the long-running
//! operation, what is never returned) and the machine's side (a long poll
//! that only the machine itself is answered, reports that settle the run,
//! a stale run's report ignored, output bounded, the operation timing out).

use crate::support::*;
use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn body(command_id: &str) -> Value {
    json!({"location": "local", "properties": {
        "source": {"commandId": command_id},
        "parameters": [{"name": "who", "value": "World"}],
        "protectedParameters": [{"name": "token", "value": "rc-secret-1"}],
        "timeoutInSeconds": 30
    }})
}

fn poll(w: &World, token: &str, wait: u64) -> Result<Value> {
    Ok(w.http
        .get(format!("{}/agent/v1/runcommands?wait={wait}", w.url()))
        .bearer_auth(token)
        .send()?
        .json()?)
}

fn report(w: &World, token: &str, name: &str, body: Value) -> Result<u16> {
    Ok(w.http
        .post(format!("{}/agent/v1/runcommands/{name}/status", w.url()))
        .bearer_auth(token)
        .json(&body)
        .send()?
        .status()
        .as_u16())
}

/// Where a long-running answer says to follow it.
fn async_url(response: &reqwest::blocking::Response) -> String {
    response
        .headers()
        .get("azure-asyncoperation")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn operation(w: &World, url: &str, token: &str) -> Result<Value> {
    Ok(w.http.get(url).bearer_auth(token).send()?.json()?)
}

#[test]
fn a_run_command_reaches_its_machine_only_and_ends_with_its_report() -> Result<()> {
    let w = World::start()?;
    let admin = w.admin_token()?;
    let (m1, k1) = w.connect("m1", "v1")?;
    let (m2, k2) = w.connect("m2", "v2")?;
    let path = format!("{}/runCommands/rc1", w.machine_path("m1"));

    let onboarding = w.sp_token("onboarding", &w.arm_scope())?;
    let refused = w.arm(
        Method::PUT,
        &path,
        &onboarding,
        Some(body("Contoso/Hello:greet")),
    )?;
    assert_arm_error(refused, 403, "AuthorizationFailed")?;

    let created = w.arm(
        Method::PUT,
        &path,
        &admin,
        Some(body("Contoso/Hello:greet")),
    )?;
    assert_eq!(created.status(), 201);
    let status_url = async_url(&created);
    let created: Value = created.json()?;
    assert_eq!(created["properties"]["provisioningState"], "Creating");
    assert_eq!(
        created["properties"]["instanceView"]["executionState"],
        "Pending"
    );
    assert!(
        created["properties"].get("protectedParameters").is_none(),
        "{created}"
    );
    assert_eq!(operation(&w, &status_url, &admin)?["status"], "InProgress");

    // Another machine is told nothing of it.
    let t2 = w.machine_token(&m2, &k2)?;
    assert_eq!(poll(&w, &t2, 0)?["commands"], json!([]));
    // Its own machine gets it at once from a long poll, secrets included.
    let t1 = w.machine_token(&m1, &k1)?;
    let asked = Instant::now();
    let pending = poll(&w, &t1, 20)?;
    assert!(asked.elapsed() < Duration::from_secs(5), "answered at once");
    let run = &pending["commands"][0];
    assert_eq!(run["commandId"], "Contoso/Hello:greet", "{pending}");
    assert_eq!(run["protectedParameters"][0]["value"], "rc-secret-1");
    let first_run = run["runId"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        report(
            &w,
            &t2,
            "rc1",
            json!({"runId": first_run, "executionState": "Succeeded", "exitCode": 0})
        )?,
        404,
        "another machine cannot settle it"
    );

    // Replaced before it ran: the old run's report changes nothing.
    let replaced = w.arm(
        Method::PUT,
        &path,
        &admin,
        Some(body("Contoso/Hello:greet")),
    )?;
    assert_eq!(replaced.status(), 200);
    assert_eq!(operation(&w, &status_url, &admin)?["status"], "Canceled");
    let status_url = async_url(&replaced);
    assert_eq!(
        report(
            &w,
            &t1,
            "rc1",
            json!({"runId": first_run, "executionState": "Succeeded", "exitCode": 0, "output": "stale"})
        )?,
        204
    );
    let get: Value = w.arm(Method::GET, &path, &admin, None)?.json()?;
    assert_eq!(
        get["properties"]["instanceView"]["executionState"], "Pending",
        "{get}"
    );

    let run_id = poll(&w, &t1, 0)?["commands"][0]["runId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(run_id, first_run);
    assert_eq!(
        report(
            &w,
            &t1,
            "rc1",
            json!({"runId": run_id, "executionState": "Running"})
        )?,
        204
    );
    assert_eq!(
        operation(&w, &status_url, &admin)?["status"],
        "InProgress",
        "not async: it waits for the end"
    );
    assert_eq!(
        poll(&w, &t1, 0)?["commands"],
        json!([]),
        "a started run is not offered again"
    );
    let long = format!("{}END", "x".repeat(10_000));
    assert_eq!(
        report(
            &w,
            &t1,
            "rc1",
            json!({"runId": run_id, "executionState": "Succeeded", "exitCode": 0, "output": long})
        )?,
        204
    );
    assert_eq!(operation(&w, &status_url, &admin)?["status"], "Succeeded");
    let get: Value = w.arm(Method::GET, &path, &admin, None)?.json()?;
    let view = &get["properties"]["instanceView"];
    assert_eq!(view["executionState"], "Succeeded", "{get}");
    let output = view["output"].as_str().unwrap_or_default();
    assert!(
        output.len() == 4096 && output.ends_with("END"),
        "the last 4 KiB: {}",
        output.len()
    );
    assert!(view["startTime"].is_string() && view["endTime"].is_string());
    assert_eq!(get["properties"]["provisioningState"], "Succeeded");
    assert!(
        get["properties"].get("protectedParameters").is_none(),
        "{get}"
    );

    let listed: Value = w
        .arm(
            Method::GET,
            &format!("{}/runCommands", w.machine_path("m1")),
            &admin,
            None,
        )?
        .json()?;
    assert_eq!(listed["value"][0]["name"], "rc1", "{listed}");

    assert_eq!(w.arm(Method::DELETE, &path, &admin, None)?.status(), 202);
    assert_arm_error(
        w.arm(Method::GET, &path, &admin, None)?,
        404,
        "ResourceNotFound",
    )?;
    assert_eq!(
        report(
            &w,
            &t1,
            "rc1",
            json!({"runId": run_id, "executionState": "Succeeded", "exitCode": 0})
        )?,
        404
    );
    assert_eq!(w.arm(Method::DELETE, &path, &admin, None)?.status(), 204);
    Ok(())
}

#[test]
fn what_tether_cannot_run_is_refused_and_an_unanswered_run_times_out() -> Result<()> {
    let w = World::start()?;
    let admin = w.admin_token()?;
    w.connect("m1", "v1")?;
    let path = format!("{}/runCommands/rc2", w.machine_path("m1"));
    for (bad, code) in [
        (
            json!({"location": "local", "properties": {"source": {"script": "id"}}}),
            "RunCommandSourceNotSupported",
        ),
        (
            json!({"location": "local", "properties": {"source": {"scriptUri": "https://example.invalid/x.sh"}}}),
            "RunCommandSourceNotSupported",
        ),
        (
            json!({"location": "local", "properties": {"source": {"commandId": "RunShellScript"}}}),
            "InvalidParameter",
        ),
        (
            json!({"location": "local", "properties": {"source": {"commandId": "A/B:c"}, "runAsUser": "root"}}),
            "InvalidParameter",
        ),
        (
            json!({"location": "local", "properties": {"source": {"commandId": "A/B:c"}, "outputBlobUri": "https://example.invalid/o"}}),
            "InvalidParameter",
        ),
        (
            json!({"location": "local", "properties": {"source": {"commandId": "A/B:c"}, "parameters": [{"name": "a=b", "value": "c"}]}}),
            "InvalidParameter",
        ),
    ] {
        let e = assert_arm_error(
            w.arm(Method::PUT, &path, &admin, Some(bad.clone()))?,
            400,
            code,
        )?;
        assert!(
            !e["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{bad}: {e}"
        );
    }
    let missing = format!("{}/runCommands/rc2", w.machine_path("nowhere"));
    assert_arm_error(
        w.arm(Method::PUT, &missing, &admin, Some(body("A/B:c")))?,
        404,
        "ParentResourceNotFound",
    )?;

    let created = w.arm(Method::PUT, &path, &admin, Some(body("A/B:c")))?;
    let status_url = async_url(&created);
    w.admin.advance_clock(31 * 60)?;
    let admin = w.admin_token()?;
    let op = operation(&w, &status_url, &admin)?;
    assert_eq!(op["status"], "Failed", "{op}");
    assert_eq!(op["error"]["code"], "OperationTimedOut");
    let get: Value = w.arm(Method::GET, &path, &admin, None)?.json()?;
    assert_eq!(
        get["properties"]["instanceView"]["executionState"], "TimedOut",
        "{get}"
    );
    assert_eq!(get["properties"]["provisioningState"], "Failed");
    Ok(())
}
