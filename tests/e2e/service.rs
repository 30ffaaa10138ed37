//! The host service, run as operators run it (`tether service run`):
//! heartbeats against tether-cloud, an outage survived without a hot loop,
//! the metadata and identity endpoint's protections, the control socket,
//! hot reload of settings, disconnect inside the service, journal resume,
//! sd_notify and the systemd unit.

use crate::extensions::{Publisher, package, trust};
use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tether_cloud::Fault;

/// A running `tether service run`, stopped with SIGTERM on drop.
pub(crate) struct Service {
    child: Child,
    home: PathBuf,
}

impl Service {
    pub(crate) fn start(home: &Path, heartbeat: &str) -> anyhow::Result<Self> {
        Self::start_with(home, heartbeat, &[])
    }

    pub(crate) fn start_with(
        home: &Path,
        heartbeat: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::spawn(tether(home), home, heartbeat, env)
    }

    /// The service of another `tether` binary (an installed package's).
    pub(crate) fn start_installed(
        exe: &Path,
        home: &Path,
        heartbeat: &str,
    ) -> anyhow::Result<Self> {
        let mut cmd = std::process::Command::new(exe);
        cmd.env("TETHER_HOME", home).env_remove("TETHER_LOG");
        Self::spawn(cmd, home, heartbeat, &[])
    }

    fn spawn(
        mut cmd: std::process::Command,
        home: &Path,
        heartbeat: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        cmd.args([
            "service",
            "run",
            "--metadata-port",
            "0",
            "--heartbeat-interval",
            heartbeat,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let service = Self {
            child: cmd.spawn()?,
            home: home.to_path_buf(),
        };
        service.wait_until("running", |_| true)?;
        Ok(service)
    }

    pub(crate) fn status(&self) -> anyhow::Result<Value> {
        let out = tether(&self.home)
            .args(["--json", "service", "status", "--unit-dir"])
            .arg(self.home.join("no-units"))
            .output()?;
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Polls the live status until `ok` holds (30 s at most).
    pub(crate) fn wait_until(
        &self,
        what: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status().unwrap_or(Value::Null);
            if status["running"] == true && ok(&status["live"]) {
                return Ok(status["live"].clone());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the service never got {what}: {status}\n{}",
                std::fs::read_to_string(self.home.join("logs/tether.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn metadata(&self) -> anyhow::Result<String> {
        let live = self.status()?["live"].clone();
        live["metadataEndpoints"][0]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no metadata endpoint in {live}"))
    }

    /// SIGTERM, and the exit status.
    pub(crate) fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        terminate(&self.child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            anyhow::ensure!(Instant::now() < deadline, "the service ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn terminate(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill with a pid we spawned and a valid signal number.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        terminate(&self.child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn connected(cloud: &Cloud, name: &str) -> anyhow::Result<tempfile::TempDir> {
    let home = tempfile::tempdir()?;
    let out = tether(home.path())
        .args(["connect", "--config"])
        .arg(cloud.config_file("administrator")?)
        .args(["--resource-name", name])
        .output()?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    Ok(home)
}

fn cloud_status(cloud: &Cloud) -> anyhow::Result<String> {
    let machines = cloud.machines()?;
    Ok(machines
        .first()
        .and_then(|m| m["machine"]["properties"]["status"].as_str())
        .unwrap_or("absent")
        .to_string())
}

fn heartbeats_since(cloud: &Cloud, seq: u64) -> anyhow::Result<usize> {
    Ok(cloud
        .cloud
        .admin()?
        .requests(seq)?
        .iter()
        .filter(|r| r.path == "/agent/v1/heartbeat")
        .count())
}

fn last_seq(cloud: &Cloud) -> anyhow::Result<u64> {
    Ok(cloud
        .cloud
        .admin()?
        .requests(0)?
        .last()
        .map(|r| r.seq)
        .unwrap_or(0))
}

#[test]
fn heartbeats_keep_the_machine_connected_through_an_outage_without_a_hot_loop() -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "svc-beat")?;
    let admin = cloud.cloud.admin()?;
    let service = Service::start(home.path(), "1s")?;
    service.wait_until("a heartbeat", |l| l["cloudStatus"] == "Connected")?;
    let seq = last_seq(&cloud)?;
    std::thread::sleep(Duration::from_millis(3500));
    let beats = heartbeats_since(&cloud, seq)?;
    assert!(
        (2..=6).contains(&beats),
        "{beats} heartbeats in 3.5 s at 1/s"
    );

    // The network dies (connections reset) and the cloud's clock moves
    // twenty minutes: the machine is Disconnected there.
    admin.add_fault(&Fault {
        path: "/agent/v1/heartbeat".into(),
        reset: true,
        ..Default::default()
    })?;
    admin.advance_clock(20 * 60)?;
    assert_eq!(cloud_status(&cloud)?, "Disconnected");
    let seq = last_seq(&cloud)?;
    // Two heartbeat intervals of outage (the ten minutes of a 5-minute
    // interval): backoff from 1/16 of the interval, doubling.
    std::thread::sleep(Duration::from_secs(2));
    let tries = heartbeats_since(&cloud, seq)?;
    assert!(
        (2..=10).contains(&tries),
        "{tries} attempts during the outage"
    );
    let live = service.status()?["live"].clone();
    assert!(
        live["consecutiveFailures"].as_u64().unwrap_or(0) >= 2,
        "{live}"
    );
    assert!(live["lastHeartbeatError"].is_string(), "{live}");

    // Busy, with Retry-After: the service waits as long as asked.
    admin.clear_faults()?;
    admin.add_fault(&Fault {
        path: "/agent/v1/heartbeat".into(),
        status: Some(429),
        retry_after: Some(3),
        ..Default::default()
    })?;
    let seq = last_seq(&cloud)?;
    std::thread::sleep(Duration::from_millis(4500));
    let tries = heartbeats_since(&cloud, seq)?;
    assert!(
        (1..=3).contains(&tries),
        "{tries} attempts in 4.5 s with Retry-After: 3"
    );

    // The cloud comes back: heartbeats resume and status recovers.
    admin.clear_faults()?;
    service.wait_until("recovery", |l| {
        l["consecutiveFailures"] == 0 && l["lastHeartbeatError"].is_null()
    })?;
    assert_eq!(cloud_status(&cloud)?, "Connected");
    let show: Value = serde_json::from_slice(
        &tether(home.path())
            .args(["--json", "show"])
            .output()?
            .stdout,
    )?;
    assert_eq!(show["services"][0]["serviceName"], "tether", "{show}");
    assert_eq!(show["services"][0]["status"], "running", "{show}");

    // The cloud's clock passes the token's expiry: the 401 is answered by
    // renewing the machine identity's token, not by an outage.
    admin.advance_clock(2 * 3600)?;
    let seq = last_seq(&cloud)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = admin.requests(seq)?;
        let renewed = seen
            .iter()
            .any(|r| r.path.ends_with("/oauth2/v2.0/token") && r.status == 200);
        let expired = seen
            .iter()
            .any(|r| r.path == "/agent/v1/heartbeat" && r.status == 401);
        let beat_after = seen
            .iter()
            .rev()
            .find(|r| r.path == "/agent/v1/heartbeat")
            .map(|r| r.status);
        if expired && renewed && beat_after == Some(200) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no renewal after the clock passed expiry: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(service.status()?["live"]["consecutiveFailures"], 0);
    assert_eq!(cloud_status(&cloud)?, "Connected");

    let status = service.stop()?;
    assert!(
        status.success(),
        "SIGTERM ends the service cleanly: {status:?}"
    );
    assert!(
        !home.path().join("run/control.sock").exists(),
        "the socket is removed"
    );
    let log = std::fs::read_to_string(home.path().join("logs/tether.log"))?;
    assert!(log.contains("heartbeat failed"), "the outage is logged");
    assert!(log.contains("stopped"), "{log}");
    let show: Value = serde_json::from_slice(
        &tether(home.path())
            .args(["--json", "show"])
            .output()?
            .stdout,
    )?;
    assert_eq!(show["services"][0]["status"], "stopped");
    Ok(())
}

pub(crate) fn get(
    url: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<reqwest::blocking::Response> {
    let http = reqwest::blocking::Client::builder().no_proxy().build()?;
    let mut request = http.get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    Ok(request.send()?)
}

fn jwt_claims(token: &str) -> anyhow::Result<Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    Ok(serde_json::from_slice(&bytes)?)
}

#[test]
fn the_metadata_endpoint_protects_itself_and_serves_the_machine_identity() -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "svc-meta")?;
    let service = Service::start(home.path(), "5m")?;
    let base = service.metadata()?;
    let instance = format!("{base}/metadata/instance?api-version=2021-02-01");
    let md = [("Metadata", "true")];

    let ok = get(&instance, &md)?;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("access-control-allow-origin").is_none());
    let doc: Value = ok.json()?;
    let registration: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("registration.json"))?)?;
    assert_eq!(doc["compute"]["resourceId"], registration["resourceId"]);
    assert_eq!(doc["compute"]["vmId"], registration["vmId"]);
    assert_eq!(doc["compute"]["name"], "svc-meta");
    assert_eq!(
        doc["compute"]["azEnvironment"], registration["endpoints"]["name"],
        "a custom cloud's own name"
    );

    let refused = |url: &str, headers: &[(&str, &str)], status: u16, says: &str| -> TestResult {
        let response = get(url, headers)?;
        assert_eq!(response.status(), status, "{url} {headers:?}");
        let body = response.text()?;
        assert!(body.contains(says), "{body}");
        Ok(())
    };
    // Paths below the document, as IMDS serves them; leaves as text.
    let compute: Value = get(
        &format!("{base}/metadata/instance/compute?api-version=2021-02-01"),
        &md,
    )?
    .json()?;
    assert_eq!(compute, doc["compute"]);
    let vm_id = get(
        &format!("{base}/metadata/instance/compute/vmId?api-version=2021-02-01&format=text"),
        &md,
    )?;
    assert_eq!(vm_id.status(), 200);
    assert_eq!(vm_id.text()?, registration["vmId"].as_str().unwrap_or("?"));
    refused(
        &format!("{base}/metadata/instance/compute?api-version=2021-02-01&format=text"),
        &md,
        400,
        "single value",
    )?;
    refused(
        &format!("{base}/metadata/instance/compute/nothing?api-version=2021-02-01"),
        &md,
        404,
        "No such metadata path",
    )?;
    // The machine's interfaces, loopback left out, with their MACs.
    let network: Value = get(
        &format!("{base}/metadata/instance/network?api-version=2021-02-01"),
        &md,
    )?
    .json()?;
    assert_eq!(network, doc["network"]);
    let macs: Vec<String> = network["interface"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| i["macAddress"].as_str().unwrap_or_default().to_string())
        .collect();
    for entry in std::fs::read_dir("/sys/class/net")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let flags = std::fs::read_to_string(entry.path().join("flags")).unwrap_or_default();
        let address = std::fs::read_to_string(entry.path().join("address")).unwrap_or_default();
        let is_loopback = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
            .is_ok_and(|f| f & 0x8 != 0);
        if is_loopback || address.trim().is_empty() || !address.contains(':') {
            continue;
        }
        let mac = address.trim().replace(':', "").to_ascii_uppercase();
        assert!(macs.contains(&mac), "{name} ({mac}) missing from {network}");
    }

    refused(&instance, &[], 400, "Metadata: true")?;
    refused(&instance, &[("Metadata", "false")], 400, "Metadata: true")?;
    for header in ["X-Forwarded-For", "Forwarded", "Via"] {
        refused(
            &instance,
            &[("Metadata", "true"), (header, "1.2.3.4")],
            403,
            &header.to_ascii_lowercase(),
        )?;
    }
    refused(
        &format!("{base}/metadata/instance"),
        &md,
        400,
        "api-version",
    )?;
    refused(
        &format!("{instance}&api-version=2019-01-01"),
        &md,
        400,
        "more than once",
    )?;
    let http = reqwest::blocking::Client::builder().no_proxy().build()?;
    let post = http.post(&instance).header("Metadata", "true").send()?;
    assert_eq!(post.status(), 405);
    assert_eq!(
        post.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );

    // The identity flow: challenge, key file, token.
    let resource = cloud.cloud.url.clone();
    let token_url =
        format!("{base}/metadata/identity/oauth2/token?api-version=2020-06-01&resource={resource}");
    let challenge = get(&token_url, &md)?;
    assert_eq!(challenge.status(), 401);
    let realm = challenge
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic realm="))
        .ok_or_else(|| anyhow::anyhow!("no challenge"))?
        .to_string();
    let key_file = PathBuf::from(&realm);
    assert!(key_file.starts_with(home.path().join("tokens")), "{realm}");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file)?.permissions().mode() & 0o777,
            0o640
        );
        let dir = key_file.parent().ok_or_else(|| anyhow::anyhow!("no dir"))?;
        assert_eq!(std::fs::metadata(dir)?.permissions().mode() & 0o777, 0o750);
    }
    let secret = std::fs::read_to_string(&key_file)?;
    refused(
        &token_url,
        &[("Metadata", "true"), ("Authorization", "Basic not-the-key")],
        401,
        "wrong",
    )?;
    let auth = format!("Basic {secret}");
    let granted = get(
        &token_url,
        &[("Metadata", "true"), ("Authorization", &auth)],
    )?;
    assert_eq!(granted.status(), 200);
    let token: Value = granted.json()?;
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["resource"], resource.as_str());
    let claims = jwt_claims(token["access_token"].as_str().unwrap_or_default())?;
    assert_eq!(claims["xms_mirid"], registration["resourceId"], "{claims}");
    assert!(!key_file.exists(), "the key file is deleted after use");
    refused(
        &token_url,
        &[("Metadata", "true"), ("Authorization", &auth)],
        401,
        "used already",
    )?;
    refused(
        &format!("{base}/metadata/identity/oauth2/token?api-version=2020-06-01"),
        &md,
        400,
        "resource",
    )?;

    // A client that hammers is slowed down.
    let limited = (0..200)
        .filter_map(|_| http.get(&instance).header("Metadata", "true").send().ok())
        .filter(|r| r.status() == 429)
        .count();
    assert!(limited > 0, "no request was rate limited");

    // Loopback only: every listening socket on the port is 127.0.0.1 or ::1.
    let port = base.rsplit(':').next().unwrap_or_default().parse::<u16>()?;
    let port_hex = format!("{port:04X}");
    let mut seen = 0;
    for (table, loopback) in [
        ("/proc/net/tcp", "0100007F"),
        ("/proc/net/tcp6", "00000000000000000000000001000000"),
    ] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            if *state == "0A" && local.ends_with(&format!(":{port_hex}")) {
                assert_eq!(local.split(':').next(), Some(loopback), "{table}: {line}");
                seen += 1;
            }
        }
    }
    assert!(seen >= 1, "the listener was not found in /proc/net");
    Ok(())
}

#[test]
fn the_control_socket_serves_root_only_and_runs_reload_invoke_and_disconnect() -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "svc-ctl")?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 11);
    trust(h, &contoso)?;
    let pkg = h.join("hello.tpkg");
    std::fs::write(
        &pkg,
        package(
            &contoso,
            "Contoso",
            "Hello",
            "1.0.0",
            "other",
            tether_test_artifacts::HELLO,
            "",
        )?,
    )?;
    let out = tether(h)
        .args(["extension", "install"])
        .arg(&pkg)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let service = Service::start(h, "1s")?;

    {
        use std::os::unix::fs::PermissionsExt;
        let socket = h.join("run/control.sock");
        assert_eq!(
            std::fs::metadata(&socket)?.permissions().mode() & 0o777,
            0o660
        );
        assert_eq!(
            std::fs::metadata(h.join("run"))?.permissions().mode() & 0o777,
            0o750
        );
    }
    if is_root() {
        // Another user cannot talk to the service.
        std::fs::set_permissions(h, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let out = tether_unprivileged(h)
            .args(["service", "status"])
            .output()?;
        assert_eq!(out.status.code(), Some(18), "{}", stderr(&out));
        assert!(stderr(&out).contains("tether` group"), "{}", stderr(&out));
    }

    // Settings: `tether config set` reaches the running service at once…
    let out = tether(h)
        .args(["--json", "config", "set", "extensions.agent.cpulimit", "30"])
        .output()?;
    let set: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(set["appliedByService"], true, "{set}");
    service.wait_until("cpulimit 30", |l| {
        l["settings"]["extensions"]["agent"]["cpulimit"] == 30
    })?;
    // …a hand edit is noticed on the next tick…
    let file = h.join("settings.toml");
    let text = std::fs::read_to_string(&file)?.replace("cpulimit = 30", "cpulimit = 40");
    std::fs::write(&file, &text)?;
    let live = service.wait_until("cpulimit 40", |l| {
        l["settings"]["extensions"]["agent"]["cpulimit"] == 40
    })?;
    // The service's one runtime enforces the new share.
    assert_eq!(live["extensionRuntime"]["cpuPercent"], 40, "{live}");
    // …and a broken file is reported, the settings in effect kept.
    std::fs::write(&file, "[extensions\ncpulimit = ")?;
    let out = tether(h).args(["service", "reload"]).output()?;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("kept"), "{}", stderr(&out));
    let live = service.wait_until("a settings error", |l| l["settingsError"].is_string())?;
    assert_eq!(live["settings"]["extensions"]["agent"]["cpulimit"], 40);
    std::fs::write(&file, &text)?;
    assert!(tether(h).args(["service", "reload"]).status()?.success());

    // Invoke runs in the service, on its one runtime: the extension's code
    // is read from the disk cache once (as the service starts, or by the
    // first call if that comes first), and the extension is kept loaded.
    for _ in 0..3 {
        let out = tether(h)
            .args(["extension", "invoke", "Contoso/Hello", "greet", "service"])
            .output()?;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("service"), "{}", stdout(&out));
    }
    let status = service.status()?;
    let components = &status["live"]["extensionRuntime"]["components"];
    assert_eq!(components["loadedFromDisk"], 1, "{status}");
    assert_eq!(components["compiled"], 0, "{status}");
    // At most the first call takes the code the start loaded; the later
    // calls reuse the loaded extension and ask the cache for nothing.
    assert!(
        components["fromMemory"].as_u64().is_some_and(|n| n <= 1),
        "no second load: {status}"
    );
    let log = std::fs::read_to_string(h.join("logs/tether.log"))?;
    assert!(
        log.contains("invoke Contoso/Hello greet"),
        "the service ran it"
    );

    // Disconnect runs in the service, which removes the extension first.
    let out = tether(h)
        .args(["disconnect", "--config"])
        .arg(cloud.config_file("administrator")?)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the service is running"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("removing extension Contoso/Hello"),
        "{}",
        stderr(&out)
    );
    assert!(cloud.machines()?.is_empty());
    assert!(!h.join("registration.json").exists());
    service.wait_until("disconnected", |l| l["connected"] == false)?;
    let log = std::fs::read_to_string(h.join("logs/tether.log"))?;
    assert!(
        !log.contains(
            cloud.demo["administrator"]["secret"]
                .as_str()
                .unwrap_or("-")
        ),
        "no secret in the log"
    );
    Ok(())
}

#[test]
fn a_disconnect_interrupted_after_the_cloud_step_is_finished_by_the_service() -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "svc-journal")?;
    let h = home.path();
    let killed = tether(h)
        .args(["disconnect", "--config"])
        .arg(cloud.config_file("administrator")?)
        .env("TETHER_FAILPOINT", "disconnect:resource-deleted")
        .output()?;
    assert!(!killed.status.success());
    assert!(
        h.join("registration.json").exists(),
        "interrupted before the local step"
    );
    let service = Service::start(h, "5m")?;
    service.wait_until("the local registration gone", |_| {
        !h.join("registration.json").exists()
    })?;
    assert!(!h.join("identity/machine.key").exists());
    Ok(())
}

#[test]
fn sd_notify_ready_and_a_unit_systemd_accepts() -> TestResult {
    use std::os::unix::net::UnixDatagram;
    let home = tempfile::tempdir()?;
    let h = home.path();
    let notify = h.join("notify.sock");
    let socket = UnixDatagram::bind(&notify)?;
    socket.set_read_timeout(Some(Duration::from_secs(30)))?;
    let notify_text = notify.display().to_string();
    let service = Service::start_with(
        h,
        "5m",
        &[("NOTIFY_SOCKET", &notify_text), ("WATCHDOG_USEC", "400000")],
    )?;
    let mut buf = [0u8; 256];
    let mut said = Vec::new();
    // READY first, then watchdog pings every 200 ms (half of WATCHDOG_USEC).
    while said
        .iter()
        .filter(|m: &&String| m.contains("WATCHDOG=1"))
        .count()
        < 3
    {
        let n = socket.recv(&mut buf)?;
        said.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    let ready = said.iter().position(|m| m.contains("READY=1"));
    let first_ping = said.iter().position(|m| m.contains("WATCHDOG=1"));
    assert!(ready.is_some() && ready < first_ping, "{said:?}");
    assert!(service.stop()?.success());
    let mut saw_stopping = false;
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    while let Ok(n) = socket.recv(&mut buf) {
        saw_stopping |= String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1");
    }
    assert!(saw_stopping);

    let units = h.join("units");
    let out = tether(h)
        .args(["--json", "service", "install", "--no-start", "--unit-dir"])
        .arg(&units)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let unit = std::fs::read_to_string(units.join("tether.service"))?;
    for line in [
        "Type=notify",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(line), "{line} missing:\n{unit}");
    }
    // The state root and the identity key files' directory, which may not
    // exist yet (the leading `-`), are the only writable places.
    assert!(
        unit.contains(&format!(
            "ReadWritePaths={} -{}",
            h.display(),
            h.join("tokens").display()
        )),
        "{unit}"
    );
    // Every service on the machine is told where the identity endpoint is,
    // the way the Azure SDKs' Arc credential finds it.
    let environment = h.join("system.conf.d/tether-identity.conf");
    let manager = std::fs::read_to_string(&environment)?;
    assert!(manager.contains("[Manager]"), "{manager}");
    assert!(
        manager.contains(
            "\"IDENTITY_ENDPOINT=http://localhost:40342/metadata/identity/oauth2/token\" \"IMDS_ENDPOINT=http://localhost:40342\""
        ),
        "{manager}"
    );
    if Path::new("/usr/bin/systemd-analyze").exists() {
        let verify = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(units.join("tether.service"))
            .output()?;
        assert!(
            verify.status.success(),
            "systemd-analyze verify: {}",
            stderr(&verify)
        );
    }
    let status: Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "service", "status", "--unit-dir"])
            .arg(&units)
            .output()?
            .stdout,
    )?;
    assert_eq!(status["registration"]["installed"], true);
    assert_eq!(status["running"], false);
    assert!(
        tether(h)
            .args(["service", "uninstall", "--unit-dir"])
            .arg(&units)
            .status()?
            .success()
    );
    assert!(!units.join("tether.service").exists());
    assert!(!environment.exists(), "the manager drop-in is removed too");
    Ok(())
}

/// The cloud assigns Contoso/Inventory 1.0.0 (as `inv`, signed by
/// `contoso`, trusted here) to the machine at `home`, with `team` as a
/// label and `secret` as its protected upload token. Returns the
/// machine's registration.
pub(crate) fn assign_inventory(
    cloud: &Cloud,
    home: &Path,
    contoso: &Publisher,
    team: &str,
    secret: &str,
) -> anyhow::Result<Value> {
    let admin = cloud.cloud.admin()?;
    trust(home, contoso)?;
    let machine = serde_json::from_slice::<Value>(&std::fs::read(home.join("registration.json"))?)?;
    admin.upload_package(
        "Contoso",
        "Inventory",
        "1.0.0",
        package(
            contoso,
            "Contoso",
            "Inventory",
            "1.0.0",
            "monitoring",
            tether_test_artifacts::INVENTORY,
            "",
        )?,
    )?;
    admin.post(
        "/extensions",
        serde_json::json!({"machineId": machine["resourceId"], "name": "inv", "publisher": "Contoso",
                           "type": "Inventory", "version": "1.0.0", "settings": {"labels": {"team": team}},
                           "protectedSettings": {"uploadToken": secret}}),
    )?;
    Ok(machine)
}

#[test]
fn the_service_reconciles_and_keeps_protected_settings_in_memory_only() -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "svc-secrets")?;
    let h = home.path();
    let secret = "upload-s3cret-7781";
    let machine = assign_inventory(&cloud, h, &Publisher::new("Contoso", 12), "svc", secret)?;
    let service = Service::start(h, "1s")?;
    service.wait_until("the extension reconciled", |l| {
        l["reconcileOutcomes"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x["action"] == "installed"))
    })?;
    let collect = |h: &Path| -> anyhow::Result<Value> {
        let out = tether(h)
            .args(["extension", "invoke", "Contoso/Inventory", "collect"])
            .output()?;
        anyhow::ensure!(out.status.success(), "{}", stderr(&out));
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let doc = collect(h)?;
    assert_eq!(doc["labels"]["team"], "svc");
    assert_eq!(
        doc["hasUploadToken"], true,
        "the service's call has the protected setting"
    );
    // The machine view is the registration and the live status.
    for field in ["resourceId", "vmId", "tenantId", "location"] {
        assert_eq!(doc[field], machine[field], "{field}: {doc}");
    }
    assert_eq!(doc["name"], "svc-secrets");
    assert_eq!(doc["status"], "Connected", "{doc}");
    assert!(service.stop()?.success());
    let doc = collect(h)?;
    assert_eq!(
        doc["hasUploadToken"], false,
        "without the service nothing on disk holds it"
    );
    // A local call sees the same machine (its heartbeat is recent).
    assert_eq!(doc["resourceId"], machine["resourceId"], "{doc}");
    assert_eq!(doc["status"], "Connected", "{doc}");
    // A heartbeat older than Azure's 15 minutes: Disconnected.
    let status_file = h.join("agent-status.json");
    let mut agent: Value = serde_json::from_slice(&std::fs::read(&status_file)?)?;
    agent["lastHeartbeat"] = serde_json::json!(1_000u64);
    std::fs::write(&status_file, serde_json::to_vec(&agent)?)?;
    assert_eq!(
        collect(h)?["status"],
        "Expired",
        "a heartbeat from 1970 is older than 45 days"
    );
    let fresh = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    agent["lastHeartbeat"] = serde_json::json!(fresh - 16 * 60);
    std::fs::write(&status_file, serde_json::to_vec(&agent)?)?;
    assert_eq!(collect(h)?["status"], "Disconnected");
    crate::extensions::assert_no_file_holds(h, secret);
    Ok(())
}

#[test]
fn reset_runs_inside_the_running_service_and_a_second_service_is_refused() -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "svc-reset")?;
    let h = home.path();
    let service = Service::start(h, "5m")?;
    let second = tether(h)
        .args(["service", "run", "--metadata-port", "0"])
        .output()?;
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("already running"),
        "{}",
        stderr(&second)
    );

    let out = tether(h)
        .args(["--json", "reset", "--wait", "--config"])
        .arg(cloud.config_file("administrator")?)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let status: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(status["state"], "Succeeded", "{status}");
    assert!(cloud.machines()?.is_empty());
    assert!(!h.join("registration.json").exists());
    let log = std::fs::read_to_string(h.join("logs/tether.log"))?;
    assert!(log.contains("started in the service"), "{log}");
    service.wait_until("disconnected", |l| l["connected"] == false)?;
    Ok(())
}

/// Azure Arc's key-file directory: the Azure SDKs read a key from there
/// only, so this test has the service write there.
const ARC_TOKENS: &str = "/var/opt/azcmagent/tokens";

#[test]
fn the_azure_sdks_managed_identity_credential_gets_the_machine_token_from_the_service() -> TestResult
{
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "svc-arc-mi")?;
    let service = Service::start_with(
        home.path(),
        "5m",
        &[("TETHER_IDENTITY_TOKENS_DIR", ARC_TOKENS)],
    )?;
    assert_eq!(service.status()?["live"]["identityTokensDir"], ARC_TOKENS);
    service.wait_until("a heartbeat", |l| !l["lastHeartbeat"].is_null())?;
    let base = service.metadata()?;
    let registration: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("registration.json"))?)?;
    let resource_id = registration["resourceId"].as_str().unwrap_or_default();

    // Azure gives a machine's identity no roles; a reader role on its
    // group lets the workload read the machine with the token.
    let machine = cloud
        .machines()?
        .into_iter()
        .find(|m| m["machine"]["name"] == "svc-arc-mi")
        .ok_or_else(|| anyhow::anyhow!("the machine is not in the cloud"))?;
    let principal = machine["machine"]["identity"]["principalId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    cloud.cloud.admin()?.post(
        "/roleAssignments",
        serde_json::json!({
            "principalId": principal,
            "role": "reader",
            "scope": format!("/subscriptions/{}/resourceGroups/demo", cloud.sub()),
        }),
    )?;

    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/azure_sdk/arc_identity.py");
    let python = tether_test_artifacts::azure_sdk::python().map_err(anyhow::Error::msg)?;
    let out = std::process::Command::new(python)
        .arg(script)
        .env(
            "IDENTITY_ENDPOINT",
            format!("{base}/metadata/identity/oauth2/token"),
        )
        .env("IMDS_ENDPOINT", &base)
        .env("TC_RESOURCE", &cloud.cloud.url)
        .env(
            "TC_MACHINE_URL",
            format!(
                "{}{resource_id}?api-version={}",
                cloud.cloud.url,
                tether_cloud_api::arm::API_VERSION
            ),
        )
        .env("NO_PROXY", "127.0.0.1,localhost,[::1]")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("AZURE_CLIENT_ID")
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let seen: Value = serde_json::from_slice(&out.stdout)?;
    let claims = jwt_claims(seen["token"].as_str().unwrap_or_default())?;
    assert_eq!(claims["xms_mirid"], resource_id, "{claims}");
    assert_eq!(claims["oid"], principal.as_str());
    assert!(seen["expiresOn"].as_u64().unwrap_or(0) > 0, "{seen}");
    assert_eq!(seen["cached"], true, "the credential caches the token");
    let direct = jwt_claims(seen["msal"]["token"].as_str().unwrap_or_default())?;
    assert_eq!(direct["xms_mirid"], resource_id, "{seen}");
    assert_eq!(seen["machine"]["id"], resource_id);
    assert_eq!(seen["machine"]["name"], "svc-arc-mi");
    // serviceStatuses and agentConfiguration in the specification's shape.
    assert_eq!(seen["extensionService"], "running", "{seen}");
    assert_eq!(seen["guestConfigurationService"], "disabled");
    assert_eq!(seen["extensionsEnabled"], "true");
    assert_eq!(seen["configMode"], "full");
    assert!(service.stop()?.success());
    Ok(())
}

#[test]
fn a_narrowed_grant_holds_in_the_running_service_from_the_next_call() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let work = tempfile::tempdir()?;
    let w = std::fs::canonicalize(work.path())?;
    let granted = w.join("granted");
    std::fs::create_dir_all(&granted)?;
    std::fs::write(granted.join("note.txt"), "kept")?;
    let contoso = Publisher::new("Contoso", 41);
    trust(h, &contoso)?;
    let set = |value: &Path| {
        tether(h)
            .args(["config", "set", "extensions.files.allowed"])
            .arg(value)
            .output()
    };
    assert!(set(&w)?.status.success());
    let pkg = package(
        &contoso,
        "Contoso",
        "Reader",
        "1.0.0",
        "other",
        tether_test_artifacts::FIXTURE_FS_ESCAPE,
        &format!("[capabilities]\nread_paths = [\"{}\"]\n", granted.display()),
    )?;
    let file = w.join("reader.tpkg");
    std::fs::write(&file, pkg)?;
    let out = tether(h)
        .args(["extension", "install"])
        .arg(&file)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let service = Service::start(h, "5m")?;
    let read = || {
        tether(h)
            .args(["extension", "invoke", "Contoso/Reader", "read"])
            .arg(granted.join("note.txt"))
            .output()
    };
    let out = read()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "kept");
    // The operator narrows the setting; `config set` reloads the service.
    let elsewhere = tempfile::tempdir()?;
    let narrowed = set(elsewhere.path())?;
    assert!(narrowed.status.success(), "{}", stderr(&narrowed));
    let out = read()?;
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no longer granted"),
        "{}",
        stderr(&out)
    );
    assert!(service.stop()?.success());
    Ok(())
}
