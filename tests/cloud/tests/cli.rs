//! The `tether-cloud` binary: serve, and admin commands against it.

use crate::support::serve;
use anyhow::{Context, Result};
use serde_json::Value;
use std::process::Command;

fn admin(url: &str, key: &str, args: &[&str]) -> Result<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tether-cloud"))
        .args(["admin", "--url", url])
        .args(args)
        .env("TETHER_CLOUD_ADMIN_KEY", key)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn serve_prints_its_endpoints_and_admin_commands_drive_it() -> Result<()> {
    // This test's own client (reqwest without a default provider).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (served, info) = serve(&["--bootstrap"])?;
    let url = info["url"].as_str().unwrap_or_default().to_string();
    let key = info["adminKey"].as_str().unwrap_or_default().to_string();
    assert!(url.starts_with("http://127.0.0.1:"));
    assert!(info["demo"]["administrator"]["secret"].is_string());

    let metadata: Value = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()?
        .get(info["metadata"].as_str().unwrap_or_default())
        .send()?
        .json()?;
    assert_eq!(metadata["resourceManager"], format!("{url}/"));
    assert_eq!(metadata["agentService"], format!("{url}/agent"));

    let tenant = admin(&url, &key, &["tenant-create", "--name", "Second"])?;
    let tenant_id = tenant["id"].as_str().unwrap_or_default().to_string();
    let sub = admin(
        &url,
        &key,
        &["subscription-create", "--tenant-id", &tenant_id],
    )?;
    let sub_id = sub["id"].as_str().unwrap_or_default().to_string();
    admin(
        &url,
        &key,
        &[
            "group-create",
            "--subscription-id",
            &sub_id,
            "--name",
            "rg1",
            "--location",
            "here",
        ],
    )?;
    let sp = admin(
        &url,
        &key,
        &["sp-create", "--tenant-id", &tenant_id, "--secret"],
    )?;
    assert!(sp["secret"].is_string());
    admin(
        &url,
        &key,
        &[
            "role-assign",
            "--principal",
            sp["clientId"].as_str().unwrap_or_default(),
            "--role",
            "onboarding",
            "--scope",
            &format!("/subscriptions/{sub_id}"),
        ],
    )?;
    let clock = admin(&url, &key, &["clock-advance", "60"])?;
    assert_eq!(clock["offsetSeconds"], 60);
    let fault = admin(
        &url,
        &key,
        &[
            "fault-add",
            "--path",
            "/metadata/",
            "--status",
            "503",
            "--count",
            "1",
        ],
    )?;
    assert!(fault["id"].is_u64());
    assert_eq!(
        admin(&url, &key, &["fault-list"])?.as_array().map(Vec::len),
        Some(1)
    );
    let requests = admin(&url, &key, &["requests"])?;
    assert!(
        requests
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["path"] == "/metadata/endpoints"))
    );

    // A wrong admin key is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_tether-cloud"))
        .args(["admin", "--url", &url, "--admin-key", "wrong", "machines"])
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AdminAuthenticationFailed"));
    drop(served);
    Ok(())
}

#[test]
fn a_tls_cloud_bootstraps_itself_and_admin_trusts_its_ca() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    let ca_text = ca.display().to_string();
    let (served, info) = serve(&["--tls", "--bootstrap", "--ca-cert-file", &ca_text])?;
    let url = info["url"].as_str().unwrap_or_default().to_string();
    let key = info["adminKey"].as_str().unwrap_or_default().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{info}");
    assert!(
        info["demo"]["administrator"]["secret"].is_string(),
        "{info}"
    );

    let run = |ca: Option<&std::path::Path>| -> Result<std::process::Output> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether-cloud"));
        cmd.args(["admin", "--url", &url]);
        if let Some(ca) = ca {
            cmd.env("TETHER_CLOUD_CA_CERT", ca);
        }
        Ok(cmd
            .env("TETHER_CLOUD_ADMIN_KEY", &key)
            .arg("machines")
            .output()?)
    };
    let trusted = run(Some(&ca))?;
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let machines: Value = serde_json::from_slice(&trusted.stdout)?;
    assert_eq!(machines, serde_json::json!([]));
    // Without the CA the cloud's certificate is not trusted.
    let untrusted = run(None)?;
    assert!(!untrusted.status.success());
    drop(served);
    Ok(())
}

#[test]
fn simulate_onboards_a_fleet_that_heartbeats_and_reports_its_extensions() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("cloud.db");
    let (served, info) = serve(&["--state", &state.display().to_string()])?;
    let url = info["url"].as_str().unwrap_or_default().to_string();
    let key = info["adminKey"].as_str().unwrap_or_default().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_tether-cloud"))
        .args(["simulate", "--url", &url, "--json"])
        .args(["--agents", "60", "--interval", "200ms", "--duration", "3s"])
        .env("TETHER_CLOUD_ADMIN_KEY", &key)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["onboarded"], 60, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert_eq!(report["list"]["machines"], 60, "{report}");
    assert_eq!(report["assignments"]["count"], 60, "{report}");
    // Each machine heartbeats about 15 times in 3 s; each fetched the
    // extension assigned to it and reported it, which ended its operation.
    let beats = report["heartbeats"]["count"].as_u64().unwrap_or(0);
    assert!((60 * 8..=60 * 16).contains(&beats), "{report}");
    assert!(
        report["extensionFetches"]["count"].as_u64().unwrap_or(0) >= 60,
        "{report}"
    );
    assert!(
        report["statusReports"]["count"].as_u64().unwrap_or(0) >= 60,
        "{report}"
    );
    assert_eq!(report["fleet"]["machines"], 60, "{report}");
    assert_eq!(report["fleet"]["connected"], 60, "{report}");
    assert_eq!(report["fleet"]["extensions"], 60, "{report}");
    assert_eq!(report["fleet"]["operationsInProgress"], 0, "{report}");
    for p in ["p50Ms", "p99Ms"] {
        assert!(
            report["heartbeats"][p].as_f64().is_some_and(|v| v > 0.0),
            "{report}"
        );
    }
    // The operator's page counts the fleet and pages through it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::builder().no_proxy().build()?;
    let first = http.get(format!("{url}/")).send()?.text()?;
    assert!(first.contains("60 machines: <b>60 Connected</b>, 0 Disconnected, 0 Expired; 60 extensions, 0 operations in progress"), "{first}");
    assert_eq!(first.matches("<tr><td>sim-").count(), 50, "{first}");
    let next = first
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no link to the next page")?;
    let second = http.get(format!("{url}{next}")).send()?.text()?;
    assert_eq!(second.matches("<tr><td>sim-").count(), 10, "{second}");
    assert!(!second.contains("Next 50"), "{second}");
    drop(served);

    // A load tool aims at this machine only, and says so before it sends
    // anything.
    let out = Command::new(env!("CARGO_BIN_EXE_tether-cloud"))
        .args([
            "simulate",
            "--url",
            "http://192.0.2.1:8450",
            "--agents",
            "1",
        ])
        .env("TETHER_CLOUD_ADMIN_KEY", &key)
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only loads a tether-cloud on this machine"),
        "{err}"
    );
    Ok(())
}
