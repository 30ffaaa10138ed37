//! The samples worth installing, each through the real binaries with its
//! own manifest (`plugins/NAME/extension.toml`): `health` posts the
//! machine's measurements to tether-cloud's metrics sink on its schedule,
//! `certsync` keeps a certificate bundle in its granted directory.

use crate::extensions::{Publisher, sample_package, trust};
use crate::service::{Service, connected, get};
use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn config(h: &Path, key: &str, value: &str) -> TestResult {
    let out = tether(h).args(["config", "set", key, value]).output()?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    Ok(())
}

fn wait<T>(what: &str, mut f: impl FnMut() -> anyhow::Result<Option<T>>) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = f()? {
            return Ok(found);
        }
        anyhow::ensure!(Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_health_sample_posts_metrics_that_tether_cloud_shows() -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "health-1")?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 51);
    trust(h, &contoso)?;
    // The operator's grants: the /proc files, the sink's origin (a literal
    // loopback address here, so allowlocal too), a 10 s schedule.
    config(h, "extensions.files.allowed", "/proc")?;
    config(h, "extensions.outbound.allowed", &cloud.cloud.url)?;
    config(h, "extensions.outbound.allowlocal", "true")?;
    config(h, "extensions.schedules.mininterval", "10s")?;
    let bytes = sample_package(&contoso, "health", tether_test_artifacts::HEALTH, |m| {
        m.replace("every = \"1m\"", "every = \"10s\"")
            .replace("https://metrics.contoso.example", &cloud.cloud.url)
    })?;
    let admin = cloud.cloud.admin()?;
    admin.upload_package("Contoso", "Health", "1.0.0", bytes)?;
    let registration: Value = serde_json::from_slice(&std::fs::read(h.join("registration.json"))?)?;
    admin.post(
        "/extensions",
        serde_json::json!({"machineId": registration["resourceId"], "name": "health", "publisher": "Contoso",
                           "type": "Health", "version": "1.0.0",
                           "settings": {"endpoint": format!("{}/metrics/v1/ingest", cloud.cloud.url)},
                           "protectedSettings": {"key": cloud.demo["metricsKey"]}}),
    )?;
    let service = Service::start(h, "1s")?;
    let metrics = wait("metrics in tether-cloud", || {
        Ok(cloud
            .machines()?
            .into_iter()
            .find(|m| m["machine"]["name"] == "health-1")
            .map(|m| m["metrics"].clone())
            .filter(|m| !m.is_null()))
    })?;
    let values = &metrics["values"];
    assert_eq!(
        values["resourceId"], registration["resourceId"],
        "{metrics}"
    );
    let cpu = values["cpuPercent"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=100.0).contains(&cpu), "{metrics}");
    let total = values["memory"]["totalKib"].as_u64().unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let real: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert_eq!(total, real, "the machine's own MemTotal: {metrics}");
    assert_eq!(
        values["load"].as_array().map(Vec::len),
        Some(3),
        "{metrics}"
    );
    assert!(
        values["uptimeSeconds"].as_u64().unwrap_or(0) > 0,
        "{metrics}"
    );

    let page = get(&format!("{}/", cloud.cloud.url), &[])?.text()?;
    assert!(page.contains("CPU ") && page.contains("memory "), "{page}");

    // Each run's outcome is the extension's status.
    let record = wait("the run recorded", || {
        let out = tether(h)
            .args(["--json", "extension", "show", "Contoso/Health"])
            .output()?;
        let record: Value = serde_json::from_slice(&out.stdout)?;
        Ok((record["runs"][0]["result"] == "succeeded").then_some(record))
    })?;
    assert!(
        record["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("CPU "),
        "{record}"
    );
    assert!(service.stop()?.success());

    // The sink refuses a post without its key.
    let refused = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()?
        .post(format!("{}/metrics/v1/ingest", cloud.cloud.url))
        .json(&serde_json::json!({"resourceId": registration["resourceId"]}))
        .send()?;
    assert_eq!(refused.status(), 401);
    Ok(())
}
