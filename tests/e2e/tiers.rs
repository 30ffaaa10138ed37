//! A large component under the service (a Python extension: its
//! interpreter is inside): compiled before the install takes the
//! extensions, called on Winch's baseline code at once, Cranelift's code
//! replacing it in the background, and after a restart loaded from the
//! cache with nothing compiled.

use crate::extensions::{
    Publisher, ext, sample_package, tether_ext_build, toolchain, trust, write,
};
use crate::service::{Service, connected};
use crate::support::*;
use serde_json::Value;
use std::time::Duration;

fn components(service: &Service) -> anyhow::Result<Value> {
    Ok(service.status()?["live"]["extensionRuntime"]["components"].clone())
}

fn greet(home: &std::path::Path, name: &str) -> TestResult {
    let out = ext(home, &["invoke", "Contoso/HelloPython", "greet", name])?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    anyhow::ensure!(
        stdout(&out).contains(&format!("Hello, {name}!")),
        "{}",
        stdout(&out)
    );
    Ok(())
}

#[test]
fn a_python_extension_is_called_at_once_optimized_in_the_background_and_not_compiled_again()
-> TestResult {
    if !toolchain("componentize-py")? {
        return Ok(());
    }
    let wasm = tether_ext_build("python/hello")?;
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "tiers")?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 71);
    trust(h, &contoso)?;
    let package = write(
        h,
        "hello-python.tpkg",
        &sample_package(&contoso, "python/hello", &wasm, |m| m)?,
    )?;
    let service = Service::start(h, "5m")?;

    let out = ext(h, &["install", &package])?;
    assert!(out.status.success(), "{}", stderr(&out));
    // The service compiled it before taking the extensions (on the
    // baseline tier); the install found that code in memory.
    let after_install = components(&service)?;
    assert!(
        after_install["fromMemory"].as_u64() >= Some(1),
        "the install compiled under the lock: {after_install}"
    );
    greet(h, "baseline")?;

    // Cranelift's code arrives in the background and replaces the
    // baseline artifact in the cache.
    let settled = wait_for_within("the optimized code", Duration::from_secs(600), || {
        let now = components(&service)?;
        Ok((now["awaitingOptimizedCode"] == 0).then_some(now))
    })?;
    assert_eq!(
        settled["compiled"], 2,
        "baseline, then optimized: {settled}"
    );
    let log = std::fs::read_to_string(h.join("logs/tether.log"))?;
    assert!(
        log.contains("Contoso/HelloPython: optimized code ready"),
        "the service said so"
    );
    let artifacts: Vec<_> = crate::extensions::walk(&h.join("cache"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(
        artifacts.len(),
        1,
        "only the optimized artifact is kept: {artifacts:?}"
    );
    greet(h, "optimized")?;
    service.stop()?;

    // A restart compiles nothing: the optimized artifact is loaded.
    // Its code is loaded as the service starts, before any call.
    let service = Service::start(h, "5m")?;
    wait_for_within("the code loaded at start", Duration::from_secs(60), || {
        let log = std::fs::read_to_string(h.join("logs/tether.log"))?;
        Ok(log.contains("code of 1 extension(s) loaded").then_some(()))
    })?;
    greet(h, "again")?;
    let restarted = components(&service)?;
    assert_eq!(restarted["compiled"], 0, "{restarted}");
    assert_eq!(restarted["loadedFromDisk"], 1, "{restarted}");
    assert!(
        restarted["fromMemory"].as_u64() >= Some(1),
        "the call found the code loaded at start: {restarted}"
    );
    assert_eq!(restarted["awaitingOptimizedCode"], 0, "{restarted}");
    Ok(())
}
