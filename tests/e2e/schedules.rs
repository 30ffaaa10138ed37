//! Extensions' `[[schedule]]` entries, run by the service: refused at
//! install until the operator allows the interval, then run on their own
//! (jittered, one at a time) with each run's outcome as the extension's
//! status, its last and next run in `extension show`, and the cloud's
//! instance view; skipped while the extension is disabled. The extension
//! is the inventory sample with its own manifest (its hourly schedule made
//! 10 s), reading the machine's files through its grants.

use crate::extensions::{Publisher, ext, sample_package, trust, write};
use crate::service::{Service, connected, get};
use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// The record, or null while the service has not installed it yet.
fn show(h: &Path) -> anyhow::Result<Value> {
    let out = tether(h)
        .args(["--json", "extension", "show", "Contoso/Inventory"])
        .output()?;
    if !out.status.success() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn wait_for_record(h: &Path, what: &str, ok: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    wait_for(what, || Ok(Some(show(h)?).filter(|r| ok(r))))
}

#[test]
fn scheduled_commands_run_in_the_service_and_their_outcome_reaches_the_cloud() -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "sched-1")?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 41);
    trust(h, &contoso)?;
    let bytes = sample_package(
        &contoso,
        "inventory",
        tether_test_artifacts::INVENTORY,
        |m| m.replace("every = \"1h\"", "every = \"10s\""),
    )?;
    // The files the sample reads, and nothing around them.
    config_set(
        h,
        "extensions.files.allowed",
        "/etc/os-release,/proc,/var/lib/dpkg/status,/var/lib/rpm",
    )?;
    let work = tempfile::tempdir()?;
    let file = write(work.path(), "inv.tpkg", &bytes)?;

    // Every 10 s is more often than the default minimum (1m) allows.
    let out = ext(h, &["install", &file])?;
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let why = stderr(&out);
    assert!(why.contains("schedules check"), "{why}");
    assert!(
        why.contains("extensions.schedules.mininterval (1m)"),
        "{why}"
    );
    assert!(
        why.contains("tether config set extensions.schedules.mininterval 10s"),
        "{why}"
    );
    config_set(h, "extensions.schedules.mininterval", "10s")?;

    // Assigned by the cloud, so each run's status is reported there.
    let registration: Value = serde_json::from_slice(&std::fs::read(h.join("registration.json"))?)?;
    let admin = cloud.cloud.admin()?;
    admin.upload_package("Contoso", "Inventory", "1.0.0", bytes)?;
    admin.post(
        "/extensions",
        serde_json::json!({"machineId": registration["resourceId"], "name": "inv", "publisher": "Contoso",
                           "type": "Inventory", "version": "1.0.0"}),
    )?;
    let service = Service::start(h, "1s")?;
    let collections = |r: &Value| -> u64 {
        r["message"]
            .as_str()
            .and_then(|m| m.strip_prefix("collection "))
            .and_then(|m| m.split(':').next()?.parse().ok())
            .unwrap_or(0)
    };
    let first = wait_for_record(h, "ran once", |r| r["runs"][0]["result"] == "succeeded")?;
    assert_eq!(first["runs"][0]["schedule"], "collect", "{first}");
    assert_eq!(first["runs"][0]["every"], "10s");
    assert_eq!(first["granted"]["schedules"][0]["command"], "collect");
    // The extension's own report is its status; the output is kept.
    assert_eq!(first["state"], "success");
    let n = collections(&first);
    assert!(n >= 1, "{first}");
    // The document: what the granted files say, and the real resource id.
    let output = first["runs"][0]["output"].as_str().unwrap_or_default();
    assert!(
        output.len() <= 4096 && output.contains("\"collections\": 1"),
        "its last 4 KiB: {first}"
    );
    let os_release = std::fs::read_to_string("/etc/os-release")?;
    let pretty = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .unwrap_or_default()
        .trim_matches('"');
    let message = first["message"].as_str().unwrap_or_default();
    assert!(message.contains(pretty), "{message}");
    assert!(message.contains("dpkg packages"), "{message}");
    // The rpm database is an optional read path: granted only where it is
    // (Debian's rpm tools, which CI installs, make one).
    let mut declared = vec![
        "/etc/os-release",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/proc/mounts",
        "/var/lib/dpkg/status",
    ];
    if std::path::Path::new("/var/lib/rpm").is_dir() {
        declared.push("/var/lib/rpm");
    }
    assert_eq!(
        first["granted"]["readPaths"],
        serde_json::json!(declared),
        "files only, at the paths declared"
    );
    // The whole document, reported beside the status (contract 0.2.0).
    let document = first["document"].clone();
    assert_eq!(
        document["resourceId"], registration["resourceId"],
        "{document}"
    );
    assert_eq!(document["status"], "Connected");
    assert!(
        document["packages"]["count"].as_u64().unwrap_or(0) > 10,
        "{document}"
    );
    assert!(
        document["cpu"]["count"].as_u64().unwrap_or(0) >= 1,
        "{document}"
    );
    assert!(
        document["filesystems"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["mountPoint"] == "/")),
        "{document}"
    );
    let (last, next) = (
        first["runs"][0]["lastRun"].as_u64().unwrap_or(0),
        first["runs"][0]["nextRun"].as_u64().unwrap_or(0),
    );
    assert!(
        (9..=11).contains(&(next - last)),
        "10 s, give or take 5 %: {first}"
    );

    // It runs again on its own, not faster than its interval.
    let started = Instant::now();
    let second = wait_for_record(h, "ran again", |r| {
        r["runs"][0]["lastRun"].as_u64() > Some(last) && collections(r) > n
    })?;
    assert!(started.elapsed() >= Duration::from_secs(7), "{second}");

    // The cloud's instance view shows the run.
    let url = format!(
        "{}{}/extensions/inv?api-version={}",
        cloud.cloud.url,
        registration["resourceId"].as_str().unwrap_or_default(),
        tether_cloud_api::arm::API_VERSION
    );
    let token = cloud.admin_arm_token()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        let ext: Value = get(&url, &[("authorization", &format!("Bearer {token}"))])?.json()?;
        let message = ext["properties"]["instanceView"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if message.contains("`collect` ran") {
            break ext;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the cloud never saw a run: {ext}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(
        view["properties"]["provisioningState"], "Succeeded",
        "{view}"
    );
    // And keeps the document.
    let machine = cloud
        .machines()?
        .into_iter()
        .find(|m| m["machine"]["name"] == "sched-1")
        .ok_or_else(|| anyhow::anyhow!("the machine is not in the cloud"))?;
    let kept = &machine["documents"]["inv"];
    assert_eq!(kept["resourceId"], registration["resourceId"], "{machine}");
    assert_eq!(kept["os"]["prettyName"], pretty, "{machine}");

    // Disabled: due runs are skipped, and say why.
    let out = ext(h, &["disable", "Contoso/Inventory"])?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    let skipped = wait_for_record(h, "skipped a run", |r| r["runs"][0]["result"] == "skipped")?;
    assert_eq!(skipped["runs"][0]["message"], "the extension is disabled");
    assert!(service.stop()?.success());
    Ok(())
}
