//! The .deb as operators use it, on this machine (root, Debian): two
//! builds of the package in a local apt repository; the older installed by
//! version, connected to tether-cloud with an extension; upgraded with
//! `apt-get install tether`, keeping the registration, the extension and
//! the heartbeats; a downgrade refused; purged with a sign-in, which
//! disconnects (the cloud resource deleted) and leaves nothing behind.
//!
//! It installs into the real system, so it runs only as root where apt
//! is; `.ci/run` sets `TETHER_PACKAGE_TESTS=1`, which turns a skip into a
//! failure. Whatever it installed is purged when it ends, pass or fail.

use crate::extensions::{Publisher, package, write};
use crate::service::Service;
use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXE: &str = "/usr/bin/tether";
/// Where the test's repository is listed for plain `apt-get` (`tether upgrade`).
const LISTED: &str = "/etc/apt/sources.list.d/tether-e2e.list";
const PROXY_DROP_IN: &str = "/etc/systemd/system.conf.d/tether-proxy.conf";
const ROOT: &str = "/var/opt/tether";
const OLD: &str = concat!(env!("CARGO_PKG_VERSION"), "-1");
const NEW: &str = concat!(env!("CARGO_PKG_VERSION"), "-2");

fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd.output()?;
    Ok(out)
}

fn ok(cmd: &mut Command) -> anyhow::Result<String> {
    let out = run(cmd)?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    Ok(stdout(&out) + &stderr(&out))
}

/// The JSON a successful command printed.
fn ok_json(cmd: &mut Command) -> anyhow::Result<Value> {
    let out = run(cmd)?;
    anyhow::ensure!(out.status.success(), "{cmd:?} failed:\n{}", stderr(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// apt-get, seeing only the test's repository.
struct Apt {
    sources: PathBuf,
}

impl Apt {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("apt-get");
        cmd.arg("-o")
            .arg(format!("Dir::Etc::sourcelist={}", self.sources.display()))
            .args([
                "-o",
                "Dir::Etc::sourceparts=-",
                "-o",
                "APT::Get::List-Cleanup=0",
            ])
            .args(["-y", "-q"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    }
}

/// Purges what the test installed, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "tether"]).output();
        let _ = std::fs::remove_dir_all(ROOT);
        let _ = std::fs::remove_file(LISTED);
        let _ = std::fs::remove_file(PROXY_DROP_IN);
    }
}

fn installed_version() -> anyhow::Result<String> {
    ok(Command::new("dpkg-query").args(["-W", "-f", "${Version}", "tether"]))
}

/// tether-dist renders its assets into one directory: one build at a time.
static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Builds one package with tether-dist (`deb` or `rpm`, then its flags);
/// returns its path.
fn build(format: &str, flags: &[&str]) -> anyhow::Result<PathBuf> {
    let _one = BUILDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = ok(Command::new(cargo)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "run",
            "-q",
            "-p",
            "tether-dist",
            "--",
            format,
            "--profile",
            "dev",
        ])
        .args(flags))?;
    let path = out
        .lines()
        .find(|l| l.ends_with(&format!(".{format}")))
        .ok_or_else(|| anyhow::anyhow!("tether-dist named no package: {out}"))?;
    Ok(PathBuf::from(path))
}

fn build_deb(revision: &str) -> anyhow::Result<PathBuf> {
    build("deb", &["--revision", revision])
}

fn registration() -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(
        Path::new(ROOT).join("registration.json"),
    )?)?)
}

fn tether_installed() -> Command {
    let mut cmd = Command::new(EXE);
    cmd.env_remove("TETHER_HOME").env_remove("TETHER_LOG");
    cmd
}

#[test]
fn the_deb_installs_a_chosen_version_upgrades_in_place_and_purges_clean() -> TestResult {
    let can = is_root()
        && Path::new("/usr/bin/apt-get").exists()
        && Path::new("/usr/bin/dpkg-scanpackages").exists();
    if !can {
        anyhow::ensure!(
            std::env::var_os("TETHER_PACKAGE_TESTS").is_none(),
            "the package test needs root, apt-get and dpkg-scanpackages (dpkg-dev)"
        );
        eprintln!("skipped: the package test needs root, apt-get and dpkg-dev");
        return Ok(());
    }
    anyhow::ensure!(
        !Path::new(EXE).exists() && !Path::new(ROOT).exists(),
        "{EXE} or {ROOT} is already on this machine: the package test would replace it; remove it first (apt-get purge tether)"
    );
    let _installed = Installed;

    // A local repository holding both builds.
    let work = tempfile::tempdir()?;
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    for revision in ["1", "2"] {
        let deb = build_deb(revision)?;
        let name = deb.file_name().ok_or_else(|| anyhow::anyhow!("no name"))?;
        std::fs::copy(&deb, repo.join(name))?;
    }
    let index = run(Command::new("dpkg-scanpackages").current_dir(&repo).args([
        "--multiversion",
        ".",
        "/dev/null",
    ]))?;
    anyhow::ensure!(index.status.success(), "{}", stderr(&index));
    std::fs::write(repo.join("Packages"), &index.stdout)?;
    let sources = work.path().join("sources.list");
    let line = format!("deb [trusted=yes] file:{} ./\n", repo.display());
    std::fs::write(&sources, &line)?;
    std::fs::write(LISTED, &line)?;
    let apt = Apt { sources };
    ok(&mut apt.cmd(&["update"]))?;

    // The older version, chosen at install.
    let said = ok(&mut apt.cmd(&["install", &format!("tether={OLD}")]))?;
    assert_eq!(installed_version()?, OLD);
    assert!(
        said.contains("tether: "),
        "the postinst said nothing: {said}"
    );
    for file in [
        EXE,
        "/lib/systemd/system/tether.service",
        "/usr/lib/systemd/system.conf.d/tether-identity.conf",
        "/usr/share/man/man1/tether.1.gz",
        "/usr/share/man/man1/tether-connect.1.gz",
        "/usr/share/bash-completion/completions/tether",
        "/usr/share/zsh/vendor-completions/_tether",
        "/usr/share/doc/tether/copyright",
    ] {
        assert!(Path::new(file).exists(), "{file} not installed");
    }
    let unit = std::fs::read_to_string("/lib/systemd/system/tether.service")?;
    assert!(
        unit.contains("ExecStart=/usr/bin/tether service run"),
        "{unit}"
    );
    assert!(unit.contains("ProtectSystem=strict"), "{unit}");
    let dropin = std::fs::read_to_string("/usr/lib/systemd/system.conf.d/tether-identity.conf")?;
    assert!(
        dropin.contains("IDENTITY_ENDPOINT=http://localhost:40342/metadata/identity/oauth2/token")
    );
    ok(Command::new("getent").args(["group", "tether"]))?;
    assert!(Path::new(ROOT).is_dir());

    // Connected, with an extension, under the service.
    let cloud = Cloud::start()?;
    ok(tether_installed()
        .args(["connect", "--config"])
        .arg(cloud.config_file("administrator")?)
        .args(["--resource-name", "packaged"]))?;
    let contoso = Publisher::new("Contoso", 71);
    ok(tether_installed()
        .args([
            "extension",
            "trust",
            "add",
            "--publisher",
            "Contoso",
            "--key",
        ])
        .arg(contoso.line()))?;
    let pkg = write(
        work.path(),
        "hello.tpkg",
        &package(
            &contoso,
            "Contoso",
            "Hello",
            "1.0.0",
            "other",
            tether_test_artifacts::HELLO,
            "",
        )?,
    )?;
    ok(tether_installed().args(["extension", "install", &pkg]))?;
    let resource = registration()?["resourceId"].clone();
    let service = Service::start_installed(Path::new(EXE), Path::new(ROOT), "1s")?;
    let first = service.wait_until("a heartbeat", |l| l["lastHeartbeat"].is_number())?;
    let first = first["lastHeartbeat"].as_u64().unwrap_or_default();
    // A supervisor stops the old binary's service for the upgrade
    // (systemd: postinst's try-restart, once).
    service.stop()?;

    // Upgraded in place.
    let said = ok(&mut apt.cmd(&["install", "tether"]))?;
    assert_eq!(installed_version()?, NEW);
    assert!(
        said.contains("tether: "),
        "the postinst said nothing: {said}"
    );
    assert_eq!(registration()?["resourceId"], resource);
    assert_eq!(registration()?["schema"], tether::state::SCHEMA);
    let list = ok_json(tether_installed().args(["--json", "extension", "list"]))?;
    assert_eq!(list[0]["id"], "Contoso/Hello");
    assert_eq!(list[0]["enabled"], true, "{list}");
    let service = Service::start_installed(Path::new(EXE), Path::new(ROOT), "1s")?;
    service.wait_until("a heartbeat after the upgrade", |l| {
        l["lastHeartbeat"].as_u64().is_some_and(|t| t > first)
    })?;
    let out =
        ok(tether_installed().args(["extension", "invoke", "Contoso/Hello", "greet", "package"]))?;
    assert!(out.contains("package"), "{out}");
    service.stop()?;

    // `tether upgrade` asks apt: already the newest; a downgrade refused.
    let done = ok_json(tether_installed().args(["--json", "upgrade"]))?;
    assert_eq!(done["packageManager"], "apt", "{done}");
    assert_eq!(done["changed"], false, "{done}");
    assert_eq!(done["to"], NEW, "{done}");
    let out = run(tether_installed().args(["upgrade", "--version", OLD]))?;
    assert!(!out.status.success(), "tether upgrade downgraded");
    assert!(
        stderr(&out).contains("Tether is unchanged"),
        "{}",
        stderr(&out)
    );
    assert_eq!(installed_version()?, NEW);

    // The machine's other services get a proxy of their own; Tether's
    // own (proxy.url) stays as it was.
    ok(tether_installed().args([
        "service",
        "proxy-env",
        "set",
        "http://127.0.0.1:3128",
        "--bypass",
        "localhost,127.0.0.1",
    ]))?;
    let shown = ok_json(tether_installed().args(["--json", "show"]))?;
    assert_eq!(shown["servicesProxy"], "http://127.0.0.1:3128", "{shown}");
    assert_eq!(
        shown["servicesProxyBypass"], "localhost,127.0.0.1",
        "{shown}"
    );
    assert_eq!(shown["httpsProxy"], "", "{shown}");
    let out = run(tether_installed().args([
        "service",
        "proxy-env",
        "set",
        "http://ops:s3cret@127.0.0.1:3128",
    ]))?;
    assert_eq!(out.status.code(), Some(23));
    assert!(!(stdout(&out) + &stderr(&out)).contains("s3cret"));

    // A downgrade onto the newer package's state is refused; nothing moves.
    let out = run(&mut apt.cmd(&["install", "--allow-downgrades", &format!("tether={OLD}")]))?;
    assert!(!out.status.success(), "the downgrade went through");
    let said = stdout(&out) + &stderr(&out);
    assert!(
        said.contains("refusing to downgrade") && said.contains("TETHER_ALLOW_DOWNGRADE=1"),
        "{said}"
    );
    assert_eq!(installed_version()?, NEW);
    assert_eq!(registration()?["resourceId"], resource);

    // State of a newer schema is refused by the package too.
    let marker = Path::new(ROOT).join("state-version.json");
    let kept = std::fs::read(&marker)?;
    std::fs::write(&marker, r#"{"schema": 99, "writtenBy": "9.0.0"}"#)?;
    let out = run(&mut apt.cmd(&["install", "--reinstall", "tether"]))?;
    let said = stdout(&out) + &stderr(&out);
    assert!(
        !out.status.success() && said.contains("reads schema"),
        "{said}"
    );
    std::fs::write(&marker, kept)?;

    // Purged with a sign-in: disconnected, and nothing left.
    ok(tether_installed()
        .args(["login", "--cloud", &cloud.cloud.metadata_url(), "--config"])
        .arg(cloud.config_file("administrator")?))?;
    let said = ok(&mut apt.cmd(&["purge", "tether"]))?;
    assert!(said.contains("disconnected"), "{said}");
    assert!(
        cloud.machines()?.is_empty(),
        "the resource outlived the purge"
    );
    for gone in [
        EXE,
        ROOT,
        "/lib/systemd/system/tether.service",
        "/usr/lib/systemd/system.conf.d/tether-identity.conf",
        "/usr/share/man/man1/tether.1.gz",
        "/var/opt/azcmagent/tokens",
        PROXY_DROP_IN,
    ] {
        assert!(!Path::new(gone).exists(), "{gone} outlived the purge");
    }
    assert!(
        !run(Command::new("getent").args(["group", "tether"]))?
            .status
            .success(),
        "the group outlived the purge"
    );
    assert!(
        !run(Command::new("dpkg-query").args(["-W", "tether"]))?
            .status
            .success()
    );
    Ok(())
}

fn build_rpm() -> anyhow::Result<PathBuf> {
    build("rpm", &[])
}

/// The .rpm, checked with rpm itself: what it holds, what it needs, its
/// scriptlets, and a test install into an empty database. (A real install
/// needs an RPM-based machine; these are Debian's rpm tools.)
#[test]
fn the_rpm_holds_the_agent_and_scriptlets_rpm_accepts() -> TestResult {
    if !Path::new("/usr/bin/rpm").exists() {
        anyhow::ensure!(
            std::env::var_os("TETHER_PACKAGE_TESTS").is_none(),
            "the rpm test needs rpm (Debian's rpm package)"
        );
        eprintln!("skipped: the rpm test needs rpm");
        return Ok(());
    }
    let rpm = build_rpm()?;
    let rpm = rpm.to_string_lossy().into_owned();
    let files = ok(Command::new("rpm").args(["-qpl", &rpm]))?;
    for file in [
        "/usr/bin/tether",
        "/usr/lib/systemd/system/tether.service",
        "/usr/lib/systemd/system.conf.d/tether-identity.conf",
        "/usr/share/man/man1/tether.1.gz",
        "/usr/share/man/man1/tether-disconnect.1.gz",
        "/usr/share/bash-completion/completions/tether",
        "/usr/share/licenses/tether/LICENSE",
    ] {
        assert!(
            files.lines().any(|l| l == file),
            "{file} not in the rpm:\n{files}"
        );
    }
    let info = ok(Command::new("rpm").args(["-qpi", &rpm]))?;
    assert!(
        info.contains(&format!("Version     : {}", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    let needs = ok(Command::new("rpm").args(["-qpR", &rpm]))?;
    assert!(needs.contains("/usr/sbin/groupadd"), "{needs}");

    // Each scriptlet is the rendered one, and valid sh.
    let work = tempfile::tempdir()?;
    for (tag, must) in [
        ("PREIN", "refuse_newer_state"),
        ("POSTIN", "prepare_host"),
        ("PREUN", "stop_for_removal"),
        ("POSTUN", "retire"),
    ] {
        let script = ok(Command::new("rpm").args(["-qp", "--qf", &format!("%{{{tag}}}"), &rpm]))?;
        assert!(script.contains(must), "{tag}: {script}");
        assert!(
            script.contains(&format!("SCHEMA='{}'", tether::state::SCHEMA)),
            "{tag}"
        );
        assert!(!script.contains('@'), "{tag} has an unrendered placeholder");
        let path = work.path().join(tag);
        std::fs::write(&path, &script)?;
        ok(Command::new("sh").arg("-n").arg(&path))?;
    }

    // rpm would install it: no conflicts, a well-formed payload. Its two
    // requirements are a RHEL/SUSE machine's own, absent from an empty
    // database.
    let db = work.path().join("rpmdb");
    std::fs::create_dir_all(&db)?;
    ok(Command::new("rpm")
        .arg("--dbpath")
        .arg(&db)
        .args(["--initdb"]))?;
    ok(Command::new("rpm")
        .arg("--dbpath")
        .arg(&db)
        .args(["-i", "--test", "--nodeps", &rpm]))?;
    let out = run(Command::new("rpm")
        .arg("--dbpath")
        .arg(&db)
        .args(["-i", "--test", &rpm]))?;
    let said = stderr(&out);
    assert!(
        !out.status.success() && said.contains("/usr/sbin/groupadd"),
        "{said}"
    );
    Ok(())
}

fn build_msi() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The package holds the cross-built binary (`.ci/windows/check` has
    // built it in CI; this is then a no-op).
    ok(Command::new(cargo)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "build",
            "-q",
            "-p",
            "tether",
            "--target",
            "x86_64-pc-windows-gnu",
        ]))?;
    build("msi", &[])
}

/// One table of the .msi, as msitools exports it: rows of tab-separated
/// columns after the three header lines.
fn msi_table(msi: &str, table: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let text = ok(Command::new("msiinfo").args(["export", msi, table]))?;
    Ok(text
        .lines()
        .skip(3)
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

fn row<'a>(rows: &'a [Vec<String>], first: &str) -> anyhow::Result<&'a Vec<String>> {
    rows.iter()
        .find(|r| r.first().is_some_and(|c| c == first))
        .ok_or_else(|| anyhow::anyhow!("no row {first} in {rows:?}"))
}

/// The .msi, checked with msitools: what it installs, the service it
/// registers with the Service Control Manager, and the actions that
/// prepare the state root at install and retire the machine on a purge.
#[test]
fn the_msi_registers_the_service_and_retires_the_machine_on_purge() -> TestResult {
    if which("wixl").is_none() || which("x86_64-w64-mingw32-gcc").is_none() {
        anyhow::ensure!(
            std::env::var_os("TETHER_PACKAGE_TESTS").is_none(),
            "the msi test needs wixl and msitools, and gcc-mingw-w64-x86-64 (Debian packages)"
        );
        eprintln!("skipped: the msi test needs wixl, msitools and mingw");
        return Ok(());
    }
    let msi = build_msi()?;
    let msi = msi.to_string_lossy().into_owned();

    let files = msi_table(&msi, "File")?;
    let names: Vec<&str> = files
        .iter()
        .filter_map(|r| r.get(2))
        .map(|n| n.as_str())
        .collect();
    for name in [
        "tether.exe",
        "LICENSE.txt",
        "README.md",
        "_tether.ps1",
        "tether-connect.1.gz",
    ] {
        assert!(
            names.iter().any(|n| n.split('|').any(|part| part == name)),
            "{name} not in the msi: {names:?}"
        );
    }
    // Columns: Name DisplayName ServiceType StartType ErrorControl
    // LoadOrderGroup Dependencies StartName Password Arguments Component_.
    let service = row(&msi_table(&msi, "ServiceInstall")?, "Service")?.clone();
    assert_eq!(service[1], "tether", "{service:?}");
    assert_eq!(service[3], "16", "its own process: {service:?}");
    assert_eq!(service[4], "2", "started automatically: {service:?}");
    assert_eq!(service[8], "LocalSystem", "{service:?}");
    assert_eq!(service[10], "service run", "{service:?}");
    let control = row(&msi_table(&msi, "ServiceControl")?, "ServiceControl")?.clone();
    assert_eq!(control[1], "tether");
    // Start on install, stop on install and removal, delete on removal.
    let events: u32 = control[2].parse()?;
    assert_eq!(events & 0x1, 0x1, "started at install: {control:?}");
    assert_eq!(
        events & 0x22,
        0x22,
        "stopped at install and removal: {control:?}"
    );
    assert_eq!(events & 0x80, 0x80, "deleted at removal: {control:?}");

    let actions = msi_table(&msi, "CustomAction")?;
    assert_eq!(row(&actions, "PrepareState")?[3], "show");
    assert_eq!(row(&actions, "RetireInCloud")?[3], "disconnect --no-prompt");
    assert_eq!(
        row(&actions, "RetireLocally")?[3],
        "disconnect --force-local-only"
    );
    assert!(row(&actions, "RemoveState")?[3].contains("[CommonAppDataFolder]Tether"));
    // The state check fails the install (newer state); the purge never
    // fails a removal.
    let types = |id: &str| -> anyhow::Result<u32> { Ok(row(&actions, id)?[1].parse()?) };
    assert_eq!(types("PrepareState")? & 0x40, 0, "its failure rolls back");
    assert_eq!(
        types("RetireInCloud")? & 0x40,
        0x40,
        "its failure is ignored"
    );
    let sequence = msi_table(&msi, "InstallExecuteSequence")?;
    let at = |id: &str| -> anyhow::Result<u32> { Ok(row(&sequence, id)?[2].parse()?) };
    assert!(at("PrepareState")? > at("InstallFiles")?);
    for purge in ["RetireInCloud", "RetireLocally", "RemoveState"] {
        assert!(
            at(purge)? > at("DeleteServices")? && at(purge)? < at("RemoveFiles")?,
            "{purge} runs with the service gone and the binary still there"
        );
        assert_eq!(row(&sequence, purge)?[1], "REMOVE=\"ALL\" AND PURGE=\"1\"");
    }
    assert!(
        at("RetireInCloud")? < at("RetireLocally")? && at("RetireLocally")? < at("RemoveState")?
    );
    let property = msi_table(&msi, "Property")?;
    assert_eq!(
        row(&property, "ProductVersion")?[1],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(row(&property, "ProductName")?[1], "Tether");
    // MajorUpgrade: an older Tether is replaced, a newer one refuses this.
    let upgrade = msi_table(&msi, "Upgrade")?;
    assert!(upgrade.len() >= 2, "{upgrade:?}");

    // The payload is the cross-built binary itself.
    let out = tempfile::tempdir()?;
    ok(Command::new("msiextract")
        .arg("-C")
        .arg(out.path())
        .arg(&msi))?;
    let exe = crate::extensions::walk(out.path())
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "tether.exe"))
        .ok_or_else(|| anyhow::anyhow!("msiextract gave no tether.exe"))?;
    let built = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/x86_64-pc-windows-gnu/debug/tether.exe"
    ));
    if built.exists() {
        assert_eq!(std::fs::read(&exe)?, std::fs::read(built)?);
    }
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
