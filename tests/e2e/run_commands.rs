//! Run commands from the cloud, as an operator's automation creates them
//! with the unmodified Azure SDK for Python against a TLS tether-cloud, run
//! by the machine's Tether service on an installed extension: the output in
//! the resource's instance view, failures said plainly, scripts refused,
//! protected parameters kept off disk and out of ARM's answers, the
//! operator's off switch and blocklist obeyed, and pickup well before the
//! next heartbeat.

use crate::extensions::{Publisher, ext, package, trust, write};
use crate::service::{Service, connected};
use crate::support::*;
use serde_json::Value;
use std::path::Path;

fn sdk(cloud: &Cloud, machine: &str, phase: &str, secret: &str) -> anyhow::Result<Value> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/azure_sdk/run_command.py");
    let python = tether_test_artifacts::azure_sdk::python().map_err(anyhow::Error::msg)?;
    let ca = cloud
        .cloud
        .ca_file
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the cloud serves TLS"))?;
    let out = std::process::Command::new(python)
        .arg(script)
        .env("TC_URL", &cloud.cloud.url)
        .env("TC_CA", &ca)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("TC_TOKEN", cloud.admin_arm_token()?)
        .env("TC_SUBSCRIPTION", cloud.sub())
        .env("TC_MACHINE", machine)
        .env("TC_PHASE", phase)
        .env("TC_SECRET", secret)
        .env("NO_PROXY", "127.0.0.1,localhost,[::1]")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn files_holding(root: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        if path.is_dir() {
            todo.extend(
                std::fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default())
            .contains(needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn run_commands_created_with_the_azure_sdk_run_an_installed_extensions_command() -> TestResult {
    let cloud = Cloud::start_tls()?;
    let machine = "rc-1";
    let home = connected(&cloud, machine)?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 31);
    trust(h, &contoso)?;
    let work = tempfile::tempdir()?;
    let hello = write(
        work.path(),
        "hello.tpkg",
        &package(
            &contoso,
            "Contoso",
            "Hello",
            "1.0.0",
            "tools",
            tether_test_artifacts::HELLO,
            "",
        )?,
    )?;
    let out = ext(h, &["install", &hello])?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    // A heartbeat every five minutes: the runs below are picked up by the
    // service's long poll, not by a heartbeat.
    let service = Service::start(h, "5m")?;
    let secret = "rc-protected-5521";
    let seen = sdk(&cloud, machine, "main", secret)?;
    assert_eq!(seen["defaultApiVersion"], "2026-07-15", "{seen}");

    let greet = &seen["greet"];
    assert_eq!(greet["status"], "Succeeded", "{greet}");
    let result = &greet["result"];
    assert_eq!(result["executionState"], "Succeeded", "{greet}");
    assert_eq!(result["exitCode"], 0);
    // Parameters arrive as `name=value` arguments, public ones first.
    assert_eq!(
        result["output"],
        format!("Hello, who=World token={secret}!"),
        "{greet}"
    );
    assert_eq!(result["provisioningState"], "Succeeded");
    assert_eq!(
        result["type"],
        "Microsoft.HybridCompute/machines/runCommands"
    );
    assert!(
        result["started"] == true && result["ended"] == true,
        "{greet}"
    );
    assert!(
        greet["seconds"].as_f64().unwrap_or(99.0) < 20.0,
        "picked up promptly, not at the next heartbeat: {greet}"
    );
    assert_eq!(greet["get"]["executionState"], "Succeeded");
    assert!(greet["get"]["protectedParameters"].is_null(), "{greet}");
    assert_eq!(greet["get"]["parameters"][0]["value"], "World");

    // The command ran and failed: the run succeeded as an operation, its
    // instance view says how the command ended.
    let fails = &seen["fails"];
    assert_eq!(fails["result"]["executionState"], "Failed", "{fails}");
    assert_eq!(fails["result"]["exitCode"], 1);
    assert!(
        fails["result"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("usage: greet NAME"),
        "{fails}"
    );

    // Nothing to run it with: the operation fails, saying why.
    let missing = &seen["missing"];
    assert_eq!(missing["code"], "RunCommandRefused", "{missing}");
    assert!(
        missing["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Contoso/Missing is not installed"),
        "{missing}"
    );
    assert_eq!(missing["get"]["executionState"], "Failed");
    assert_eq!(missing["get"]["provisioningState"], "Failed");
    assert!(missing["get"]["exitCode"].is_null());

    // No native scripts: refused by ARM before anything reaches the machine.
    let script = &seen["script"];
    assert_eq!(script["httpStatus"], 400, "{script}");
    assert_eq!(script["code"], "RunCommandSourceNotSupported");
    assert!(
        script["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Package the logic as a signed extension")
    );
    assert!(script["get"].is_null(), "a refused PUT creates nothing");

    assert_eq!(seen["async"]["status"], "Succeeded", "{seen}");
    assert_eq!(
        seen["listed"],
        serde_json::json!(["async-1", "greet-1", "greet-2", "missing-1"])
    );
    assert_eq!(seen["afterDelete"], "ResourceNotFoundError");

    // The protected parameter reached the command, and nothing on disk.
    assert_eq!(files_holding(h, secret), Vec::<String>::new());

    // The operator's off switch, obeyed by the running service.
    config_set(h, "extensions.runcommands.enabled", "false")?;
    let seen = sdk(&cloud, machine, "disabled", secret)?;
    let disabled = &seen["disabled"];
    assert_eq!(disabled["code"], "RunCommandRefused", "{disabled}");
    assert!(
        disabled["message"]
            .as_str()
            .unwrap_or_default()
            .contains("extensions.runcommands.enabled is false"),
        "{disabled}"
    );

    // On again, but the operator blocked the extension since its install:
    // the cloud cannot make it run.
    config_set(h, "extensions.runcommands.enabled", "true")?;
    config_set(h, "extensions.blocklist", "Contoso/Hello")?;
    let seen = sdk(&cloud, machine, "blocked", secret)?;
    let blocked = &seen["blocked"];
    assert_eq!(blocked["code"], "RunCommandRefused", "{blocked}");
    assert!(
        blocked["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Contoso/Hello may no longer run: Contoso/Hello is in extensions.blocklist"),
        "{blocked}"
    );
    assert!(service.stop()?.success());
    Ok(())
}
