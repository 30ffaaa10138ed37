//! The compiled-component cache: compile once, load after; never load an
//! artifact this host did not write. A runtime keeps what it loaded in
//! memory, so the disk checks below use a new runtime (a new process).

use crate::support::*;
use tether::runtime::{CacheOutcome, ExtensionSpec, Runtime, RuntimeOptions};
use tether_test_artifacts as artifacts;

fn load_hello(runtime: &Runtime, data: &std::path::Path) -> anyhow::Result<CacheOutcome> {
    let bytes = std::fs::read(artifacts::HELLO)?;
    let ext = runtime.load(&bytes, ExtensionSpec::new("hello", data))?;
    // Whatever the cache did, the component must work.
    let out = ext.call(tether::runtime::Call::Invoke {
        command: "greet".into(),
        args: vec!["cache".into()],
    })?;
    assert_eq!(out.output.as_deref(), Some("Hello, cache!"));
    Ok(ext.cache_outcome())
}

fn artifacts_in(dir: &std::path::Path, suffix: &str) -> anyhow::Result<Vec<std::path::PathBuf>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect())
}

#[test]
fn components_compile_once_and_load_afterwards() -> TestResult {
    let home = tempfile::tempdir()?;
    let cache = home.path().join("cache");
    let options = RuntimeOptions {
        cache_dir: Some(cache.clone()),
        ..Default::default()
    };
    let runtime = Runtime::new(options.clone())?;
    assert_eq!(
        load_hello(&runtime, home.path())?,
        CacheOutcome::CompiledAndStored
    );
    // The same runtime (a long-lived service) keeps it in memory.
    assert_eq!(load_hello(&runtime, home.path())?, CacheOutcome::Memory);
    let stats = runtime.cache_stats();
    assert_eq!(
        (
            stats.compiled,
            stats.loaded_from_disk,
            stats.from_memory,
            stats.kept_in_memory
        ),
        (1, 0, 1, 1)
    );
    // A new process (a new engine with the same settings) loads it.
    let again = Runtime::new(options)?;
    assert_eq!(again.fingerprint(), runtime.fingerprint());
    assert_eq!(load_hello(&again, home.path())?, CacheOutcome::Loaded);
    assert_eq!(load_hello(&again, home.path())?, CacheOutcome::Memory);
    assert_eq!(again.cache_stats().loaded_from_disk, 1);
    // Forgotten, it is read from the disk again.
    again.forget_compiled();
    assert_eq!(again.cache_stats().kept_in_memory, 0);
    assert_eq!(load_hello(&again, home.path())?, CacheOutcome::Loaded);
    let written = artifacts_in(&cache, ".cwasm")?;
    assert_eq!(written.len(), 1);
    assert!(written[0].to_string_lossy().contains(runtime.fingerprint()));
    Ok(())
}

#[test]
fn corrupt_or_foreign_artifacts_are_recompiled_not_loaded() -> TestResult {
    let home = tempfile::tempdir()?;
    let cache = home.path().join("cache");
    let options = RuntimeOptions {
        cache_dir: Some(cache.clone()),
        ..Default::default()
    };
    // Each load in a new process: one that never saw the artifact's bytes.
    let load = || load_hello(&Runtime::new(options.clone())?, home.path());
    assert_eq!(load()?, CacheOutcome::CompiledAndStored);
    let artifact = artifacts_in(&cache, ".cwasm")?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no artifact"))?;

    // Corrupt: one flipped byte.
    let mut bytes = std::fs::read(&artifact)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&artifact, &bytes)?;
    assert_eq!(load()?, CacheOutcome::Replaced);
    assert_eq!(load()?, CacheOutcome::Loaded);

    // Foreign: an artifact without the seal this host writes beside its own.
    let seal = artifacts_in(&cache, ".cwasm.seal")?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no seal"))?;
    std::fs::remove_file(&seal)?;
    assert_eq!(load()?, CacheOutcome::Replaced);

    // Foreign with a forged seal for different bytes.
    std::fs::write(&artifact, b"not an artifact")?;
    assert_eq!(load()?, CacheOutcome::Replaced);
    Ok(())
}

#[test]
fn artifacts_in_a_cache_another_user_owns_are_never_loaded() -> TestResult {
    if !is_root() {
        eprintln!("skipped: giving a directory to another user needs root");
        return Ok(());
    }
    let home = tempfile::tempdir()?;
    let cache = home.path().join("cache");
    let options = RuntimeOptions {
        cache_dir: Some(cache.clone()),
        ..Default::default()
    };
    assert_eq!(
        load_hello(&Runtime::new(options.clone())?, home.path())?,
        CacheOutcome::CompiledAndStored
    );
    // Someone else owns the directory and the artifact (as if they had
    // pre-created it and planted a sealed one): it is recompiled, never
    // deserialized.
    for path in std::iter::once(cache.clone()).chain(artifacts_in(&cache, "")?) {
        std::os::unix::fs::chown(&path, Some(65534), Some(65534))?;
    }
    assert_eq!(
        load_hello(&Runtime::new(options)?, home.path())?,
        CacheOutcome::Replaced
    );
    Ok(())
}
