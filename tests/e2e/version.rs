//! `tether version`.

use crate::support::*;

#[test]
fn version_names_tether_wasmtime_and_the_contract() -> TestResult {
    let home = tempfile::tempdir()?;
    let out = tether(home.path()).args(["version", "--json"]).output()?;
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["contract"], "0.2.0");
    assert_eq!(v["contracts"], serde_json::json!(["0.2.0", "0.1.0"]));
    assert!(!v["commit"].as_str().unwrap_or_default().is_empty());

    // The wasmtime version reported is the one actually linked.
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))?;
    let linked = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"wasmtime\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_string())
        .ok_or_else(|| anyhow::anyhow!("wasmtime not in Cargo.lock"))?;
    assert_eq!(v["wasmtime"], linked.as_str());

    // And the contract version is the one in wit/.
    let wit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/extension.wit"))?;
    assert!(wit.contains("package tether:extension@0.2.0;"));
    let frozen = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wit/since_v0_1_0/extension.wit"
    ))?;
    assert!(frozen.contains("package tether:extension@0.1.0;"));

    let text = tether(home.path()).arg("version").output()?;
    assert!(
        stdout(&text).contains(
            "contract tether:extension@0.2.0 (runs extensions built against 0.2.0, 0.1.0)"
        ),
        "{}",
        stdout(&text)
    );
    Ok(())
}

#[test]
fn help_lists_the_commands() -> TestResult {
    let home = tempfile::tempdir()?;
    let out = tether(home.path()).arg("--help").output()?;
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("version") && text.contains("extension"),
        "{text}"
    );
    let out = tether(home.path()).arg("frobnicate").output()?;
    assert_eq!(out.status.code(), Some(23));
    Ok(())
}
