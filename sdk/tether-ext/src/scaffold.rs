//! `new` and `build`, for each language an extension may be written in;
//! Rust's here, the others in their own modules.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

const TARGET: &str = "wasm32-wasip2";

fn crate_name(dir: &Path) -> Result<String> {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
        .with_context(|| format!("no Cargo.toml in {}", dir.display()))?;
    let name = manifest
        .lines()
        .find_map(|l| l.strip_prefix("name = "))
        .map(|n| n.trim().trim_matches('"').to_string())
        .context("Cargo.toml names no package")?;
    Ok(name.replace('-', "_"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Javascript,
}

/// The language of the project in `dir`, by the files that make it one.
fn lang_of(dir: &Path) -> Result<Lang> {
    if dir.join("Cargo.toml").is_file() {
        Ok(Lang::Rust)
    } else if super::python::is_project(dir) {
        Ok(Lang::Python)
    } else if super::javascript::is_project(dir) {
        Ok(Lang::Javascript)
    } else {
        bail!(
            "{} is no extension project: it has no Cargo.toml (Rust), app.py (Python) or app.js (JavaScript); make one with `tether-ext new NAME --lang …`",
            dir.display()
        )
    }
}

/// A new project `dir/name` implementing a small extension.
pub fn new(dir: &Path, name: &str, publisher: &str, lang: Lang) -> Result<PathBuf> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("`{name}` is not a crate name: letters, digits, '-' and '_'");
    }
    let root = dir.join(name);
    if root.exists() {
        bail!("{} exists already", root.display());
    }
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("extension.toml"), manifest(name, publisher, lang))?;
    match lang {
        Lang::Python => return super::python::new(&root, name).map(|()| root),
        Lang::Javascript => return super::javascript::new(&root, name).map(|()| root),
        Lang::Rust => {}
    }
    std::fs::create_dir_all(root.join("src"))?;
    // The SDK this tool was built with, by path; an SDK from a registry
    // would be a version requirement instead.
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tether-sdk");
    let sdk = sdk.canonicalize().unwrap_or(sdk);
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ntether-sdk = {{ path = {:?} }}\n\n[profile.release]\nopt-level = \"s\"\nstrip = \"debuginfo\"\n\n# A standalone crate, not part of any enclosing workspace.\n[workspace]\n",
            sdk.display().to_string()
        ),
    )?;
    std::fs::write(
        root.join("src/lib.rs"),
        format!(
            "//! {name}: a Tether extension.\n\nuse tether_sdk::{{Error, Extension, info}};\n\nstruct Ext;\n\nimpl Extension for Ext {{\n    fn enable() -> Result<(), Error> {{\n        info!(\"{name} enabled\");\n        Ok(())\n    }}\n\n    fn invoke(command: &str, args: &[String]) -> Result<String, Error> {{\n        match command {{\n            \"echo\" => Ok(args.join(\" \")),\n            other => Err(Error::unknown_command(other)),\n        }}\n    }}\n}}\n\ntether_sdk::export_extension!(Ext);\n"
        ),
    )?;
    Ok(root)
}

/// The manifest template; `tether-ext pack` adds the [component] table.
/// A Python or JavaScript component carries its interpreter: it needs
/// more memory.
fn manifest(name: &str, publisher: &str, lang: Lang) -> String {
    let memory = match lang {
        Lang::Rust => 64,
        Lang::Python | Lang::Javascript => 128,
    };
    format!(
        "# The manifest; `tether-ext pack` adds the [component] table.\npublisher = \"{publisher}\"\nname = \"{name}\"\nversion = \"0.1.0\"\ncontract = \"0.2.0\"\ndescription = \"{name}\"\ncategory = \"monitoring\"\n\n[capabilities]\noutbound = []\nread_paths = []\nwrite_paths = []\n\n[limits]\nmemory_mib = {memory}\ncall_timeout_ms = 10000\n"
    )
}

/// Where `build` puts the component.
pub fn built_component(dir: &Path, target_dir: Option<&Path>) -> Result<PathBuf> {
    if lang_of(dir)? != Lang::Rust {
        return super::toolchain::component(dir, target_dir);
    }
    let target = target_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("target"));
    Ok(target
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", crate_name(dir)?)))
}

pub fn build(dir: &Path, target_dir: Option<&Path>) -> Result<PathBuf> {
    match lang_of(dir)? {
        Lang::Python => return super::python::build(dir, target_dir),
        Lang::Javascript => return super::javascript::build(dir, target_dir),
        Lang::Rust => {}
    }
    let mut cargo =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(dir)
        .args(["build", "--release", "--target", TARGET])
        .env_remove("CARGO_TARGET_DIR");
    if let Some(t) = target_dir {
        cargo.arg("--target-dir").arg(t);
    }
    // Flags meant for an enclosing build must not reach the extension's.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CLIPPY_ARGS",
    ] {
        cargo.env_remove(var);
    }
    let status = cargo.status().context("could not run cargo")?;
    if !status.success() {
        bail!("the build failed (see above); if the target is missing: rustup target add {TARGET}");
    }
    let wasm = built_component(dir, target_dir)?;
    if !wasm.exists() {
        bail!("cargo succeeded but {} is missing", wasm.display());
    }
    Ok(wasm)
}
