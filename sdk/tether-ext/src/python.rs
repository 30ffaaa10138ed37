//! Python extensions: an `app.py` whose `Lifecycle` class implements the
//! contract, built with componentize-py against the contract's WIT and
//! Tether's Python SDK (`sdk/python`), both carried inside this tool so
//! that a project builds with the contract the tool was made for.

use super::toolchain;
use anyhow::Result;
use std::path::{Path, PathBuf};

const SDK: &str = include_str!("../../python/tether_sdk/__init__.py");
const TOOL: &str = "componentize-py";

/// Whether `dir` holds a Python extension.
pub fn is_project(dir: &Path) -> bool {
    dir.join("app.py").is_file()
}

/// The scaffold: `app.py` with one example of each capability.
pub fn new(root: &Path, name: &str) -> Result<()> {
    std::fs::write(root.join("app.py"), APP.replace("@NAME@", name))?;
    std::fs::write(root.join(".gitignore"), "target/\n__pycache__/\n*.tpkg\n")?;
    Ok(())
}

/// componentize-py: in the active virtual environment, else on PATH.
fn tool() -> Result<PathBuf> {
    let venv: Vec<PathBuf> = std::env::var_os("VIRTUAL_ENV")
        .map(|v| vec![PathBuf::from(v).join("bin")])
        .unwrap_or_default();
    toolchain::find(
        TOOL,
        &venv,
        "install it into a virtual environment, for example `python3 -m venv ~/.venvs/tether && ~/.venvs/tether/bin/pip install componentize-py`, then put that bin directory on PATH (or activate the environment)",
    )
}

pub fn build(dir: &Path, target_dir: Option<&Path>) -> Result<PathBuf> {
    let tool = tool()?;
    let target = toolchain::target(dir, target_dir);
    // The contract and the SDK, as this tool carries them.
    let wit = toolchain::contract(&target)?;
    let sdk = target.join("tether-python-sdk");
    std::fs::create_dir_all(sdk.join("tether_sdk"))?;
    std::fs::write(sdk.join("tether_sdk").join("__init__.py"), SDK)?;
    let wasm = toolchain::component(dir, target_dir)?;
    toolchain::run(
        &tool,
        std::process::Command::new(&tool)
            .current_dir(dir)
            .arg("-d")
            .arg(&wit)
            .args(["-w", "extension", "componentize", "-p", "."])
            .arg("-p")
            .arg(&sdk)
            .arg("app")
            .arg("-o")
            .arg(&wasm),
    )?;
    Ok(wasm)
}

const APP: &str = r#""""@NAME@: a Tether extension in Python.

Each command shows one thing the host offers; the manifest
(extension.toml) declares what reaches outside the sandbox, and the
operator grants it.
"""

import tether_sdk as tether


class Lifecycle(tether.Extension):
    def on_enable(self):
        tether.log.info("@NAME@ enabled")
        tether.status.success("ready")

    @tether.command("echo")
    def echo(self, args):
        return " ".join(args)

    @tether.command("greet")
    def greet(self, args):
        # Settings are JSON values: `tether extension install --settings`.
        return "hello " + str(tether.settings.get("name", "world"))

    @tether.command("count")
    def count(self, args):
        # The key-value store survives calls and restarts.
        n = int(tether.kv.get("count", "0")) + 1
        tether.kv["count"] = str(n)
        return {"count": n}

    @tether.command("machine")
    def machine(self, args):
        return tether.machine()

    @tether.command("fetch")
    def fetch(self, args):
        # Only origins in [capabilities] outbound, and granted, are reached.
        if not args:
            raise tether.Error("invalid-argument", "fetch URL")
        response = tether.http.get(args[0])
        return {"status": response.status, "bytes": len(response.body)}

    @tether.command("read")
    def read(self, args):
        # Files only under [capabilities] read_paths, as granted.
        if not args:
            raise tether.Error("invalid-argument", "read PATH")
        with open(args[0]) as f:
            return f.read()
"#;
