//! The .deb, by cargo-deb from host/Cargo.toml's `[package.metadata.deb]`.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, clap::Args)]
pub struct DebArgs {
    /// The cargo profile whose `tether` binary is packaged (`release` for
    /// what is shipped; CI packages its `dev` build).
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// The Debian revision (`0.1.0-REVISION`): a rebuilt package of the
    /// same Tether.
    #[arg(long, default_value = "1")]
    pub revision: String,
}

/// Builds the package; returns its path.
pub fn build(args: &DebArgs) -> Result<PathBuf> {
    let version = format!("{}-{}", tether::version::VERSION, args.revision);
    super::assets::render(&version)?;
    let out = super::paths::dist();
    let deb = out.join(format!("tether_{version}_amd64.deb"));
    let status = Command::new("cargo")
        .current_dir(super::paths::workspace())
        .args(["deb", "-p", "tether", "--no-build", "--fast"])
        .args(["--profile", &args.profile, "--deb-version", &version])
        .arg("--output")
        .arg(&deb)
        .status()
        .context("could not run cargo-deb: install it with `cargo install --locked cargo-deb`")?;
    anyhow::ensure!(
        status.success(),
        "cargo-deb failed (is the {} build of tether there? `cargo build -p tether{}`)",
        args.profile,
        if args.profile == "release" {
            " --release"
        } else {
            ""
        }
    );
    Ok(deb)
}
