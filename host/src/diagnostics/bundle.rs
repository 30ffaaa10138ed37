//! The log bundle.

use super::redact::redact;
use crate::state::StateRoot;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Files and folders that hold secrets: never in a bundle, whatever happens.
const NEVER: &[&str] = &[
    "identity",
    "tokens",
    "login.json",
    "challenges",
    ".settings.lock",
    "cache",
    "dev",
];

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub path: PathBuf,
    pub files: Vec<String>,
}

/// Writes a zip of the state root's logs, journal, registration, settings
/// and operation status to `output`, redacted. `full` adds the listing of
/// the state root (names and sizes only).
pub fn write(
    state: &StateRoot,
    output: &Path,
    full: bool,
    extra: &[(&str, String)],
) -> Result<Bundle> {
    let file = create_private(output)?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut files = Vec::new();
    let mut add = |zip: &mut zip::ZipWriter<std::fs::File>, name: &str, text: &str| -> Result<()> {
        zip.start_file(name, options)?;
        zip.write_all(redact(text).as_bytes())?;
        files.push(name.to_string());
        Ok(())
    };
    for (name, text) in extra {
        add(&mut zip, name, text)?;
    }
    let mut listing = String::new();
    for path in walk(state.path())? {
        let rel = path.strip_prefix(state.path()).unwrap_or(&path);
        let rel_text = rel.to_string_lossy().replace('\\', "/");
        if NEVER
            .iter()
            .any(|n| rel_text == *n || rel_text.starts_with(&format!("{n}/")))
            || is_extension_private(&rel_text)
        {
            continue;
        }
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        listing.push_str(&format!("{size:>12}  {rel_text}\n"));
        if size > 16 << 20 {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        // Text only: a binary file cannot be checked for secrets.
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        add(&mut zip, &format!("state/{rel_text}"), &text)?;
    }
    if full {
        add(&mut zip, "state-listing.txt", &listing)?;
    }
    zip.finish()?;
    Ok(Bundle {
        path: output.to_path_buf(),
        files,
    })
}

/// An extension's private data (`extensions/<publisher>/<name>/data/…`:
/// its key-value store and anything it keeps): the extension's, not ours
/// to hand out.
fn is_extension_private(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    parts.len() > 4 && parts[0] == "extensions" && parts[3] == "data"
}

/// The bundle is created new, readable by its owner only: it holds the
/// machine's logs and settings, and must not replace a file someone
/// planted (a link to somewhere else).
fn create_private(output: &Path) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(output).with_context(|| {
        if output.exists() {
            format!(
                "{} already exists; name a new file with --output, or remove it first",
                output.display()
            )
        } else {
            format!("could not create {}", output.display())
        }
    })
}

fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                continue;
            } else if kind.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
