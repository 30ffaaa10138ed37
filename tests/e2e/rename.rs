//! `tether rename`: the five steps of renaming an Arc machine as one
//! journaled command, in the service and without it, resumed after a kill.

use crate::extensions::{Publisher, ext, machine_extension, package, write};
use crate::service::{Service, assign_inventory, connected};
use crate::support::{Cloud, TestResult, stderr, stdout, tether};
use serde_json::Value;
use std::path::Path;

fn rename(home: &Path, cloud: &Cloud, name: &str) -> anyhow::Result<std::process::Output> {
    Ok(tether(home)
        .args(["--json", "rename", name, "--config"])
        .arg(cloud.config_file("administrator")?)
        .output()?)
}

fn renamed(out: &std::process::Output) -> anyhow::Result<Value> {
    anyhow::ensure!(out.status.success(), "rename failed: {}", stderr(out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn machine_names(cloud: &Cloud) -> anyhow::Result<Vec<String>> {
    Ok(cloud
        .machines()?
        .iter()
        .filter_map(|m| m["machine"]["name"].as_str().map(str::to_string))
        .collect())
}

fn collect(home: &Path) -> anyhow::Result<Value> {
    let out = ext(home, &["invoke", "Contoso/Inventory", "collect"])?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn rename_carries_extensions_and_settings_in_the_service_and_resumes_after_a_kill() -> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "ren-old")?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 31);
    let secret = "rename-s3cret-4417";
    assign_inventory(&cloud, h, &contoso, "ren", secret)?;
    // One extension the operator installed locally, and disabled.
    let hello = package(
        &contoso,
        "Contoso",
        "Hello",
        "1.0.0",
        "other",
        tether_test_artifacts::HELLO,
        "",
    )?;
    let hello = write(h, "hello.tpkg", &hello)?;
    assert!(ext(h, &["install", &hello])?.status.success());
    assert!(ext(h, &["disable", "Contoso/Hello"])?.status.success());

    // A name Azure would refuse changes nothing.
    let bad = rename(h, &cloud, "bad name!")?;
    assert!(!bad.status.success());
    let said = format!("{}{}", stdout(&bad), stderr(&bad));
    assert!(said.contains("not a valid machine name"), "{said}");
    assert_eq!(machine_names(&cloud)?, vec!["ren-old".to_string()]);

    // 1. In the service, which holds the protected settings in memory.
    let service = Service::start(h, "1s")?;
    service.wait_until("the extension reconciled", |l| {
        l["reconcileOutcomes"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x["action"] == "installed"))
    })?;
    let done = renamed(&rename(h, &cloud, "ren-new")?)?;
    assert_eq!(done["from"], "ren-old");
    assert_eq!(done["to"], "ren-new");
    assert_eq!(
        done["protectedSettingsNotCarried"],
        serde_json::json!([]),
        "{done}"
    );
    let redeployed = done["redeployed"].to_string();
    assert!(
        redeployed.contains("Contoso/Inventory") && redeployed.contains("Contoso/Hello"),
        "{done}"
    );
    assert_eq!(machine_names(&cloud)?, vec!["ren-new".to_string()]);
    let record = machine_extension(&cloud, "ren-new", "inv")?
        .ok_or_else(|| anyhow::anyhow!("the new resource has no inv extension"))?;
    assert_eq!(
        record["properties"]["provisioningState"], "Succeeded",
        "{record}"
    );
    assert_eq!(record["properties"]["settings"]["labels"]["team"], "ren");
    let doc = collect(h)?;
    assert_eq!(doc["name"], "ren-new", "the machine view follows: {doc}");
    assert!(
        doc["resourceId"]
            .as_str()
            .is_some_and(|r| r.ends_with("/machines/ren-new")),
        "{doc}"
    );
    assert_eq!(
        doc["hasUploadToken"], true,
        "protected settings carried: {doc}"
    );
    assert_eq!(doc["labels"]["team"], "ren");
    service.wait_until("the new resource's heartbeat", |l| {
        l["connected"] == true
            && l["resourceId"]
                .as_str()
                .is_some_and(|r| r.ends_with("ren-new"))
    })?;
    let hello_shown: Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "show", "Contoso/Hello"])
            .output()?
            .stdout,
    )?;
    assert_eq!(
        hello_shown["enabled"], false,
        "still disabled: {hello_shown}"
    );
    assert!(service.stop()?.success());

    // 2. Without the service: the command fetches the protected settings
    // from the cloud itself before removing anything.
    let done = renamed(&rename(h, &cloud, "ren-two")?)?;
    assert_eq!(
        done["protectedSettingsNotCarried"],
        serde_json::json!([]),
        "{done}"
    );
    assert_eq!(machine_names(&cloud)?, vec!["ren-two".to_string()]);

    // 3. Killed once the old resource is gone: the next run resumes from
    // the journal, and says which protected settings died with the process.
    let killed = tether(h)
        .env("TETHER_FAILPOINT", "rename:old-removed")
        .args(["rename", "ren-three", "--config"])
        .arg(cloud.config_file("administrator")?)
        .output()?;
    assert!(!killed.status.success(), "the failpoint aborts");
    assert!(
        machine_names(&cloud)?.is_empty(),
        "the old resource is deleted"
    );
    let other = rename(h, &cloud, "ren-other")?;
    assert!(
        !other.status.success(),
        "another name waits for the interrupted one"
    );
    let said = format!("{}{}", stdout(&other), stderr(&other));
    assert!(said.contains("tether rename ren-three"), "{said}");
    let done = renamed(&rename(h, &cloud, "ren-three")?)?;
    assert_eq!(
        done["protectedSettingsNotCarried"],
        serde_json::json!(["Contoso/Inventory"]),
        "{done}"
    );
    assert_eq!(machine_names(&cloud)?, vec!["ren-three".to_string()]);
    assert!(
        !h.join("journal/rename.json").exists(),
        "the journal is finished"
    );
    assert!(!h.join("journal/rename-packages").exists());
    let record = machine_extension(&cloud, "ren-three", "inv")?
        .ok_or_else(|| anyhow::anyhow!("the new resource has no inv extension"))?;
    assert_eq!(
        record["properties"]["provisioningState"], "Succeeded",
        "{record}"
    );
    let text = tether(h)
        .args(["rename", "ren-three", "--config"])
        .arg(cloud.config_file("administrator")?)
        .output()?;
    assert!(
        !text.status.success(),
        "renaming to the current name is refused"
    );
    // No secret was ever written under the state root.
    crate::extensions::assert_no_file_holds(h, secret);
    Ok(())
}
