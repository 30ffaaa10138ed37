//! connect → show → disconnect with every sign-in method, the refusals, and
//! disconnect killed at each journaled step then resumed.

use crate::support::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

fn connect(home: &Path, config: &Path, extra: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(tether(home)
        .args(["connect", "--config"])
        .arg(config)
        .args(extra)
        .output()?)
}

fn assert_connected(home: &Path, cloud: &Cloud) -> anyhow::Result<Value> {
    let show: Value =
        serde_json::from_slice(&tether(home).args(["--json", "show"]).output()?.stdout)?;
    assert_eq!(show["status"], "Connected", "{show}");
    let machines = cloud.machines()?;
    let id = show["resourceId"].as_str().unwrap_or_default();
    let m = machines
        .iter()
        .find(|m| m["machine"]["id"] == id)
        .ok_or_else(|| anyhow::anyhow!("{id} not in the cloud"))?;
    assert_eq!(m["machine"]["properties"]["status"], "Connected");
    // The private key stays on the machine; the cloud holds the public half.
    let key = std::fs::read_to_string(home.join("identity/machine.key"))?;
    assert!(key.contains("PRIVATE KEY"));
    // An RSA key, as azcmagent registers (base64 of its SubjectPublicKeyInfo).
    let client_key = m["machine"]["properties"]["clientPublicKey"]
        .as_str()
        .unwrap_or_default();
    assert!(
        matches!(
            tether_cloud_api::jwt::parse_client_public_key(client_key),
            Some(tether_cloud_api::jwt::PublicKey::Rsa(_))
        ),
        "{client_key}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(home.join("identity/machine.key"))?
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    Ok(show)
}

fn assert_gone(home: &Path, cloud: &Cloud) -> TestResult {
    assert!(cloud.machines()?.is_empty(), "a resource was left behind");
    for f in [
        "registration.json",
        "identity/machine.key",
        "journal/disconnect.json",
        "journal/connect.json",
    ] {
        assert!(!home.join(f).exists(), "{f} was left behind");
    }
    let show: Value =
        serde_json::from_slice(&tether(home).args(["--json", "show"]).output()?.stdout)?;
    assert_eq!(show["status"], "Disconnected");
    Ok(())
}

#[test]
fn secret_connect_show_disconnect_leaves_nothing_and_keeps_settings() -> TestResult {
    let cloud = Cloud::start()?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    assert!(
        tether(h)
            .args(["config", "set", "extensions.agent.cpulimit", "9"])
            .status()?
            .success()
    );
    let admin = cloud.config_file("administrator")?;
    let out = connect(
        h,
        &admin,
        &[
            "--resource-name",
            "web-01",
            "--tags",
            "env=prod,team='ops team'",
        ],
    )?;
    assert!(out.status.success(), "{}", stderr(&out));
    let secret = cloud.demo["administrator"]["secret"]
        .as_str()
        .unwrap_or("?");
    assert!(
        !stderr(&out).contains(secret) && !stdout(&out).contains(secret),
        "the secret was echoed"
    );
    let show = assert_connected(h, &cloud)?;
    assert_eq!(show["resourceName"], "web-01");
    assert_eq!(show["tags"]["team"], "ops team");
    let m = &cloud.machines()?[0]["machine"];
    assert_eq!(m["tags"]["env"], "prod");

    // show works without root.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(h, std::fs::Permissions::from_mode(0o755))?;
    }
    let unprivileged = tether_unprivileged(h)
        .args(["show", "resourceName"])
        .output()?;
    assert!(unprivileged.status.success(), "{}", stderr(&unprivileged));
    assert!(stdout(&unprivileged).contains("web-01"));
    // The text form is azcmagent's: aligned `Name : value` rows, then the
    // dependent services; properties by display name or JSON key.
    let text = stdout(&tether(h).arg("show").output()?);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].trim_start().starts_with(": "))
            .map(|l| {
                l.split_once(" : ")
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            })
    };
    assert_eq!(row("Resource Name").as_deref(), Some("web-01"), "{text}");
    assert_eq!(row("Agent Status").as_deref(), Some("Connected"), "{text}");
    assert_eq!(
        row("Resource Group Name").as_deref(),
        Some("demo"),
        "{text}"
    );
    let colons: std::collections::BTreeSet<usize> = text
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.find(" : "))
        .collect();
    assert_eq!(colons.len(), 1, "the rows are aligned:\n{text}");
    assert!(
        text.contains("\nDependent Service Status\n  Agent Service (tether) : stopped"),
        "{text}"
    );
    assert!(!text.contains('{'), "no JSON inside the text:\n{text}");
    let picked = stdout(
        &tether(h)
            .args(["show", "Agent Status", "resourceName"])
            .output()?,
    );
    assert_eq!(picked.lines().count(), 2, "{picked}");

    let again = connect(h, &admin, &[])?;
    assert_eq!(again.status.code(), Some(67), "{}", stderr(&again));

    let dry = tether(h)
        .args(["--json", "disconnect", "--dry-run"])
        .output()?;
    let plan: Value = serde_json::from_slice(&dry.stdout)?;
    assert_eq!(plan["resource"], show["resourceId"]);
    assert_eq!(cloud.machines()?.len(), 1, "dry run removed something");

    let out = tether(h)
        .args(["disconnect", "--config"])
        .arg(&admin)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_gone(h, &cloud)?;
    let kept = tether(h)
        .args(["config", "get", "extensions.agent.cpulimit"])
        .output()?;
    assert_eq!(
        stdout(&kept),
        "9\n",
        "operator settings must survive a disconnect"
    );
    let not_connected = tether(h)
        .args(["disconnect", "--force-local-only"])
        .output()?;
    assert_eq!(not_connected.status.code(), Some(8));
    Ok(())
}

#[test]
fn yaml_config_with_the_command_line_winning() -> TestResult {
    let cloud = Cloud::start()?;
    let home = tempfile::tempdir()?;
    let admin = &cloud.demo["administrator"];
    let yaml = format!(
        "subscription-id: {}\nresource-group: demo\nlocation: nowhere\ntenant-id: {}\ncloud: '{}'\nservice-principal-id: {}\nservice-principal-secret: '{}'\n",
        cloud.sub(),
        cloud.tenant(),
        cloud.cloud.metadata_url(),
        admin["clientId"].as_str().unwrap_or_default(),
        admin["secret"].as_str().unwrap_or_default()
    );
    let file = cloud.dir.path().join("connect.yaml");
    std::fs::write(&file, yaml)?;
    let out = connect(
        home.path(),
        &file,
        &["--location", "local", "--resource-name", "yaml-1"],
    )?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cloud.machines()?[0]["machine"]["location"], "local");

    std::fs::write(
        &file,
        "subscription-id: x\nservice-principal-secret: 'hunter2'\nlocaton: typo\n",
    )?;
    let other = tempfile::tempdir()?;
    let out = connect(other.path(), &file, &[])?;
    assert_eq!(out.status.code(), Some(19));
    assert!(
        stderr(&out).contains("unknown field `locaton`"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2"));
    Ok(())
}

/// A service principal with a certificate tether-cloud generated (its PEM
/// in `certificatePem`), administrator of the subscription.
fn certificate_principal(cloud: &Cloud) -> anyhow::Result<Value> {
    let admin = cloud.cloud.admin()?;
    let sp = admin.post(
        "/servicePrincipals",
        serde_json::json!({"tenantId": cloud.tenant(), "certificate": "generate"}),
    )?;
    admin.post("/roleAssignments", serde_json::json!({"principalId": sp["clientId"], "role": "administrator", "scope": format!("/subscriptions/{}", cloud.sub())}))?;
    Ok(sp)
}

#[test]
fn certificate_and_access_token_sign_ins() -> TestResult {
    let cloud = Cloud::start()?;
    let sp = certificate_principal(&cloud)?;
    let pem = cloud.dir.path().join("sp.pem");
    std::fs::write(&pem, sp["certificatePem"].as_str().unwrap_or_default())?;
    let mut target = cloud.target();
    target["service-principal-id"] = sp["clientId"].clone();
    target["service-principal-cert"] = Value::String(pem.display().to_string());
    let file = cloud.dir.path().join("cert.json");
    std::fs::write(&file, serde_json::to_vec(&target)?)?;
    let home = tempfile::tempdir()?;
    let out = connect(home.path(), &file, &["--resource-name", "cert-1"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_connected(home.path(), &cloud)?;
    let out = tether(home.path())
        .args(["disconnect", "--config"])
        .arg(&file)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_gone(home.path(), &cloud)?;

    // An access token obtained elsewhere.
    let mut target = cloud.target();
    target["access-token"] = Value::String(cloud.admin_arm_token()?);
    std::fs::write(&file, serde_json::to_vec(&target)?)?;
    let home = tempfile::tempdir()?;
    let out = connect(home.path(), &file, &["--resource-name", "token-1"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_connected(home.path(), &cloud)?;
    Ok(())
}

/// Runs `tether connect` in the background; returns the child and a
/// channel of its stderr lines.
fn spawn_connect(
    home: &Path,
    cmd_env: &[(&str, &str)],
    args: &[String],
) -> anyhow::Result<(std::process::Child, std::sync::mpsc::Receiver<String>)> {
    let mut cmd = tether(home);
    cmd.arg("connect")
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped());
    for (k, v) in cmd_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Ok((child, rx))
}

fn wait_for_line(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> anyhow::Result<String> {
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(30))?;
        if line.contains(needle) {
            return Ok(line);
        }
    }
}

fn target_args(cloud: &Cloud, name: &str) -> Vec<String> {
    vec![
        "--subscription-id".into(),
        cloud.sub(),
        "--resource-group".into(),
        "demo".into(),
        "--location".into(),
        "local".into(),
        "--tenant-id".into(),
        cloud.tenant(),
        "--cloud".into(),
        cloud.cloud.metadata_url(),
        "--resource-name".into(),
        name.into(),
    ]
}

#[test]
fn device_code_sign_in_approved_through_the_admin_api() -> TestResult {
    let cloud = Cloud::start()?;
    let home = tempfile::tempdir()?;
    let mut args = target_args(&cloud, "device-1");
    args.push("--use-device-code".into());
    let (mut child, rx) = spawn_connect(home.path(), &[], &args)?;
    let line = wait_for_line(&rx, "enter the code")?;
    let code = line
        .split("enter the code ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    assert_eq!(code.len(), 8, "{line}");
    cloud
        .cloud
        .admin()?
        .approve_device_code(&code, "operator@demo")?;
    let status = child.wait()?;
    assert!(status.success());
    assert_connected(home.path(), &cloud)?;

    // A declined sign-in fails with the bad-credentials code.
    let other = tempfile::tempdir()?;
    let mut args = target_args(&cloud, "device-2");
    args.push("--use-device-code".into());
    let (mut child, rx) = spawn_connect(other.path(), &[], &args)?;
    let line = wait_for_line(&rx, "enter the code")?;
    let code = line
        .split("enter the code ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    cloud.cloud.admin()?.deny_device_code(&code)?;
    assert_eq!(child.wait()?.code(), Some(41));
    assert!(!other.path().join("registration.json").exists());
    Ok(())
}

#[test]
fn browser_sign_in_driven_by_a_client_following_the_redirect() -> TestResult {
    let cloud = Cloud::start()?;
    let home = tempfile::tempdir()?;
    let args = target_args(&cloud, "browser-1");
    // A desktop session whose "browser" is a no-op: the test is the browser.
    let (mut child, rx) = spawn_connect(
        home.path(),
        &[("DISPLAY", ":99"), ("BROWSER", "true")],
        &args,
    )?;
    let line = wait_for_line(&rx, "open this address: ")?;
    let authorize = line
        .split("open this address: ")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = http.get(&authorize).send()?;
    assert_eq!(page.status(), 200);
    let query: Vec<(String, String)> = url::Url::parse(&authorize)?
        .query_pairs()
        .into_owned()
        .collect();
    let mut form = query.clone();
    form.push(("username".into(), "operator@demo".into()));
    form.push((
        "password".into(),
        cloud.demo["user"]["password"]
            .as_str()
            .unwrap_or_default()
            .into(),
    ));
    let post_url = authorize.split('?').next().unwrap_or_default();
    let redirected = http.post(post_url).form(&form).send()?;
    assert!(
        redirected.status().is_redirection(),
        "{}",
        redirected.status()
    );
    let location = redirected.headers()["location"].to_str()?.to_string();
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    let landing = http.get(&location).send()?;
    assert!(landing.text()?.contains("Signed in"));
    assert!(child.wait()?.success());
    assert_connected(home.path(), &cloud)?;
    Ok(())
}

#[test]
fn a_403_on_delete_leaves_everything_intact_and_force_local_only_is_the_way_out() -> TestResult {
    let cloud = Cloud::start()?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    let onboarding = cloud.config_file("onboarding")?;
    assert!(
        connect(h, &onboarding, &["--resource-name", "ob-1"])?
            .status
            .success()
    );
    let before = std::fs::read(h.join("registration.json"))?;
    let out = tether(h)
        .args(["disconnect", "--config"])
        .arg(&onboarding)
        .output()?;
    assert_eq!(out.status.code(), Some(43), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Microsoft.HybridCompute/machines/delete")
            && err.contains("--force-local-only"),
        "{err}"
    );
    assert_eq!(std::fs::read(h.join("registration.json"))?, before);
    assert!(h.join("identity/machine.key").exists());
    assert!(!h.join("journal/disconnect.json").exists());
    assert_eq!(cloud.machines()?.len(), 1);

    let out = tether(h)
        .args(["disconnect", "--force-local-only"])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!h.join("registration.json").exists() && !h.join("identity/machine.key").exists());
    assert_eq!(
        cloud.machines()?.len(),
        1,
        "--force-local-only must not touch the cloud"
    );
    Ok(())
}

#[test]
fn names_credentials_and_conflicts_are_refused_clearly() -> TestResult {
    let cloud = Cloud::start()?;
    let admin = cloud.config_file("administrator")?;
    let home = tempfile::tempdir()?;
    let out = connect(home.path(), &admin, &["--resource-name", "bad name!"])?;
    assert_eq!(out.status.code(), Some(44));
    assert!(
        stderr(&out).contains("not a valid machine name"),
        "{}",
        stderr(&out)
    );
    let out = connect(home.path(), &admin, &["--tags", "=novalue"])?;
    assert_eq!(out.status.code(), Some(23));
    let out = connect(
        home.path(),
        &admin,
        &["--service-principal-secret", "wrong-secret"],
    )?;
    assert_eq!(out.status.code(), Some(41), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Invalid client secret") && !stderr(&out).contains("wrong-secret"),
        "{}",
        stderr(&out)
    );
    let out = tether(home.path())
        .args(["connect", "--resource-group", "demo"])
        .output()?;
    assert_eq!(out.status.code(), Some(16));
    assert!(stderr(&out).contains("--subscription-id is required"));

    // The name held by another machine.
    assert!(
        connect(home.path(), &admin, &["--resource-name", "shared"])?
            .status
            .success()
    );
    let other = tempfile::tempdir()?;
    let out = connect(other.path(), &admin, &["--resource-name", "shared"])?;
    assert_eq!(out.status.code(), Some(44), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("held by another machine"),
        "{}",
        stderr(&out)
    );
    assert!(
        !other.path().join("registration.json").exists()
            && !other.path().join("identity/machine.key").exists()
    );
    assert_eq!(cloud.machines()?.len(), 1);
    Ok(())
}

#[test]
fn disconnect_killed_at_each_step_resumes_to_a_clean_end() -> TestResult {
    let cloud = Cloud::start()?;
    let admin = cloud.config_file("administrator")?;
    for step in ["extensions-removed", "resource-deleted", "local-removed"] {
        let home = tempfile::tempdir()?;
        let h = home.path();
        assert!(
            connect(h, &admin, &["--resource-name", step])?
                .status
                .success()
        );
        let killed = tether(h)
            .args(["disconnect", "--config"])
            .arg(&admin)
            .env("TETHER_FAILPOINT", format!("disconnect:{step}"))
            .output()?;
        assert!(
            !killed.status.success() && killed.status.code().is_none_or(|c| c != 0),
            "{step}: the failpoint did not fire"
        );
        assert!(
            h.join("journal/disconnect.json").exists(),
            "{step}: no journal to resume from"
        );
        let resumed = tether(h)
            .args(["disconnect", "--config"])
            .arg(&admin)
            .output()?;
        assert!(resumed.status.success(), "{step}: {}", stderr(&resumed));
        assert!(
            stderr(&resumed).contains("resuming an interrupted disconnect"),
            "{step}: {}",
            stderr(&resumed)
        );
        assert_gone(h, &cloud)?;
    }
    Ok(())
}

#[test]
fn connect_killed_after_creating_the_resource_is_rolled_back_by_the_next_connect() -> TestResult {
    let cloud = Cloud::start()?;
    let admin = cloud.config_file("administrator")?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    let killed = tether(h)
        .args(["connect", "--config"])
        .arg(&admin)
        .args(["--resource-name", "half"])
        .env("TETHER_FAILPOINT", "connect:resource-created")
        .output()?;
    assert!(!killed.status.success());
    assert_eq!(cloud.machines()?.len(), 1, "the half-made resource");
    let out = connect(h, &admin, &["--resource-name", "whole"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<String> = cloud
        .machines()?
        .iter()
        .map(|m| {
            m["machine"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        ["whole"],
        "the interrupted connect's resource was orphaned"
    );
    Ok(())
}

#[test]
fn show_reports_the_last_heartbeat_and_the_last_error() -> TestResult {
    let cloud = Cloud::start()?;
    let admin = cloud.config_file("administrator")?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    let failed = connect(h, &admin, &["--service-principal-secret", "wrong"])?;
    assert_eq!(failed.status.code(), Some(41));
    let show: Value = serde_json::from_slice(&tether(h).args(["--json", "show"]).output()?.stdout)?;
    // azcmagent's keys, and its code for the same failure.
    assert_eq!(show["agentErrorCode"], "AZCM0041", "{show}");
    assert!(
        show["agentErrorDetails"]
            .as_str()
            .is_some_and(|d| d.contains("client secret")),
        "{show}"
    );
    assert!(
        show["agentErrorTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(show["lastHeartbeat"].is_null());
    assert!(
        connect(h, &admin, &["--resource-name", "hb-1"])?
            .status
            .success()
    );
    let show: Value = serde_json::from_slice(&tether(h).args(["--json", "show"]).output()?.stdout)?;
    assert!(
        show["lastHeartbeat"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{show}"
    );
    assert_eq!(
        show["portalPage"]
            .as_str()
            .map(|l| l.contains(show["resourceId"].as_str().unwrap_or("?"))),
        Some(true)
    );
    Ok(())
}

#[test]
fn throttled_arm_calls_are_retried_and_a_long_running_delete_is_followed_to_its_end() -> TestResult
{
    let cloud = Cloud::start()?;
    let admin = cloud.cloud.admin()?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    let config = cloud.config_file("administrator")?;
    let machines = format!(
        "/subscriptions/{}/resourceGroups/demo/providers/Microsoft.HybridCompute/machines/",
        cloud.sub()
    );
    // ARM throttles the create once and fails it once more: both retried.
    admin.add_fault(&tether_cloud::Fault {
        method: Some("PUT".into()),
        path: machines.clone(),
        status: Some(429),
        retry_after: Some(1),
        count: Some(1),
        ..Default::default()
    })?;
    admin.add_fault(&tether_cloud::Fault {
        method: Some("PUT".into()),
        path: machines.clone(),
        status: Some(503),
        count: Some(1),
        ..Default::default()
    })?;
    let since = admin.requests(0)?.last().map_or(0, |r| r.seq);
    let out = connect(h, &config, &["--resource-name", "throttled"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let puts = admin
        .requests(since)?
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with(&machines))
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(puts, [429, 503, 200], "one call, retried twice");

    // Deletion at the agent's api-version is long-running: 202, then the
    // operation's status until it ends; two 429s on the way are retried.
    assert!(tether_cloud_api::arm::machine_delete_is_long_running(
        tether_cloud_api::arm::API_VERSION
    ));
    admin.add_fault(&tether_cloud::Fault {
        method: Some("DELETE".into()),
        path: machines.clone(),
        status: Some(429),
        retry_after: Some(1),
        count: Some(2),
        ..Default::default()
    })?;
    let since = admin.requests(0)?.last().map_or(0, |r| r.seq);
    let out = tether(h)
        .args(["disconnect", "--config"])
        .arg(&config)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_gone(h, &cloud)?;
    let seen = admin.requests(since)?;
    let deletes = seen
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.starts_with(&machines))
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(deletes, [429, 429, 202], "{seen:?}");
    assert!(
        seen.iter()
            .any(|r| r.method == "GET" && r.path.contains("/operationStatus/") && r.status == 200),
        "the operation was followed: {seen:?}"
    );

    // Throttled past the bound: the disconnect stops, nothing local lost.
    let out = connect(h, &config, &["--resource-name", "throttled"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    admin.add_fault(&tether_cloud::Fault {
        method: Some("DELETE".into()),
        path: machines.clone(),
        status: Some(429),
        retry_after: Some(1),
        ..Default::default()
    })?;
    let out = tether(h)
        .args(["disconnect", "--config"])
        .arg(&config)
        .output()?;
    assert_eq!(out.status.code(), Some(43), "{}", stderr(&out));
    assert!(
        h.join("registration.json").exists(),
        "nothing local changed"
    );
    admin.clear_faults()?;

    // No answer at all from ARM is the network's exit code (azcmagent's 26).
    let elsewhere = tempfile::tempdir()?;
    admin.add_fault(&tether_cloud::Fault {
        method: Some("PUT".into()),
        path: machines.clone(),
        reset: true,
        ..Default::default()
    })?;
    let out = connect(elsewhere.path(), &config, &["--resource-name", "unreached"])?;
    assert_eq!(out.status.code(), Some(26), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not reach Azure Resource Manager"),
        "{}",
        stderr(&out)
    );
    assert!(!elsewhere.path().join("registration.json").exists());
    admin.clear_faults()?;
    Ok(())
}

#[test]
fn rsa_certificates_sign_in_from_pem_pkcs1_and_pfx_and_other_keys_are_refused() -> TestResult {
    let cloud = Cloud::start()?;
    let sp = certificate_principal(&cloud)?;
    let d = cloud.dir.path();
    let bundle = sp["certificatePem"].as_str().unwrap_or_default();
    let split = bundle
        .find("-----BEGIN PRIVATE KEY-----")
        .ok_or_else(|| anyhow::anyhow!("no key in {bundle}"))?;
    std::fs::write(d.join("cert.pem"), &bundle[..split])?;
    std::fs::write(d.join("key.pem"), &bundle[split..])?;
    // OpenSSL reads what tether-cloud writes: the certificate and the key.
    openssl(d, &["x509", "-in", "cert.pem", "-noout"])?;
    openssl(d, &["pkey", "-in", "key.pem", "-noout", "-check"])?;
    // PKCS#1 (BEGIN RSA PRIVATE KEY) and PFX, as operators convert them.
    openssl(
        d,
        &["rsa", "-in", "key.pem", "-traditional", "-out", "key1.pem"],
    )?;
    std::fs::write(
        d.join("pkcs1.pem"),
        format!(
            "{}{}",
            &bundle[..split],
            std::fs::read_to_string(d.join("key1.pem"))?
        ),
    )?;
    std::fs::write(d.join("pfx-password"), "s3cret pfx\n")?;
    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-in",
            "cert.pem",
            "-inkey",
            "key.pem",
            "-out",
            "sp.pfx",
            "-passout",
            "file:pfx-password",
        ],
    )?;
    let client = sp["clientId"].as_str().unwrap_or_default().to_string();
    let sign_in = |name: &str, cert: &str, extra: &[&str], env: &[(&str, &str)]| {
        let home = tempfile::tempdir()?;
        let mut target = cloud.target();
        target["service-principal-id"] = Value::String(client.clone());
        target["service-principal-cert"] = Value::String(d.join(cert).display().to_string());
        let file = d.join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec(&target)?)?;
        let mut cmd = tether(home.path());
        cmd.args(["connect", "--config"])
            .arg(&file)
            .args(["--resource-name", name])
            .args(extra)
            .env_remove("TETHER_SERVICE_PRINCIPAL_CERT_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output()?;
        anyhow::Ok((home, out))
    };
    let password_file = d.join("pfx-password").display().to_string();
    for (name, cert, extra, env) in [
        ("pkcs8", "cert.pem", vec![], vec![]),
        ("pkcs1", "pkcs1.pem", vec![], vec![]),
        (
            "pfx-file",
            "sp.pfx",
            vec![
                "--service-principal-cert-password-file",
                password_file.as_str(),
            ],
            vec![],
        ),
        (
            "pfx-env",
            "sp.pfx",
            vec![],
            vec![("TETHER_SERVICE_PRINCIPAL_CERT_PASSWORD", "s3cret pfx")],
        ),
    ] {
        // The PEM bundle for pkcs8 is the whole file tether-cloud printed.
        let cert = if name == "pkcs8" {
            std::fs::write(d.join("bundle.pem"), bundle)?;
            "bundle.pem"
        } else {
            cert
        };
        let (home, out) = sign_in(name, cert, &extra, &env)?;
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_connected(home.path(), &cloud)?;
        assert!(
            tether(home.path())
                .args(["disconnect", "--force-local-only"])
                .status()?
                .success()
        );
    }

    // A PFX without its password, or with the wrong one: a clear refusal.
    let (_, out) = sign_in("pfx-none", "sp.pfx", &[], &[])?;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("TETHER_SERVICE_PRINCIPAL_CERT_PASSWORD"),
        "{}",
        stderr(&out)
    );
    let (_, out) = sign_in(
        "pfx-wrong",
        "sp.pfx",
        &[],
        &[("TETHER_SERVICE_PRINCIPAL_CERT_PASSWORD", "wrong")],
    )?;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("password"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));

    // EC and Ed25519 certificates are refused, naming why.
    for (kind, args) in [
        (
            "EC",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        ("Ed25519", vec!["-newkey", "ed25519"]),
    ] {
        let mut all = vec!["req", "-x509", "-nodes", "-subj", "/CN=other", "-days", "2"];
        all.extend(args);
        all.extend(["-keyout", "other.key", "-out", "other.crt"]);
        openssl(d, &all)?;
        std::fs::write(
            d.join("other.pem"),
            format!(
                "{}{}",
                std::fs::read_to_string(d.join("other.crt"))?,
                std::fs::read_to_string(d.join("other.key"))?
            ),
        )?;
        let (home, out) = sign_in("other", "other.pem", &[], &[])?;
        assert_eq!(out.status.code(), Some(3), "{kind}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{kind} key")),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("RSA"), "{}", stderr(&out));
        assert!(!home.path().join("registration.json").exists());
    }
    Ok(())
}

/// What package removal relies on: with `--no-prompt`, a disconnect given
/// no sign-in and no `tether login` session fails at once, saying what to
/// give, and changes nothing (it would otherwise wait on a device code
/// nobody sees).
#[test]
fn no_prompt_refuses_an_interactive_sign_in_and_changes_nothing() -> TestResult {
    let cloud = Cloud::start()?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    assert!(
        connect(h, &cloud.config_file("administrator")?, &[])?
            .status
            .success()
    );
    let out = tether(h)
        .args(["disconnect", "--no-prompt"])
        .stdin(Stdio::null())
        .output()?;
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(said.contains("--no-prompt forbids prompting"), "{said}");
    assert!(said.contains("tether login"), "{said}");
    assert_connected(h, &cloud)?;
    Ok(())
}
