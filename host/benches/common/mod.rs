//! What both benchmarks use: timing, formatting, and a state root with an
//! extension installed from a signed package, as the service's manager
//! works on.

// Each benchmark uses a part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// The publisher key the benchmarks sign with.
pub fn publisher_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[42; 32])
}

/// `component` packed with `manifest` (completed with its digest and size,
/// as `tether-ext pack` does) and signed with the benchmarks' key.
pub fn signed_package(manifest: &str, component: &[u8]) -> anyhow::Result<Vec<u8>> {
    let manifest = tether_package::Manifest::complete(manifest, component)?;
    let signature = tether_package::sign(manifest.as_bytes(), &publisher_key());
    Ok(tether_package::build(
        manifest.as_bytes(),
        component,
        Some(&signature),
    )?)
}

/// The Rust hello's manifest (the sample has none of its own: its crate
/// is its project).
pub const HELLO_MANIFEST: &str = "publisher = \"Bench\"\nname = \"Hello\"\nversion = \"1.0.0\"\ncontract = \"0.2.0\"\ncategory = \"other\"\n";

/// A state root with the extension installed from a signed package, its
/// publisher trusted: what the service's manager works on.
pub fn installed(
    home: &std::path::Path,
    manifest: &str,
    component: &[u8],
) -> anyhow::Result<tether::extensions::manager::Manager> {
    let package = signed_package(manifest, component)?;
    let state = trusting_state(home, &publisher(&package)?)?;
    let manager = tether::extensions::manager::Manager::new(state)?;
    manager.install(&package, &Default::default())?;
    Ok(manager)
}

/// Who published a package.
pub fn publisher(package: &[u8]) -> anyhow::Result<String> {
    let package = tether_package::read(package, tether_package::ReadLimits::default())?;
    Ok(package.manifest.publisher.clone())
}

/// A state root whose operator trusts the benchmarks' key for `publisher`.
pub fn trusting_state(
    home: &std::path::Path,
    publisher: &str,
) -> anyhow::Result<tether::state::StateRoot> {
    let state = tether::state::StateRoot::at(home);
    let line = tether_package::public_key_line(&publisher_key().verifying_key(), publisher);
    tether::extensions::trust::TrustStore::add(&state, publisher, &line)?;
    Ok(state)
}

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Times `f` `n` times after `warmup` untimed runs; returns the median.
pub fn measure(n: usize, warmup: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..warmup {
        f();
    }
    let samples = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    median(samples)
}

/// Times `batch` runs of `f` per sample, for operations too quick to time
/// one at a time; returns the median per run.
pub fn measure_batched(samples: usize, batch: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..batch {
        f();
    }
    let per_run = (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed() / batch as u32
        })
        .collect();
    median(per_run)
}

pub fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns >= 1_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

/// `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
/// and expects a quick run.
pub fn quick() -> bool {
    !std::env::args().any(|a| a == "--bench")
}
