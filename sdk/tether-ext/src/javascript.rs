//! JavaScript extensions: an `app.js` module exporting `lifecycle`, built
//! with componentize-js against the contract's WIT. The JavaScript SDK
//! (`sdk/javascript/tether-sdk.js`) is carried by this tool and written
//! beside `app.js` at each build, so a project builds with the contract
//! the tool was made for; componentize-js bundles the two.

use super::toolchain;
use anyhow::Result;
use std::path::{Path, PathBuf};

const SDK: &str = include_str!("../../javascript/tether-sdk.js");
const TOOL: &str = "componentize-js";
const SDK_FILE: &str = "tether-sdk.js";

/// Whether `dir` holds a JavaScript extension.
pub fn is_project(dir: &Path) -> bool {
    dir.join("app.js").is_file()
}

/// The scaffold: `app.js` with one example of each capability, and a
/// package.json naming the toolchain for `npm install`.
pub fn new(root: &Path, name: &str) -> Result<()> {
    std::fs::write(root.join("app.js"), APP.replace("@NAME@", name))?;
    std::fs::write(
        root.join("package.json"),
        format!(
            "{{\n  \"name\": \"{name}\",\n  \"version\": \"0.1.0\",\n  \"private\": true,\n  \"type\": \"module\",\n  \"devDependencies\": {{\n    \"@bytecodealliance/componentize-js\": \"^0.23.0\"\n  }}\n}}\n"
        ),
    )?;
    std::fs::write(
        root.join(".gitignore"),
        format!("target/\nnode_modules/\n*.tpkg\n# written by `tether-ext build`\n{SDK_FILE}\n"),
    )?;
    Ok(())
}

/// componentize-js: the project's own (`npm install`), else on PATH.
fn tool(dir: &Path) -> Result<PathBuf> {
    toolchain::find(
        TOOL,
        &[dir.join("node_modules").join(".bin")],
        &format!(
            "run `npm install` in {} (its package.json names @bytecodealliance/componentize-js), or install it for every project with `npm install -g @bytecodealliance/componentize-js`",
            dir.display()
        ),
    )
}

pub fn build(dir: &Path, target_dir: Option<&Path>) -> Result<PathBuf> {
    let tool = tool(dir)?;
    let target = toolchain::target(dir, target_dir);
    let wit = toolchain::contract(&target)?;
    std::fs::write(dir.join(SDK_FILE), SDK)?;
    let wasm = toolchain::component(dir, target_dir)?;
    toolchain::run(
        &tool,
        std::process::Command::new(&tool)
            .current_dir(dir)
            .arg("app.js")
            .arg("--wit")
            .arg(wit.join("extension.wit"))
            .args(["--world-name", "extension", "-o"])
            .arg(&wasm),
    )?;
    Ok(wasm)
}

const APP: &str = r#"// @NAME@: a Tether extension in JavaScript.
//
// Each command shows one thing the host offers; the manifest
// (extension.toml) declares what reaches outside the sandbox, and the
// operator grants it.

import * as tether from './tether-sdk.js';

export const lifecycle = tether.extension({
  enable() {
    tether.log.info('@NAME@ enabled');
    tether.status.success('ready');
  },
  commands: {
    echo: (args) => args.join(' '),
    // Settings are JSON values: `tether extension install --settings`.
    greet: () => `hello ${tether.settings.get('name', 'world')}`,
    // The key-value store survives calls and restarts.
    count: () => {
      const n = Number(tether.kv.get('count', '0')) + 1;
      tether.kv.set('count', String(n));
      return { count: n };
    },
    machine: () => tether.machine(),
    // Only origins in [capabilities] outbound, and granted, are reached.
    fetch: (args) => {
      if (!args.length) throw new tether.TetherError('invalid-argument', 'fetch URL');
      const response = tether.http.get(args[0]);
      return { status: response.status, bytes: response.body.length };
    },
  },
});
"#;
