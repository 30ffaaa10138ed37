//! `tether upgrade`.

use super::{Exit, Output};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct UpgradeArgs {
    /// The package version to move to (`0.2.0-1`); the newest the package
    /// manager knows without it.
    #[arg(long)]
    pub version: Option<String>,
    /// On Windows: the Tether .msi to install.
    #[arg(long)]
    pub msi: Option<PathBuf>,
}

pub fn run(out: &Output, args: UpgradeArgs) -> anyhow::Result<Exit> {
    super::require_admin("tether upgrade")?;
    let done = crate::lifecycle::upgrade::upgrade(args.version.as_deref(), args.msi)?;
    if out.is_json() {
        out.json(&done);
    } else if done.changed {
        out.line(format_args!(
            "Upgraded Tether from {} to {} ({}).",
            done.from.as_deref().unwrap_or("?"),
            done.to.as_deref().unwrap_or("?"),
            done.command
        ));
    } else {
        out.line(format_args!(
            "Tether is already at {} ({} changed nothing).",
            done.to.as_deref().unwrap_or("the version asked for"),
            done.command
        ));
    }
    Ok(Exit::Success)
}
