//! What the non-Rust languages share: where a project's build goes, its
//! extension's name, and finding a toolchain the author installed (the
//! tool never downloads one).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The build directory: `--target-dir`, else DIR/target.
pub fn target(dir: &Path, target_dir: Option<&Path>) -> PathBuf {
    target_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("target"))
}

/// The extension's name, from its manifest.
pub fn name(dir: &Path) -> Result<String> {
    let manifest = std::fs::read_to_string(dir.join("extension.toml"))
        .with_context(|| format!("no extension.toml in {}", dir.display()))?;
    let manifest: toml::Table = manifest.parse().context("extension.toml")?;
    manifest
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .context("extension.toml names no extension")
}

/// The contract's WIT, as this tool carries it.
const WIT: &str = include_str!("../../../wit/extension.wit");

/// Writes the contract's WIT (`extension.wit`) into a directory of its
/// own under the build directory; returns that directory.
pub fn contract(target: &Path) -> Result<PathBuf> {
    let dir = target.join("tether-wit");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("extension.wit"), WIT)?;
    Ok(dir)
}

/// Where `build` puts the component.
pub fn component(dir: &Path, target_dir: Option<&Path>) -> Result<PathBuf> {
    Ok(target(dir, target_dir).join(format!("{}.wasm", name(dir)?)))
}

/// `program` in one of `first` (the project's own, in order), else on
/// PATH; `install` says how to get it when it is nowhere.
pub fn find(program: &str, first: &[PathBuf], install: &str) -> Result<PathBuf> {
    let path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    first
        .iter()
        .chain(path.iter())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("{program} is not installed: {install}. tether-ext never downloads a toolchain itself")
        })
}

/// Runs a language's toolchain, its output going to the author; fails
/// when it does.
pub fn run(tool: &Path, command: &mut std::process::Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not run {}", tool.display()))?;
    if !status.success() {
        let name = tool
            .file_name()
            .unwrap_or(tool.as_os_str())
            .to_string_lossy();
        bail!("{name} failed (its errors are above)");
    }
    Ok(())
}
