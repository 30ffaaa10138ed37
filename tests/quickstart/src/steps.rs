//! The quickstart's steps, each announced before it runs.

use crate::Args;
use anyhow::{Context, Result, bail, ensure};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tether_cloud::{BackgroundCloud, CloudConfig};

const PUBLISHER: &str = "Tether.Samples";

fn step(text: &str) {
    println!("==> {text}");
}

/// The `tether` binary: given, or beside this one (built when missing).
fn tether_binary(args: &Args) -> Result<PathBuf> {
    if let Some(path) = &args.tether {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe()?;
    let beside = exe.with_file_name(format!("tether{}", std::env::consts::EXE_SUFFIX));
    if !beside.exists() {
        step("building the tether binary (cargo build -p tether)");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "tether", "--bin", "tether"]);
        if exe
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "release")
        {
            build.arg("--release");
        }
        ensure!(
            build.status()?.success(),
            "could not build the tether binary"
        );
    }
    ensure!(
        beside.exists(),
        "no tether binary at {}; pass --tether PATH",
        beside.display()
    );
    Ok(beside)
}

struct Tether {
    exe: PathBuf,
    home: PathBuf,
}

impl Tether {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.env("TETHER_HOME", &self.home).env_remove("TETHER_LOG");
        cmd
    }

    /// Runs `tether ARGS`, passing its notes through; its stdout is returned.
    fn run(&self, args: &[&str]) -> Result<String> {
        let out = self
            .command()
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("could not run tether {}", args.join(" ")))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        ensure!(
            out.status.success(),
            "`tether {}` failed ({}): {text}",
            args.join(" "),
            out.status
        );
        Ok(text)
    }

    fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        Ok(serde_json::from_str(&self.run(&all)?)?)
    }
}

/// The service as a child in its own process group, so the terminal's
/// Ctrl-C reaches the quickstart only and the disconnect can run in it.
struct Service(Child);

impl Service {
    fn start(tether: &Tether, heartbeat: Duration) -> Result<Self> {
        let log = std::fs::File::create(tether.home.join("service-console.log"))?;
        let mut cmd = tether.command();
        cmd.args([
            "service",
            "run",
            "--metadata-port",
            "0",
            "--heartbeat-interval",
        ])
        .arg(humantime::format_duration(heartbeat).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        Ok(Self(cmd.spawn().context("could not start the service")?))
    }

    fn stop(&mut self) {
        #[cfg(unix)]
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: a pid we spawned, a valid signal.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        #[cfg(not(unix))]
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check()? {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A sample's package, signed by the demo publisher: its own manifest
/// (`plugins/NAME/extension.toml`, capabilities and schedule included)
/// when it has one, else the smallest.
fn sample_package(key: &SigningKey, name: &str, category: &str, wasm: &str) -> Result<Vec<u8>> {
    let component = std::fs::read(wasm).with_context(|| format!("could not read {wasm}"))?;
    let own = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins")
        .join(name.to_ascii_lowercase())
        .join("extension.toml");
    let template = match std::fs::read_to_string(&own) {
        Ok(text) => text.replace(
            "publisher = \"Contoso\"",
            &format!("publisher = \"{PUBLISHER}\""),
        ),
        Err(_) => format!(
            "publisher = \"{PUBLISHER}\"\nname = \"{name}\"\nversion = \"1.0.0\"\ncontract = \"{SAMPLES_CONTRACT}\"\ncategory = \"{category}\"\n"
        ),
    };
    let manifest = tether_package::Manifest::complete(&template, &component)?;
    let signature = tether_package::sign(manifest.as_bytes(), key);
    Ok(tether_package::build(
        manifest.as_bytes(),
        &component,
        Some(&signature),
    )?)
}

/// The contract the samples are built against (the SDK follows the newest).
const SAMPLES_CONTRACT: &str = "0.2.0";

pub fn run(args: &Args) -> Result<()> {
    let exe = tether_binary(args)?;
    let temp = tempfile::tempdir()?;
    let home = args
        .home
        .clone()
        .unwrap_or_else(|| temp.path().join("tether-home"));
    std::fs::create_dir_all(&home)?;
    let tether = Tether {
        exe,
        home: home.clone(),
    };

    // Ctrl-C at any point ends in the clean disconnect, never in an
    // orphaned service or cloud resource.
    let (stop_tx, stop_rx) = mpsc::channel();
    if !args.non_interactive {
        ctrlc::set_handler(move || {
            let _ = stop_tx.send(());
        })
        .context("could not catch Ctrl-C")?;
    }

    step(
        "starting tether-cloud on loopback with a demo tenant, subscription and service principal",
    );
    let cloud = BackgroundCloud::start(CloudConfig {
        listen: args.listen,
        ..Default::default()
    })
    .with_context(|| {
        format!(
            "could not start tether-cloud on {} (is the port taken? --listen picks another)",
            args.listen
        )
    })?;
    println!("    tether-cloud: {}", cloud.url);
    let admin = cloud.admin()?;
    let demo = admin.bootstrap()?;
    let tenant = demo["tenantId"].as_str().unwrap_or_default();

    step(&format!(
        "connecting this machine (TETHER_HOME={})",
        home.display()
    ));
    // The principal's secret goes in a private file, not on a command line.
    let config = temp.path().join("connect.json");
    std::fs::write(
        &config,
        serde_json::to_vec(&json!({
            "subscription-id": demo["subscriptionId"],
            "resource-group": "demo",
            "location": "local",
            "tenant-id": tenant,
            "cloud": cloud.metadata_url(),
            "service-principal-id": demo["administrator"]["clientId"],
            "service-principal-secret": demo["administrator"]["secret"],
        }))?,
    )?;
    let config_arg = config.display().to_string();
    let connected = tether.json(&[
        "connect",
        "--config",
        &config_arg,
        "--resource-name",
        "quickstart",
    ])?;
    let machine_id = connected["resourceId"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    step(&format!("trusting the demo publisher {PUBLISHER}"));
    let key = SigningKey::from_bytes(&random_seed()?);
    let line = tether_package::public_key_line(&key.verifying_key(), PUBLISHER);
    tether.run(&[
        "extension",
        "trust",
        "add",
        "--publisher",
        PUBLISHER,
        "--key",
        &line,
    ])?;

    step(
        "allowing the files the Inventory sample reads (extensions.files.allowed: /etc/os-release, /proc's machine-wide files, dpkg's or rpm's database)",
    );
    tether.run(&[
        "config",
        "set",
        "extensions.files.allowed",
        "/etc/os-release,/proc,/var/lib/dpkg/status,/var/lib/rpm",
    ])?;
    step(
        "publishing the sample extensions (Hello, Inventory) to the gallery and assigning them through the cloud",
    );
    for (name, category, wasm, settings) in [
        ("Hello", "other", tether_test_artifacts::HELLO, json!({})),
        (
            "Inventory",
            "monitoring",
            tether_test_artifacts::INVENTORY,
            json!({"labels": {"owner": "quickstart"}}),
        ),
    ] {
        admin.upload_package(
            PUBLISHER,
            name,
            "1.0.0",
            sample_package(&key, name, category, wasm)?,
        )?;
        admin.post(
            "/extensions",
            json!({"machineId": machine_id, "name": name.to_ascii_lowercase(), "publisher": PUBLISHER,
                   "type": name, "version": "1.0.0", "settings": settings}),
        )?;
    }

    step(&format!(
        "starting the host service (heartbeat every {})",
        humantime::format_duration(args.heartbeat_interval)
    ));
    let mut service = Service::start(&tether, args.heartbeat_interval)?;
    let live = wait_for(
        "the service's first heartbeat",
        Duration::from_secs(60),
        || {
            let out = tether
                .command()
                .args(["--json", "service", "status"])
                .output()?;
            let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            Ok(status["live"]["lastHeartbeat"]
                .is_u64()
                .then(|| status["live"].clone()))
        },
    )?;
    let extensions = wait_for(
        "the cloud to see both extensions succeed",
        Duration::from_secs(120),
        || {
            let machines = admin.get("/machines")?;
            let exts = machines[0]["extensions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let done = exts.len() == 2
                && exts
                    .iter()
                    .all(|e| e["properties"]["provisioningState"] == "Succeeded");
            Ok(done.then_some(exts))
        },
    )?;

    step("what the cloud shows");
    let machines = admin.get("/machines")?;
    println!(
        "    machine {} is {}",
        machines[0]["machine"]["name"].as_str().unwrap_or_default(),
        machines[0]["machine"]["properties"]["status"]
            .as_str()
            .unwrap_or_default()
    );
    for e in &extensions {
        println!(
            "    extension {} {}: {}",
            e["name"].as_str().unwrap_or_default(),
            e["properties"]["typeHandlerVersion"]
                .as_str()
                .unwrap_or_default(),
            e["properties"]["provisioningState"]
                .as_str()
                .unwrap_or_default()
        );
    }
    step(
        "the Inventory sample's first scheduled collection (it runs hourly, the first within 30 s)",
    );
    let inventory = wait_for("the first collection", Duration::from_secs(90), || {
        let record = tether.json(&["extension", "show", "Tether.Samples/Inventory"])?;
        Ok((record["runs"][0]["result"] == "succeeded").then_some(record))
    })?;
    println!("    {}", inventory["message"].as_str().unwrap_or_default());
    step(
        "invoking the Hello extension in the service: tether extension invoke Tether.Samples/Hello greet quickstart",
    );
    println!(
        "    {}",
        tether
            .run(&[
                "extension",
                "invoke",
                "Tether.Samples/Hello",
                "greet",
                "quickstart"
            ])?
            .trim()
    );
    println!();
    println!("    tether-cloud's page:   {}/", cloud.url);
    println!(
        "    metadata endpoint:     {}",
        live["metadataEndpoints"][0].as_str().unwrap_or_default()
    );
    println!(
        "    try:                   TETHER_HOME={} {} show",
        home.display(),
        tether.exe.display()
    );
    println!();

    if !args.non_interactive {
        step("running; press Ctrl-C to disconnect cleanly and stop");
        let _ = stop_rx.recv();
    }

    step("disconnecting: the service removes the extensions, then the machine resource is deleted");
    tether.run(&["disconnect", "--config", &config_arg])?;
    let left = admin.get("/machines")?;
    ensure!(
        left.as_array().is_some_and(Vec::is_empty),
        "the cloud still holds {left}"
    );
    step("stopping the service and tether-cloud");
    service.stop();
    drop(cloud);
    step("done: nothing is left in the cloud, and this machine is disconnected");
    Ok(())
}

fn random_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(seed)
}
