//! The samples worth installing, each through the real binaries with its
//! own manifest (`plugins/NAME/extension.toml`): `health` posts the
//! machine's measurements to tether-cloud's metrics sink on its schedule,
//! `certsync` keeps a certificate bundle in its granted directory.

use crate::extensions::{Publisher, sample_package, trust};
use crate::service::{Service, connected, get};
use crate::support::*;
use serde_json::Value;
use std::path::Path;

#[test]
fn the_health_sample_posts_metrics_that_tether_cloud_shows() -> TestResult {
    health_posts_metrics(
        "health-1",
        "Health",
        "health",
        tether_test_artifacts::HEALTH,
    )
}

/// The health sample ported to Python, built from source by tether-ext
/// (componentize-py), measuring and posting the same as the Rust one.
#[test]
fn the_python_health_sample_posts_the_same_metrics() -> TestResult {
    if !crate::extensions::toolchain("componentize-py")? {
        return Ok(());
    }
    let wasm = crate::extensions::tether_ext_build("python/health")?;
    health_posts_metrics("health-py", "HealthPython", "python/health", &wasm)
}

/// `plugin` (its manifest named `name`, its component `wasm`) assigned by
/// the cloud to a machine named `machine` under the service: its metrics
/// reach tether-cloud's sink and page, its runs its status.
fn health_posts_metrics(machine: &str, name: &str, plugin: &str, wasm: &str) -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, machine)?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 51);
    trust(h, &contoso)?;
    // The operator's grants: the /proc files, the sink's origin (a literal
    // loopback address here, so allowlocal too), a 10 s schedule.
    config_set(h, "extensions.files.allowed", "/proc")?;
    config_set(h, "extensions.outbound.allowed", &cloud.cloud.url)?;
    config_set(h, "extensions.outbound.allowlocal", "true")?;
    config_set(h, "extensions.schedules.mininterval", "10s")?;
    let bytes = sample_package(&contoso, plugin, wasm, |m| {
        m.replace("every = \"1m\"", "every = \"10s\"")
            .replace("https://metrics.contoso.example", &cloud.cloud.url)
    })?;
    let admin = cloud.cloud.admin()?;
    admin.upload_package("Contoso", name, "1.0.0", bytes)?;
    let registration: Value = serde_json::from_slice(&std::fs::read(h.join("registration.json"))?)?;
    admin.post(
        "/extensions",
        serde_json::json!({"machineId": registration["resourceId"], "name": "health", "publisher": "Contoso",
                           "type": name, "version": "1.0.0",
                           "settings": {"endpoint": format!("{}/metrics/v1/ingest", cloud.cloud.url)},
                           "protectedSettings": {"key": cloud.demo["metricsKey"]}}),
    )?;
    let service = Service::start(h, "1s")?;
    let metrics = wait_for("metrics in tether-cloud", || {
        Ok(cloud
            .machines()?
            .into_iter()
            .find(|m| m["machine"]["name"] == machine)
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
    let record = wait_for("the run recorded", || {
        let out = tether(h)
            .args(["--json", "extension", "show", &format!("Contoso/{name}")])
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

/// A self-signed certificate valid for `days`, as PEM, made with openssl.
fn certificate(dir: &Path, name: &str, days: u32) -> anyhow::Result<String> {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    let (subject, days) = (format!("/CN={name}"), days.to_string());
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", &subject, "-days", &days,
            "-keyout", &key, "-out", &cert,
        ],
    )?;
    Ok(std::fs::read_to_string(dir.join(cert))?)
}

#[test]
fn the_certsync_sample_writes_its_bundle_atomically_only_when_it_changed() -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "certsync-1")?;
    let h = home.path();
    let work = tempfile::tempdir()?;
    let granted = work.path().join("certs");
    std::fs::create_dir(&granted)?;
    let granted = std::fs::canonicalize(&granted)?;
    let bundle = granted.join("bundle.pem");
    let long = certificate(work.path(), "long", 400)?;
    let short = certificate(work.path(), "short", 10)?;
    let server = LoopbackHttp::start(&long)?;
    let origin = format!("http://{}", server.addr);

    let contoso = Publisher::new("Contoso", 61);
    trust(h, &contoso)?;
    config_set(
        h,
        "extensions.files.allowed",
        &granted.display().to_string(),
    )?;
    config_set(h, "extensions.outbound.allowed", &origin)?;
    config_set(h, "extensions.outbound.allowlocal", "true")?;
    // Its hourly schedule left out: the test runs each sync itself.
    let bytes = sample_package(&contoso, "certsync", tether_test_artifacts::CERTSYNC, |m| {
        let m = m
            .replace("https://pki.contoso.example", &origin)
            .replace("/var/lib/certsync", &granted.display().to_string());
        m[..m.find("[[schedule]]").unwrap_or(m.len())].to_string()
    })?;
    let admin = cloud.cloud.admin()?;
    admin.upload_package("Contoso", "CertSync", "1.0.0", bytes)?;
    let registration: Value = serde_json::from_slice(&std::fs::read(h.join("registration.json"))?)?;
    admin.post(
        "/extensions",
        serde_json::json!({"machineId": registration["resourceId"], "name": "certsync", "publisher": "Contoso",
                           "type": "CertSync", "version": "1.0.0",
                           "settings": {"url": format!("{origin}/bundle.pem"), "path": bundle}}),
    )?;
    let service = Service::start(h, "1s")?;
    service.wait_until("certsync installed", |l| {
        l["reconcileOutcomes"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x["action"] == "installed"))
    })?;
    let sync = || -> anyhow::Result<(bool, Value, Value)> {
        let out = tether(h)
            .args(["extension", "invoke", "Contoso/CertSync", "sync"])
            .output()?;
        let record: Value = serde_json::from_slice(
            &tether(h)
                .args(["--json", "extension", "show", "Contoso/CertSync"])
                .output()?
                .stdout,
        )?;
        let answer = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        Ok((out.status.success(), answer, record))
    };
    let (ok, first, _) = sync()?;
    assert!(ok, "{first}");
    assert_eq!(first["changed"], true, "{first}");
    assert_eq!(first["certificates"], 1);
    assert!(
        (398..=400).contains(&first["daysLeft"].as_i64().unwrap_or(0)),
        "{first}"
    );
    assert_eq!(std::fs::read_to_string(&bundle)?, long);
    let inode = |p: &Path| -> anyhow::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(std::fs::metadata(p)?.ino())
    };
    let before = (inode(&bundle)?, std::fs::metadata(&bundle)?.modified()?);

    // The same bundle: the file is not touched.
    let (ok, again, record) = sync()?;
    assert!(ok && again["changed"] == false, "{again}");
    assert_eq!(
        (inode(&bundle)?, std::fs::metadata(&bundle)?.modified()?),
        before
    );
    assert_eq!(record["state"], "success", "{record}");

    // A new bundle with a certificate about to expire: replaced by a rename
    // (a new inode, never a half-written file), and a warning.
    let both = format!("{long}{short}");
    server.set_body(&both);
    let (ok, changed, record) = sync()?;
    assert!(ok && changed["changed"] == true, "{changed}");
    assert_eq!(changed["certificates"], 2);
    assert_eq!(std::fs::read_to_string(&bundle)?, both);
    assert_ne!(
        inode(&bundle)?,
        before.0,
        "replaced, not rewritten in place"
    );
    assert_eq!(record["state"], "warning", "{record}");
    assert!(
        record["message"]
            .as_str()
            .unwrap_or_default()
            .contains("2 certificates, the earliest expiring"),
        "{record}"
    );

    // Not a bundle: refused, and the file kept.
    server.set_body("<html>maintenance</html>");
    let (ok, _, _) = sync()?;
    assert!(!ok, "what is not a bundle is refused");
    assert_eq!(std::fs::read_to_string(&bundle)?, both);
    let leftovers: Vec<_> = std::fs::read_dir(&granted)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "only the bundle: {leftovers:?}");
    assert!(service.stop()?.success());
    Ok(())
}

/// The probe sample, in JavaScript, built from source by tether-ext
/// (componentize-js): a granted endpoint is up with its status code, an
/// undeclared one is down with the host's refusal, and the status and
/// document say so.
#[test]
fn the_javascript_probe_sample_reports_which_endpoints_answer() -> TestResult {
    if !crate::extensions::toolchain("componentize-js")? {
        return Ok(());
    }
    let wasm = crate::extensions::tether_ext_build("javascript/probe")?;
    let server = LoopbackHttp::start("all good")?;
    let origin = format!("http://{}", server.addr);
    let home = tempfile::tempdir()?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 53);
    trust(h, &contoso)?;
    config_set(h, "extensions.outbound.allowed", &origin)?;
    config_set(h, "extensions.outbound.allowlocal", "true")?;
    let bytes = sample_package(&contoso, "javascript/probe", &wasm, |m| {
        m.replace("https://status.contoso.example", &origin)
    })?;
    let package = h.join("probe.tpkg");
    std::fs::write(&package, bytes)?;
    let installed = tether(h)
        .args(["extension", "install"])
        .arg(&package)
        .output()?;
    assert!(installed.status.success(), "{}", stderr(&installed));

    let undeclared = "http://127.0.0.2:9/";
    let out = tether(h)
        .args([
            "extension",
            "invoke",
            "Contoso/Probe",
            "probe",
            &server.url(),
            undeclared,
        ])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let document: Value = serde_json::from_slice(&out.stdout)?;
    let results = &document["results"];
    assert_eq!(results[0]["up"], true, "{document}");
    assert_eq!(results[0]["status"], 200, "{document}");
    assert_eq!(results[0]["bytes"], 8, "{document}");
    assert_eq!(results[1]["up"], false, "{document}");
    assert!(
        results[1]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("denied")),
        "{document}"
    );
    assert_eq!(results[1]["downInARow"], 1);
    assert_eq!(server.seen(), 1, "only the granted endpoint was reached");
    // A second probe counts the failures in a row (the key-value store).
    let again: Value = serde_json::from_slice(
        &tether(h)
            .args([
                "extension",
                "invoke",
                "Contoso/Probe",
                "probe",
                &server.url(),
                undeclared,
            ])
            .output()?
            .stdout,
    )?;
    assert_eq!(again["results"][1]["downInARow"], 2, "{again}");
    let shown: Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "show", "Contoso/Probe"])
            .output()?
            .stdout,
    )?;
    let message = shown["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("1/2 up; down: http://127.0.0.2:9/ (2x)"),
        "{shown}"
    );
    assert_eq!(shown["document"]["results"][0]["status"], 200, "{shown}");
    Ok(())
}
