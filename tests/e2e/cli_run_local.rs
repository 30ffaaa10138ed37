//! `tether extension run-local` through the real binary.

use crate::support::*;
use tether_test_artifacts as artifacts;

#[test]
fn hello_greets_and_its_log_lines_are_printed() -> TestResult {
    let home = tempfile::tempdir()?;
    let out = tether(home.path())
        .args([
            "extension",
            "run-local",
            artifacts::HELLO,
            "invoke",
            "greet",
            "World",
        ])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello, World!\n");
    let err = stderr(&out);
    assert!(err.contains("[hello] info: hello: greeting World"), "{err}");
    assert!(
        err.contains("development run of an unsigned component"),
        "{err}"
    );
    Ok(())
}

#[test]
fn every_lifecycle_call_runs() -> TestResult {
    let home = tempfile::tempdir()?;
    for (call, logged) in [
        (vec!["install"], "hello: install"),
        (vec!["enable"], "hello: enable"),
        (vec!["disable"], "hello: disable"),
        (vec!["update", "0.9.0"], "hello: update from 0.9.0"),
        (vec!["uninstall"], "hello: uninstall"),
    ] {
        let out = tether(home.path())
            .args(["extension", "run-local", artifacts::HELLO])
            .args(&call)
            .output()?;
        assert!(out.status.success(), "{call:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(logged), "{call:?}: {}", stderr(&out));
    }
    Ok(())
}

#[test]
fn json_output_carries_result_logs_and_errors() -> TestResult {
    let home = tempfile::tempdir()?;
    let out = tether(home.path())
        .args([
            "--json",
            "extension",
            "run-local",
            artifacts::HELLO,
            "invoke",
            "greet",
            "JSON",
        ])
        .output()?;
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["ok"], true);
    assert_eq!(v["output"], "Hello, JSON!");
    assert_eq!(v["logs"][0]["message"], "hello: greeting JSON");
    assert_eq!(v["logs"][0]["level"], "info");

    let out = tether(home.path())
        .args([
            "--json",
            "extension",
            "run-local",
            artifacts::HELLO,
            "invoke",
            "dance",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(20), "the extension's own error");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "returned-error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown-command")
    );
    Ok(())
}

#[test]
fn a_contained_fixture_exits_with_the_stopped_code() -> TestResult {
    let home = tempfile::tempdir()?;
    let out = tether(home.path())
        .args([
            "extension",
            "run-local",
            artifacts::FIXTURE_SPIN,
            "enable",
            "--timeout-ms",
            "200",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(21));
    let err = stderr(&out);
    assert!(err.contains("error: extension `fixture_spin` failed in `enable`: it ran past its time limit of 200 ms"), "{err}");
    Ok(())
}

#[test]
fn the_inventory_counter_survives_host_restarts() -> TestResult {
    let home = tempfile::tempdir()?;
    for _ in 0..2 {
        let out = tether(home.path())
            .args(["extension", "run-local", artifacts::INVENTORY, "enable"])
            .output()?;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = tether(home.path())
        .args([
            "extension",
            "run-local",
            artifacts::INVENTORY,
            "invoke",
            "collect",
        ])
        .args([
            "--settings",
            r#"{"labels": {"team": "ops"}, "includeStatus": false}"#,
        ])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["activations"], 2);
    assert_eq!(doc["collections"], 1);
    assert_eq!(doc["labels"]["team"], "ops");
    assert!(doc.get("status").is_none(), "includeStatus=false: {doc}");
    assert_eq!(doc["osType"], std::env::consts::OS);
    assert!(!doc["name"].as_str().unwrap_or_default().is_empty());
    Ok(())
}

#[test]
fn bad_input_gets_a_clear_error_and_a_stable_code() -> TestResult {
    let home = tempfile::tempdir()?;
    let cases: &[(&[&str], i32, &str)] = &[
        (&["/nonexistent/x.wasm", "enable"], 3, "is not a file"),
        (&[artifacts::HELLO, "start"], 23, "`start` is not a call"),
        (&[artifacts::HELLO, "update"], 23, "exactly one argument"),
        (
            &[artifacts::HELLO, "enable", "--settings", "[1]"],
            3,
            "must be a JSON object",
        ),
        (
            &[
                artifacts::HELLO,
                "enable",
                "--protected-settings",
                "{\"pw\": hunter2",
            ],
            3,
            "not valid JSON",
        ),
        (
            &[artifacts::HELLO, "enable", "--allow-http", "ftp://x"],
            23,
            "http or https",
        ),
        (
            &[artifacts::HELLO, "enable", "--memory-mib", "0"],
            23,
            "memory-mib",
        ),
    ];
    for (args, code, says) in cases {
        let out = tether(home.path())
            .args(["extension", "run-local"])
            .args(*args)
            .output()?;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !err.contains("hunter2"),
            "a protected setting was echoed: {err}"
        );
    }
    let not_wasm = home.path().join("notes.wasm");
    std::fs::write(&not_wasm, "not wasm at all")?;
    let out = tether(home.path())
        .args(["extension", "run-local"])
        .arg(&not_wasm)
        .arg("enable")
        .output()?;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("not a valid WebAssembly component"),
        "{}",
        stderr(&out)
    );
    Ok(())
}
