//! `tether logs` and `tether license`.

use super::{Exit, Output};
use crate::diagnostics::bundle;
use crate::state::StateRoot;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// Also list every file of the state root (names and sizes).
    #[arg(long)]
    pub full: bool,
    /// Where to write the zip (default: tether-logs-<time>.zip here).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn run_logs(out: &Output, args: LogsArgs) -> anyhow::Result<Exit> {
    let state = StateRoot::from_env();
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("tether-logs-{}.zip", crate::util::now())));
    let version = serde_json::to_string_pretty(&crate::version::build_info())?;
    let bundle = bundle::write(&state, &output, args.full, &[("version.json", version)])?;
    if out.is_json() {
        out.json(&bundle);
    } else {
        out.line(format_args!(
            "Wrote {} ({} files, secrets redacted).",
            bundle.path.display(),
            bundle.files.len()
        ));
    }
    Ok(Exit::Success)
}

pub fn run_license(out: &Output) -> anyhow::Result<Exit> {
    out.line(include_str!("../../../LICENSE"));
    Ok(Exit::Success)
}
