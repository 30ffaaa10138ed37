//! The binary as packages ship it: copied from the profile's build and
//! stripped (cargo-deb strips its own copy; the rpm and msi take this one).

use super::paths;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// The directory under `target/` a cargo profile builds into.
pub fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "release" | "bench" => "release",
        other => other,
    }
}

/// `target/dist/stage/tether` from `target/<profile>/tether`.
pub fn binary(profile: &str) -> Result<PathBuf> {
    let built = paths::target().join(profile_dir(profile)).join("tether");
    anyhow::ensure!(
        built.is_file(),
        "{} is not there: build it first (`cargo build -p tether{}`)",
        built.display(),
        if profile == "release" {
            " --release"
        } else {
            ""
        }
    );
    let staged = paths::dist().join("stage").join("tether");
    std::fs::create_dir_all(paths::dist().join("stage"))?;
    std::fs::copy(&built, &staged)
        .with_context(|| format!("could not copy {}", built.display()))?;
    let status = Command::new("strip")
        .arg(&staged)
        .status()
        .context("could not run strip (Debian's binutils)")?;
    anyhow::ensure!(status.success(), "strip failed on {}", staged.display());
    Ok(staged)
}
