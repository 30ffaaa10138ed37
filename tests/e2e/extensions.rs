//! Signed extensions on the machine: trust, install, invoke, update,
//! remove; every refusal with nothing written; clean removal before
//! disconnect; a crash during install or update.

use crate::support::*;
use ed25519_dalek::SigningKey;
use sha2::Digest;
use std::path::Path;
use tether_test_artifacts as artifacts;

pub(crate) struct Publisher {
    name: &'static str,
    key: SigningKey,
}

impl Publisher {
    pub(crate) fn new(name: &'static str, seed: u8) -> Self {
        Self {
            name,
            key: SigningKey::from_bytes(&[seed; 32]),
        }
    }

    /// Its signature over `manifest`'s exact bytes.
    pub(crate) fn sign(&self, manifest: &[u8]) -> tether_package::Signature {
        tether_package::sign(manifest, &self.key)
    }

    pub(crate) fn line(&self) -> String {
        tether_package::public_key_line(&self.key.verifying_key(), self.name)
    }
}

pub(crate) fn manifest(
    publisher: &str,
    name: &str,
    version: &str,
    category: &str,
    component: &[u8],
    extra: &str,
) -> Vec<u8> {
    format!(
        "publisher = \"{publisher}\"\nname = \"{name}\"\nversion = \"{version}\"\ncontract = \"0.2.0\"\ncategory = \"{category}\"\n{extra}\n[component]\nfile = \"component.wasm\"\nsha256 = \"{}\"\nsize = {}\n",
        hex::encode(sha2::Sha256::digest(component)),
        component.len()
    )
    .into_bytes()
}

pub(crate) fn package(
    signer: &Publisher,
    publisher: &str,
    name: &str,
    version: &str,
    category: &str,
    wasm: &str,
    extra: &str,
) -> anyhow::Result<Vec<u8>> {
    let component = std::fs::read(wasm)?;
    let m = manifest(publisher, name, version, category, &component, extra);
    let sig = tether_package::sign(&m, &signer.key);
    Ok(tether_package::build(&m, &component, Some(&sig))?)
}

/// A sample's own manifest (`plugins/NAME/extension.toml`), changed by
/// `edit`, completed with the component and signed: the author's flow.
pub(crate) fn sample_package(
    signer: &Publisher,
    plugin: &str,
    wasm: &str,
    edit: impl Fn(String) -> String,
) -> anyhow::Result<Vec<u8>> {
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../plugins/{plugin}/extension.toml")),
    )?;
    completed_package(signer, &edit(template), wasm)
}

/// A package of `wasm` whose manifest is `template` completed with it,
/// signed by `signer`.
pub(crate) fn completed_package(
    signer: &Publisher,
    template: &str,
    wasm: &str,
) -> anyhow::Result<Vec<u8>> {
    let component = std::fs::read(wasm)?;
    let m = tether_package::Manifest::complete(template, &component)?;
    let sig = tether_package::sign(m.as_bytes(), &signer.key);
    Ok(tether_package::build(m.as_bytes(), &component, Some(&sig))?)
}

pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    let p = dir.join(name);
    std::fs::write(&p, bytes)?;
    Ok(p.display().to_string())
}

pub(crate) fn ext(home: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(tether(home).arg("extension").args(args).output()?)
}

pub(crate) fn trust(home: &Path, p: &Publisher) -> TestResult {
    let out = ext(
        home,
        &["trust", "add", "--publisher", p.name, "--key", &p.line()],
    )?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    Ok(())
}

#[test]
fn install_invoke_update_disable_remove() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let work = tempfile::tempdir()?;
    let contoso = Publisher::new("Contoso", 3);
    trust(h, &contoso)?;
    let v1 = write(
        work.path(),
        "inv-1.tpkg",
        &package(
            &contoso,
            "Contoso",
            "Inventory",
            "1.0.0",
            "monitoring",
            artifacts::INVENTORY,
            "",
        )?,
    )?;
    let out = ext(h, &["install", &v1])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "list"])
            .output()?
            .stdout,
    )?;
    assert_eq!(list[0]["id"], "Contoso/Inventory");
    assert_eq!(list[0]["enabled"], true);
    let collect = ext(h, &["invoke", "Contoso/Inventory", "collect"])?;
    assert!(collect.status.success(), "{}", stderr(&collect));
    let doc: serde_json::Value = serde_json::from_slice(&collect.stdout)?;
    assert_eq!(doc["activations"], 1);
    // Never connected: no resource, and the extension is told so.
    assert_eq!(doc["resourceId"], "");
    assert_eq!(doc["status"], "NotConnected");

    // Update: the key-value store survives, the version moves.
    let v2 = write(
        work.path(),
        "inv-2.tpkg",
        &package(
            &contoso,
            "Contoso",
            "Inventory",
            "1.1.0",
            "monitoring",
            artifacts::INVENTORY,
            "",
        )?,
    )?;
    assert!(ext(h, &["install", &v2])?.status.success());
    let shown: serde_json::Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "show", "contoso/inventory"])
            .output()?
            .stdout,
    )?;
    assert_eq!(shown["version"], "1.1.0");
    let doc: serde_json::Value =
        serde_json::from_slice(&ext(h, &["invoke", "Contoso/Inventory", "collect"])?.stdout)?;
    assert_eq!(
        doc["activations"], 2,
        "enable ran again after the update, and the store was kept"
    );

    assert!(ext(h, &["disable", "Contoso/Inventory"])?.status.success());
    let refused = ext(h, &["invoke", "Contoso/Inventory", "collect"])?;
    assert!(!refused.status.success() && stderr(&refused).contains("is disabled"));
    assert!(ext(h, &["enable", "Contoso/Inventory"])?.status.success());

    assert!(ext(h, &["remove", "Contoso/Inventory"])?.status.success());
    assert!(
        !h.join("extensions/contoso/inventory").exists(),
        "data left behind"
    );
    let list: serde_json::Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "list"])
            .output()?
            .stdout,
    )?;
    assert_eq!(list.as_array().map(Vec::len), Some(0));
    // 1.1.0 was installed here: 1.0.0 is a downgrade even after removal…
    let downgrade = ext(h, &["install", &v1])?;
    assert_eq!(downgrade.status.code(), Some(7), "{}", stderr(&downgrade));
    assert!(
        stderr(&downgrade).contains("version check") && stderr(&downgrade).contains("1.1.0"),
        "{}",
        stderr(&downgrade)
    );
    assert!(!h.join("extensions/contoso/inventory").exists());
    // …unless a local operator allows it. Reinstalling starts from a fresh store.
    assert!(
        ext(h, &["install", "--allow-downgrade", &v1])?
            .status
            .success()
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&ext(h, &["invoke", "Contoso/Inventory", "collect"])?.stdout)?;
    assert_eq!(doc["activations"], 1);
    Ok(())
}

pub(crate) fn raw_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        let _ = b.append(&h, *data);
    }
    b.into_inner().unwrap_or_default()
}

#[test]
fn every_refusal_names_its_check_and_writes_nothing() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let work = tempfile::tempdir()?;
    let contoso = Publisher::new("Contoso", 4);
    let fabrikam = Publisher::new("Fabrikam", 5);
    let stranger = Publisher::new("Contoso", 6);
    trust(h, &contoso)?;
    trust(h, &fabrikam)?;
    let hello = std::fs::read(artifacts::HELLO)?;
    let good = package(
        &contoso,
        "Contoso",
        "Hello",
        "1.0.0",
        "monitoring",
        artifacts::HELLO,
        "",
    )?;

    let tampered = {
        let pkg = tether_package::read(&good, Default::default())?;
        let mut m = pkg.manifest_bytes.clone();
        m.extend_from_slice(b"\n");
        tether_package::build(&m, &pkg.component, pkg.signature.as_ref())?
    };
    let digest = {
        let pkg = tether_package::read(&good, Default::default())?;
        let mut c = pkg.component.clone();
        let last = c.len() - 1;
        c[last] ^= 1;
        raw_tar(&[
            ("extension.toml", &pkg.manifest_bytes),
            ("component.wasm", &c),
            (
                "extension.sig",
                pkg.signature
                    .as_ref()
                    .map(|s| s.to_toml())
                    .unwrap_or_default()
                    .as_bytes(),
            ),
        ])
    };
    let m = manifest("Contoso", "Hello", "1.0.0", "monitoring", &hello, "");
    let traversal = raw_tar(&[("extension.toml", &m), ("../component.wasm", &hello)]);
    let duplicate = raw_tar(&[
        ("extension.toml", &m),
        ("component.wasm", &hello),
        ("component.wasm", &hello),
    ]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad signature", tampered, "signature"),
        (
            "untrusted key",
            package(
                &stranger,
                "Contoso",
                "Hello",
                "1.0.0",
                "monitoring",
                artifacts::HELLO,
                "",
            )?,
            "trust",
        ),
        (
            "another publisher's key",
            package(
                &fabrikam,
                "Contoso",
                "Hello",
                "1.0.0",
                "monitoring",
                artifacts::HELLO,
                "",
            )?,
            "trust",
        ),
        ("digest mismatch", digest, "digest"),
        ("path traversal", traversal, "package"),
        ("duplicate entry", duplicate, "package"),
        (
            "undeclared capability",
            package(
                &contoso,
                "Contoso",
                "Hello",
                "1.0.0",
                "monitoring",
                artifacts::HELLO,
                "[capabilities]\noutbound = [\"ftp://files.example\"]\n",
            )?,
            "capabilities",
        ),
        (
            "forbidden path",
            package(
                &contoso,
                "Contoso",
                "Hello",
                "1.0.0",
                "monitoring",
                artifacts::HELLO,
                "[capabilities]\nread_paths = [\"/etc/shadow\"]\n",
            )?,
            "capabilities",
        ),
    ];
    for (what, bytes, check) in &cases {
        let file = write(work.path(), "p.tpkg", bytes)?;
        let out = ext(h, &["install", &file])?;
        assert_eq!(out.status.code(), Some(7), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("refused by the {check} check")),
            "{what}: {}",
            stderr(&out)
        );
        assert!(
            !h.join("extensions").exists(),
            "{what}: something was written"
        );
    }

    // Oversize: refused before it is even parsed.
    let huge = work.path().join("huge.tpkg");
    std::fs::write(
        &huge,
        vec![0u8; (tether_package::ReadLimits::default().package_bytes + 1) as usize],
    )?;
    let out = ext(h, &["install", &huge.display().to_string()])?;
    assert_eq!(out.status.code(), Some(7));
    assert!(
        stderr(&out).contains("refused by the package check")
            && stderr(&out).contains("more than the"),
        "{}",
        stderr(&out)
    );
    assert!(!h.join("extensions").exists());

    let file = write(work.path(), "good.tpkg", &good)?;
    let settings: &[(&[&str], &str)] = &[
        (&["extensions.blocklist", "contoso/hello"], "policy"),
        (&["extensions.allowlist", "Fabrikam/Other"], "policy"),
        (&["extensions.enabled", "false"], "extensions.enabled"),
    ];
    for (set, check) in settings {
        assert!(
            tether(h)
                .args(["config", "set"])
                .args(*set)
                .status()?
                .success()
        );
        let out = ext(h, &["install", &file])?;
        assert_eq!(out.status.code(), Some(7), "{set:?}");
        assert!(
            stderr(&out).contains(&format!("refused by the {check} check")),
            "{set:?}: {}",
            stderr(&out)
        );
        assert!(!h.join("extensions").exists());
        assert!(
            tether(h)
                .args(["config", "clear", set[0]])
                .status()?
                .success()
        );
    }
    // Monitor mode admits only the monitoring category.
    assert!(
        tether(h)
            .args(["config", "set", "config.mode", "monitor"])
            .status()?
            .success()
    );
    let tool = write(
        work.path(),
        "tool.tpkg",
        &package(
            &contoso,
            "Contoso",
            "Tool",
            "1.0.0",
            "management",
            artifacts::HELLO,
            "",
        )?,
    )?;
    let out = ext(h, &["install", &tool])?;
    assert!(
        stderr(&out).contains("admits only the monitoring category"),
        "{}",
        stderr(&out)
    );
    assert!(
        ext(h, &["install", &file])?.status.success(),
        "a monitoring extension is admitted in monitor mode"
    );
    assert!(
        tether(h)
            .args(["config", "set", "config.mode", "full"])
            .status()?
            .success()
    );

    // No downgrade.
    let newer = write(
        work.path(),
        "h2.tpkg",
        &package(
            &contoso,
            "Contoso",
            "Hello",
            "2.0.0",
            "monitoring",
            artifacts::HELLO,
            "",
        )?,
    )?;
    assert!(ext(h, &["install", &newer])?.status.success());
    let out = ext(h, &["install", &file])?;
    assert!(
        stderr(&out).contains("refused by the version check") && stderr(&out).contains("downgrade"),
        "{}",
        stderr(&out)
    );
    let shown: serde_json::Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "show", "Contoso/Hello"])
            .output()?
            .stdout,
    )?;
    assert_eq!(shown["version"], "2.0.0");

    // A key trusted for one publisher cannot be trusted for another.
    let out = ext(
        h,
        &[
            "trust",
            "add",
            "--publisher",
            "Other",
            "--key",
            &contoso.line(),
        ],
    )?;
    assert_eq!(out.status.code(), Some(23));
    assert!(stderr(&out).contains("exactly one publisher"));
    // Removal is always allowed, even once the key is no longer trusted.
    assert!(
        ext(h, &["trust", "remove", "--publisher", "Contoso"])?
            .status
            .success()
    );
    let out = ext(h, &["invoke", "Contoso/Hello", "greet", "x"])?;
    assert!(
        !out.status.success(),
        "an extension whose key is no longer trusted must not run"
    );
    assert!(ext(h, &["remove", "Contoso/Hello"])?.status.success());
    assert!(!h.join("extensions/contoso/hello").exists());
    Ok(())
}

#[test]
fn disconnect_deletes_in_the_cloud_first_then_removes_every_extension() -> TestResult {
    let cloud = Cloud::start()?;
    let admin = cloud.config_file("administrator")?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    let work = tempfile::tempdir()?;
    assert!(
        tether(h)
            .args(["connect", "--config"])
            .arg(&admin)
            .args(["--resource-name", "ext-1"])
            .status()?
            .success()
    );
    let contoso = Publisher::new("Contoso", 7);
    trust(h, &contoso)?;
    let file = write(
        work.path(),
        "h.tpkg",
        &package(
            &contoso,
            "Contoso",
            "Hello",
            "1.0.0",
            "monitoring",
            artifacts::HELLO,
            "",
        )?,
    )?;
    assert!(ext(h, &["install", &file])?.status.success());
    let plan: serde_json::Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "disconnect", "--dry-run"])
            .output()?
            .stdout,
    )?;
    assert_eq!(plan["extensions"][0], "Contoso/Hello");
    let out = tether(h)
        .args(["disconnect", "--config"])
        .arg(&admin)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let at = |text: &str| err.find(text).unwrap_or(usize::MAX);
    // Every cloud deletion (the extension's record, then the machine)
    // comes before anything local is removed.
    assert!(
        at("deleting the cloud record of extension Contoso/Hello") < at("deleting /subscriptions"),
        "the extension's record must go before the machine: {err}"
    );
    assert!(
        at("deleting /subscriptions") < at("removing extension Contoso/Hello"),
        "the cloud first, then the local removal: {err}"
    );
    assert!(at("removing extension Contoso/Hello") < usize::MAX, "{err}");
    assert!(!h.join("extensions/contoso/hello").exists());
    assert!(cloud.machines()?.is_empty());
    Ok(())
}

#[test]
fn a_crash_during_install_or_update_leaves_a_consistent_machine() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let work = tempfile::tempdir()?;
    let contoso = Publisher::new("Contoso", 8);
    trust(h, &contoso)?;
    let v1 = write(
        work.path(),
        "v1.tpkg",
        &package(
            &contoso,
            "Contoso",
            "Hello",
            "1.0.0",
            "monitoring",
            artifacts::HELLO,
            "",
        )?,
    )?;
    let killed = tether(h)
        .args(["extension", "install", &v1])
        .env(
            "TETHER_FAILPOINT",
            "extension-contoso--hello:package-written",
        )
        .output()?;
    assert!(!killed.status.success());
    // Reading recovers nothing (the journal's owner might still be at work)…
    let list: serde_json::Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "list"])
            .output()?
            .stdout,
    )?;
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    assert!(h.join("journal/extension-contoso--hello.json").exists());
    // …the next command that takes the extensions lock finishes the story:
    // a half-installed extension is rolled back.
    assert!(ext(h, &["remove", "--all"])?.status.success());
    assert!(!h.join("extensions/contoso/hello").exists());
    assert!(!h.join("journal/extension-contoso--hello.json").exists());

    assert!(ext(h, &["install", &v1])?.status.success());
    let v2 = write(
        work.path(),
        "v2.tpkg",
        &package(
            &contoso,
            "Contoso",
            "Hello",
            "2.0.0",
            "monitoring",
            artifacts::HELLO,
            "",
        )?,
    )?;
    let killed = tether(h)
        .args(["extension", "install", &v2])
        .env("TETHER_FAILPOINT", "extension-contoso--hello:old-disabled")
        .output()?;
    assert!(!killed.status.success());
    let list: serde_json::Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "list"])
            .output()?
            .stdout,
    )?;
    assert_eq!(list[0]["enabled"], true, "recovered enabled: {list}");
    let out = ext(h, &["invoke", "Contoso/Hello", "greet", "again"])?;
    assert_eq!(stdout(&out), "Hello, again!\n", "{}", stderr(&out));
    assert!(!h.join("journal/extension-contoso--hello.json").exists());
    Ok(())
}

pub(crate) fn reconcile(home: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let out = tether(home)
        .args(["--json", "extension", "reconcile"])
        .output()?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The extension resource `name` of the cloud's first machine.
pub(crate) fn cloud_extension(
    cloud: &Cloud,
    name: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    Ok(cloud
        .machines()?
        .first()
        .and_then(|m| extension_named(m, name)))
}

/// The extension resource `name` of the cloud's machine named `machine`.
pub(crate) fn machine_extension(
    cloud: &Cloud,
    machine: &str,
    name: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    Ok(cloud
        .machines()?
        .iter()
        .find(|m| m["machine"]["name"] == machine)
        .and_then(|m| extension_named(m, name)))
}

fn extension_named(machine: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    machine["extensions"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == name).cloned())
}

#[test]
fn reconciliation_installs_reconfigures_updates_refuses_and_removes() -> TestResult {
    let cloud = Cloud::start()?;
    let admin_api = cloud.cloud.admin()?;
    let admin = cloud.config_file("administrator")?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    assert!(
        tether(h)
            .args(["connect", "--config"])
            .arg(&admin)
            .args(["--resource-name", "rec-1"])
            .status()?
            .success()
    );
    let machine_id = serde_json::from_slice::<serde_json::Value>(
        &tether(h).args(["--json", "show"]).output()?.stdout,
    )?["resourceId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let contoso = Publisher::new("Contoso", 9);
    trust(h, &contoso)?;
    let assign = |name: &str, ty: &str, version: &str, settings: serde_json::Value| {
        admin_api.post(
            "/extensions",
            serde_json::json!({"machineId": machine_id, "name": name, "publisher": "Contoso", "type": ty, "version": version,
                               "settings": settings, "protectedSettings": {"token": "p-secret-42"}}),
        )
    };
    admin_api.upload_package(
        "Contoso",
        "Inventory",
        "1.0.0",
        package(
            &contoso,
            "Contoso",
            "Inventory",
            "1.0.0",
            "monitoring",
            artifacts::INVENTORY,
            "",
        )?,
    )?;
    assign(
        "inv",
        "Inventory",
        "1.0.0",
        serde_json::json!({"labels": {"team": "a"}}),
    )?;

    let done = reconcile(h)?;
    assert_eq!(done[0]["action"], "installed", "{done:?}");
    let doc: serde_json::Value =
        serde_json::from_slice(&ext(h, &["invoke", "Contoso/Inventory", "collect"])?.stdout)?;
    assert_eq!(doc["labels"]["team"], "a");
    let inv =
        cloud_extension(&cloud, "inv")?.ok_or_else(|| anyhow::anyhow!("no inv in the cloud"))?;
    assert_eq!(inv["properties"]["provisioningState"], "Succeeded");
    // Protected settings reached the guest only: nothing under the state root holds them.
    for entry in walk(h) {
        let text = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains("p-secret-42"),
            "{} holds a protected setting",
            entry.display()
        );
    }
    assert_eq!(reconcile(h)?[0]["action"], "unchanged");

    assign(
        "inv",
        "Inventory",
        "1.0.0",
        serde_json::json!({"labels": {"team": "b"}}),
    )?;
    assert_eq!(reconcile(h)?[0]["action"], "reconfigured");
    let doc: serde_json::Value =
        serde_json::from_slice(&ext(h, &["invoke", "Contoso/Inventory", "collect"])?.stdout)?;
    assert_eq!(doc["labels"]["team"], "b");

    admin_api.upload_package(
        "Contoso",
        "Inventory",
        "1.1.0",
        package(
            &contoso,
            "Contoso",
            "Inventory",
            "1.1.0",
            "monitoring",
            artifacts::INVENTORY,
            "",
        )?,
    )?;
    assign(
        "inv",
        "Inventory",
        "1.1.0",
        serde_json::json!({"labels": {"team": "b"}}),
    )?;
    assert_eq!(reconcile(h)?[0]["action"], "updated");
    let shown: serde_json::Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "show", "Contoso/Inventory"])
            .output()?
            .stdout,
    )?;
    assert_eq!(shown["version"], "1.1.0");

    // Local policy beats the cloud, and the refusal is reported back.
    assert!(
        tether(h)
            .args(["config", "set", "extensions.blocklist", "Contoso/Blocked"])
            .status()?
            .success()
    );
    admin_api.upload_package(
        "Contoso",
        "Blocked",
        "1.0.0",
        package(
            &contoso,
            "Contoso",
            "Blocked",
            "1.0.0",
            "monitoring",
            artifacts::HELLO,
            "",
        )?,
    )?;
    assign("blk", "Blocked", "1.0.0", serde_json::json!({}))?;
    let done = reconcile(h)?;
    let blk = done
        .iter()
        .find(|o| o["name"] == "blk")
        .cloned()
        .unwrap_or_default();
    assert_eq!(blk["action"], "refused", "{done:?}");
    let cloud_blk = cloud_extension(&cloud, "blk")?.ok_or_else(|| anyhow::anyhow!("no blk"))?;
    assert_eq!(cloud_blk["properties"]["provisioningState"], "Failed");
    assert!(
        cloud_blk["properties"]["instanceView"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("blocklist"),
        "{cloud_blk}"
    );
    assert!(!h.join("extensions/contoso/blocked").exists());

    // Removal: the cloud deletes, the machine removes and reports, the record goes.
    let http = reqwest::blocking::Client::builder().no_proxy().build()?;
    let deleted = http
        .delete(format!(
            "{}{machine_id}/extensions/inv?api-version=2024-07-10",
            cloud.cloud.url
        ))
        .bearer_auth(cloud.admin_arm_token()?)
        .send()?;
    assert_eq!(deleted.status(), 202);
    let done = reconcile(h)?;
    assert!(
        done.iter()
            .any(|o| o["name"] == "inv" && o["action"] == "removed"),
        "{done:?}"
    );
    assert!(!h.join("extensions/contoso/inventory").exists());
    assert!(
        cloud_extension(&cloud, "inv")?.is_none(),
        "the cloud record should be gone"
    );
    Ok(())
}

pub(crate) fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Fails naming the first file under `root` whose bytes hold `secret`.
pub(crate) fn assert_no_file_holds(root: &Path, secret: &str) {
    for path in walk(root) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{} holds the secret",
            path.display()
        );
    }
}

/// The author's whole flow with the real tools: `tether-ext` keygen → new
/// (in `lang`) → build → pack → sign → verify, then `tether` trust add →
/// install → invoke. Returns the state root, with the extension installed
/// as `Authors/NAME`.
fn tether_ext() -> anyhow::Result<std::path::PathBuf> {
    let tool = Path::new(env!("CARGO_BIN_EXE_tether"))
        .with_file_name(format!("tether-ext{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        tool.exists(),
        "{} is missing: `cargo test --workspace` builds it (or `cargo build -p tether-ext`)",
        tool.display()
    );
    Ok(tool)
}

/// Where tether-ext builds in tests: one directory that outlives them.
fn ext_target() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ext-author-test")
}

/// Builds the sample `plugins/PLUGIN` from source with `tether-ext
/// build`, as its author would; returns the component's path.
pub(crate) fn tether_ext_build(plugin: &str) -> anyhow::Result<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins")
        .join(plugin);
    let out = std::process::Command::new(tether_ext()?)
        .arg("build")
        .arg("--dir")
        .arg(&dir)
        .arg("--target-dir")
        .arg(ext_target().join(plugin.replace('/', "-")))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "tether-ext build {plugin}: {}",
        stderr(&out)
    );
    // The last line: the toolchain may print its own before it.
    stdout(&out)
        .lines()
        .last()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("tether-ext build {plugin} named no component"))
}

fn author_flow(
    lang: &str,
    name: &str,
    edit: impl Fn(&Path) -> std::io::Result<()>,
) -> anyhow::Result<tempfile::TempDir> {
    let tool = tether_ext()?;
    let work = tempfile::tempdir()?;
    let w = work.path();
    let target = ext_target();
    let run = |args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new(&tool)
            .current_dir(w)
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "tether-ext {args:?}: {}",
            stderr(&out)
        );
        Ok(stdout(&out).trim().to_string())
    };
    let public = run(&["keygen", "--publisher", "Authors"])?;
    run(&["new", name, "--publisher", "Authors", "--lang", lang])?;
    edit(&w.join(name))?;
    let target = target.display().to_string();
    run(&["build", "--dir", name, "--target-dir", &target])?;
    let package = run(&["pack", "--dir", name, "--target-dir", &target])?;
    run(&["sign", &package, "--key", "Authors.key"])?;
    run(&["verify", &package, "--key", &public])?;

    let home = tempfile::tempdir()?;
    let h = home.path();
    let trusted = tether(h)
        .args([
            "extension",
            "trust",
            "add",
            "--publisher",
            "Authors",
            "--key",
            &public,
        ])
        .output()?;
    anyhow::ensure!(trusted.status.success(), "{}", stderr(&trusted));
    let installed = tether(h)
        .args(["extension", "install"])
        .arg(w.join(&package))
        .output()?;
    anyhow::ensure!(installed.status.success(), "{}", stderr(&installed));
    Ok(home)
}

fn invoke(home: &Path, id: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = tether(home)
        .args(["extension", "invoke", id])
        .args(args)
        .output()?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    Ok(stdout(&out))
}

#[test]
fn the_full_author_flow_from_new_to_invoke() -> TestResult {
    let home = author_flow("rust", "flow-ext", |_| Ok(()))?;
    assert_eq!(
        invoke(home.path(), "Authors/flow-ext", &["echo", "it", "works"])?,
        "it works\n"
    );
    Ok(())
}

/// A language toolchain the test needs, or a skip (a failure where
/// `.ci/run` installed the toolchains: TETHER_LANGUAGE_TESTS=1).
pub(crate) fn toolchain(program: &str) -> anyhow::Result<bool> {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    if !found {
        anyhow::ensure!(
            std::env::var_os("TETHER_LANGUAGE_TESTS").is_none(),
            "{program} is not on PATH (.ci/run installs it)"
        );
        eprintln!("skipped: {program} is not on PATH");
    }
    Ok(found)
}

/// The scaffold's commands, the same in every language: each exercises
/// one part of that language's SDK through the real host.
fn assert_scaffold_commands(h: &Path, id: &str) -> TestResult {
    assert_eq!(
        invoke(h, id, &["echo", "from", "the", "guest"])?,
        "from the guest\n"
    );
    assert_eq!(invoke(h, id, &["greet"])?, "hello world\n");
    let count = |h: &Path| -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_str(&invoke(h, id, &["count"])?)?)
    };
    assert_eq!(count(h)?["count"], 1);
    assert_eq!(count(h)?["count"], 2, "the store persists");
    let machine: serde_json::Value = serde_json::from_str(&invoke(h, id, &["machine"])?)?;
    assert_eq!(machine["status"], "not-connected", "{machine}");
    // An unknown command fails with the SDK's code; an undeclared origin
    // is refused by the host.
    let unknown = tether(h)
        .args(["extension", "invoke", id, "nope"])
        .output()?;
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("unknown-command"),
        "{}",
        stderr(&unknown)
    );
    let fetch = tether(h)
        .args(["extension", "invoke", id, "fetch", "https://example.com/"])
        .output()?;
    assert!(
        !fetch.status.success(),
        "nothing is granted: {}",
        stdout(&fetch)
    );
    assert!(stderr(&fetch).contains("denied"), "{}", stderr(&fetch));
    let shown: serde_json::Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "show", id])
            .output()?
            .stdout,
    )?;
    assert_eq!(shown["message"], "ready", "enable reported: {shown}");
    Ok(())
}

#[test]
fn the_python_author_flow_from_new_to_invoke() -> TestResult {
    if !toolchain("componentize-py")? {
        return Ok(());
    }
    // The author adds a command that allocates without end.
    let home = author_flow("python", "py-flow", |dir| {
        let app = std::fs::read_to_string(dir.join("app.py"))?;
        std::fs::write(
            dir.join("app.py"),
            app + "\n    @tether.command(\"hog\")\n    def hog(self, args):\n        held = []\n        while True:\n            held.append(bytearray(1 << 20))\n",
        )
    })?;
    assert_scaffold_commands(home.path(), "Authors/py-flow")?;
    // The memory limit holds the interpreter: the call fails, the next works.
    let hog = tether(home.path())
        .args(["extension", "invoke", "Authors/py-flow", "hog"])
        .output()?;
    assert!(!hog.status.success(), "{}", stdout(&hog));
    assert!(
        stderr(&hog).contains("MemoryError") || stderr(&hog).contains("memory"),
        "{}",
        stderr(&hog)
    );
    assert_eq!(
        invoke(home.path(), "Authors/py-flow", &["echo", "still"])?,
        "still\n"
    );
    // Files: plain open() inside the sandbox, where nothing is granted.
    let read = tether(home.path())
        .args([
            "extension",
            "invoke",
            "Authors/py-flow",
            "read",
            "/etc/hostname",
        ])
        .output()?;
    assert!(
        !read.status.success(),
        "nothing is granted: {}",
        stdout(&read)
    );
    Ok(())
}

#[test]
fn the_javascript_author_flow_from_new_to_invoke() -> TestResult {
    if !toolchain("componentize-js")? {
        return Ok(());
    }
    let home = author_flow("javascript", "js-flow", |_| Ok(()))?;
    assert_scaffold_commands(home.path(), "Authors/js-flow")
}
