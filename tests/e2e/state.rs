//! The state tree across versions: a tree written by the previous schema
//! (`state/schema-1/`, as round 1's binary wrote it after the quickstart)
//! is migrated forward and keeps working; fields a newer Tether adds are
//! read past; a tree or a file of a newer schema is refused, untouched.

use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/state/schema-1");
const RESOURCE_ID: &str = "/subscriptions/e4107024-4559-4e6b-bac5-d6334afa3f44/resourceGroups/demo/providers/Microsoft.HybridCompute/machines/quickstart";

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn json(path: &Path) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

fn previous_tree() -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("tether");
    copy_tree(Path::new(FIXTURE), &home)?;
    Ok((dir, home))
}

#[test]
fn a_tree_of_the_previous_schema_is_migrated_and_keeps_working() -> TestResult {
    let (_dir, home) = previous_tree()?;
    let before = json(&home.join("registration.json"))?;
    assert!(before.get("schema").is_none(), "the fixture is unversioned");
    // git keeps no modes but the executable bit: the outbox as round 1
    // wrote it, readable by root only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            home.join("cloud-reports.json"),
            std::fs::Permissions::from_mode(0o600),
        )?;
    }

    let out = tether(&home).args(["show", "--json"]).output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(shown["resourceId"], RESOURCE_ID);
    assert_eq!(shown["vmId"], before["vmId"]);

    // The tree is marked with this schema and this version...
    let marker = json(&home.join("state-version.json"))?;
    assert_eq!(marker["schema"], 2);
    assert_eq!(marker["writtenBy"], env!("CARGO_PKG_VERSION"));
    // ...every record carries it, with every field it had...
    let after = json(&home.join("registration.json"))?;
    assert_eq!(after["schema"], 2);
    for (key, value) in before.as_object().into_iter().flatten() {
        assert_eq!(&after[key], value, "registration field {key}");
    }
    let inventory = home.join("extensions/tether.samples/inventory/state.json");
    let record = json(&inventory)?;
    assert_eq!(record["schema"], 2);
    assert_eq!(record["runs"][0]["every"], "1h");
    assert_eq!(json(&home.join("extension-versions.json"))?["schema"], 2);
    assert_eq!(json(&home.join("cloud-reports.json"))?["schema"], 2);
    // ...and who may read it is unchanged.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| -> std::io::Result<u32> {
            Ok(std::fs::metadata(home.join(p))?.permissions().mode() & 0o777)
        };
        assert_eq!(mode("cloud-reports.json")?, 0o600);
        assert_eq!(mode("registration.json")?, 0o644);
    }

    // The extensions are still installed and enabled, with their settings
    // and grants.
    let out = tether(&home)
        .args(["extension", "list", "--json"])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout)?;
    let inventory = list
        .as_array()
        .and_then(|all| all.iter().find(|e| e["id"] == "Tether.Samples/Inventory"))
        .ok_or_else(|| anyhow::anyhow!("inventory not listed: {list}"))?;
    assert_eq!(inventory["enabled"], true);
    assert_eq!(inventory["settings"]["labels"]["owner"], "quickstart");
    assert_eq!(inventory["granted"]["readPaths"][0], "/etc/os-release");

    // Migrating twice changes nothing.
    let once = std::fs::read(home.join("registration.json"))?;
    let out = tether(&home).args(["show", "--json"]).output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(home.join("registration.json"))?, once);
    Ok(())
}

#[test]
fn fields_a_newer_tether_adds_are_read_past() -> TestResult {
    let (_dir, home) = previous_tree()?;
    let path = home.join("registration.json");
    let mut registration = json(&path)?;
    registration["schema"] = 2.into();
    registration["addedByANewerMinor"] = serde_json::json!({"anything": [1, 2]});
    std::fs::write(&path, serde_json::to_vec(&registration)?)?;
    let record = home.join("extensions/tether.samples/hello/state.json");
    let mut hello = json(&record)?;
    hello["schema"] = 2.into();
    hello["newerField"] = true.into();
    std::fs::write(&record, serde_json::to_vec(&hello)?)?;

    let out = tether(&home).args(["show", "--json"]).output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout)?["resourceId"],
        RESOURCE_ID
    );
    let out = tether(&home)
        .args(["extension", "show", "Tether.Samples/Hello", "--json"])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    Ok(())
}

#[test]
fn state_of_a_newer_schema_is_refused_and_left_as_it_is() -> TestResult {
    // The whole tree, as a newer Tether marks it.
    let (_dir, home) = previous_tree()?;
    std::fs::write(
        home.join("state-version.json"),
        r#"{"schema": 99, "writtenBy": "9.1.0"}"#,
    )?;
    let registration = std::fs::read(home.join("registration.json"))?;
    for args in [
        &["show", "--json"][..],
        &["extension", "list"],
        &["config", "list"],
    ] {
        let out = tether(&home).args(args).output()?;
        assert_eq!(out.status.code(), Some(6), "{args:?}: {}", stderr(&out));
        let err = stderr(&out) + &stdout(&out);
        assert!(
            err.contains("9.1.0") && err.contains("schema 99") && err.contains("reads schema 2"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(home.join("registration.json"))?, registration);
    // `version` still answers: it is how an operator finds out which one runs.
    let out = tether(&home).args(["version", "--json"]).output()?;
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout)?["stateSchema"],
        2
    );

    // One file of a newer schema in a current tree.
    let (_dir, home) = previous_tree()?;
    let out = tether(&home).args(["show"]).output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let path = home.join("registration.json");
    let mut newer = json(&path)?;
    newer["schema"] = 3.into();
    std::fs::write(&path, serde_json::to_vec(&newer)?)?;
    let out = tether(&home).args(["show", "--json"]).output()?;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("registration.json"),
        "{}",
        stdout(&out)
    );
    Ok(())
}
