//! `tether version`.

use super::{Exit, Output};
use crate::version::build_info;

pub fn run(out: &Output) -> anyhow::Result<Exit> {
    let info = build_info();
    if out.is_json() {
        out.json(&info);
    } else {
        out.line(format_args!("tether {} ({})", info.version, info.commit));
        out.line(format_args!("wasmtime {}", info.wasmtime));
        out.line(format_args!(
            "contract tether:extension@{} (runs extensions built against {})",
            info.contract,
            info.contracts.join(", ")
        ));
        out.line(format_args!("state schema {}", info.state_schema));
    }
    Ok(Exit::Success)
}
