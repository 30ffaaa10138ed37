//! The .rpm, by cargo-generate-rpm from host/Cargo.toml's
//! `[package.metadata.generate-rpm]`, with the rendered scriptlets passed
//! as metadata (they carry this build's version and state schema).

use super::paths;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, clap::Args)]
pub struct RpmArgs {
    /// The cargo profile whose `tether` binary is packaged.
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// The RPM release (`0.1.0-RELEASE`).
    #[arg(long, default_value = "1")]
    pub release: String,
}

/// Builds the package; returns its path.
pub fn build(args: &RpmArgs) -> Result<PathBuf> {
    let version = format!("{}-{}", tether::version::VERSION, args.release);
    let assets = super::assets::render(&version)?;
    super::stage::binary(&args.profile)?;
    let mut metadata = toml::Table::new();
    metadata.insert("release".into(), args.release.clone().into());
    for (key, script) in [
        ("pre_install_script", "pre.sh"),
        ("post_install_script", "post.sh"),
        ("pre_uninstall_script", "preun.sh"),
        ("post_uninstall_script", "postun.sh"),
    ] {
        let path = assets.join("rpm").join(script);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("could not read {}", path.display()))?;
        metadata.insert(key.into(), text.into());
    }
    let rpm = paths::dist().join(format!("tether-{version}.x86_64.rpm"));
    let status = Command::new("cargo")
        .current_dir(paths::workspace())
        .args(["generate-rpm", "-p", "host", "--payload-compress", "gzip"])
        .arg("--set-metadata")
        .arg(toml::to_string(&metadata)?)
        .arg("--output")
        .arg(&rpm)
        .status()
        .context(
            "could not run cargo-generate-rpm: install it with `cargo install --locked cargo-generate-rpm`",
        )?;
    anyhow::ensure!(status.success(), "cargo-generate-rpm failed");
    Ok(rpm)
}
