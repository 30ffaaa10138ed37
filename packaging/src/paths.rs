//! Where the packaging reads and writes, from the workspace root.

use std::path::PathBuf;

/// The workspace root (this crate is one level below it).
pub fn workspace() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// The cargo target directory (`CARGO_TARGET_DIR` moves it).
pub fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// Where packages go.
pub fn dist() -> PathBuf {
    target().join("dist")
}

/// Where the generated assets go (host/Cargo.toml's deb assets name it).
pub fn assets() -> PathBuf {
    dist().join("assets")
}

/// The packaging sources: the maintainer scripts' templates.
pub fn sources() -> PathBuf {
    workspace().join("packaging")
}
