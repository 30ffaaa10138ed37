//! Where Tether keeps its state, and how it writes it.
//!
//! Everything lives under one root: `/var/opt/tether` on Linux,
//! `%ProgramData%\Tether` on Windows, or `TETHER_HOME` when set (every test
//! sets it). Every write is atomic: a temporary file in the same directory,
//! fsync, rename, so a crash leaves the old or the new content, never half.

pub mod record;
pub mod schema;

pub use schema::SCHEMA;

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable that moves the state root.
pub const HOME_ENV: &str = "TETHER_HOME";

/// The state root and the well-known places below it.
#[derive(Debug, Clone)]
pub struct StateRoot {
    root: PathBuf,
}

impl StateRoot {
    /// The root named by `TETHER_HOME`, or the platform default.
    pub fn from_env() -> Self {
        match std::env::var_os(HOME_ENV) {
            Some(dir) if !dir.is_empty() => Self::at(PathBuf::from(dir)),
            _ => Self::at(default_root()),
        }
    }

    /// A root at an explicit path.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Compiled components, keyed by component digest and engine fingerprint.
    pub fn component_cache(&self) -> PathBuf {
        self.root.join("cache").join("components")
    }

    /// Installed extensions: `extensions/<publisher>/<name>/`.
    pub fn extensions_dir(&self) -> PathBuf {
        self.root.join("extensions")
    }

    /// One extension's directory (package, record, data). Built only from
    /// a parsed id, whose parts are single plain path components.
    pub fn extension_dir(&self, id: &tether_package::ExtensionId) -> PathBuf {
        let [publisher, name] = id.dir_parts();
        self.extensions_dir().join(publisher).join(name)
    }

    /// The highest version each extension ever had here; outlives removal.
    pub fn extension_versions(&self) -> PathBuf {
        self.root.join("extension-versions.json")
    }

    /// Status reports the cloud has not acknowledged yet.
    pub fn report_outbox(&self) -> PathBuf {
        self.root.join("cloud-reports.json")
    }

    /// Held by whoever changes extensions: the service for its whole run,
    /// or one command at a time when it does not run.
    pub fn extensions_lock(&self) -> PathBuf {
        self.root.join(".extensions.lock")
    }

    /// Where the identity endpoint writes its one-time key files. Under the
    /// default root, the directory Azure Arc's HIMDS uses, the only one the
    /// Azure SDKs' Arc credential reads a key from (MSAL and azure-identity
    /// check the path); under any other root, `tokens/` inside it.
    pub fn identity_tokens_dir(&self) -> PathBuf {
        if self.root == default_root() {
            arc_tokens_dir()
        } else {
            self.root.join("tokens")
        }
    }

    /// Private data of components run with `tether extension run-local`.
    pub fn dev_data(&self, name: &str) -> PathBuf {
        self.root.join("dev").join(name)
    }
}

#[cfg(windows)]
fn default_root() -> PathBuf {
    crate::platform::program_data()
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("Tether")
}

#[cfg(not(windows))]
fn default_root() -> PathBuf {
    PathBuf::from("/var/opt/tether")
}

/// Azure Arc's key-file directory, where the SDKs look for it.
#[cfg(windows)]
pub fn arc_tokens_dir() -> PathBuf {
    crate::platform::program_data()
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("AzureConnectedMachineAgent")
        .join("Tokens")
}

/// Azure Arc's key-file directory, where the SDKs look for it.
#[cfg(not(windows))]
pub fn arc_tokens_dir() -> PathBuf {
    PathBuf::from("/var/opt/azcmagent/tokens")
}

/// Who may read a file written by [`write_atomic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Readable by everyone (0644).
    Public,
    /// Readable by the owner only (0600): secrets, keys, private data.
    Private,
}

/// Writes `bytes` to `path` atomically: temp file beside it, fsync, rename,
/// then fsync of the directory so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8], access: Access) -> Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("could not create a temporary file in {}", dir.display()))?;
    set_access(tmp.path(), access)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("could not write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("could not replace {}", path.display()))?;
    sync_dir(dir);
    Ok(())
}

#[cfg(unix)]
fn set_access(path: &Path, access: Access) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match access {
        Access::Public => 0o644,
        Access::Private => 0o600,
    };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("could not set permissions on {}", path.display()))
}

#[cfg(not(unix))]
fn set_access(_path: &Path, _access: Access) -> Result<()> {
    // On Windows the state root's ACL (administrators only) is inherited.
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    // Best effort: some filesystems refuse to fsync a directory.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_files() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("sub").join("f.json");
        write_atomic(&file, b"one", Access::Public)?;
        write_atomic(&file, b"two", Access::Private)?;
        assert_eq!(fs::read(&file)?, b"two");
        let names: Vec<_> = fs::read_dir(dir.path().join("sub"))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "temp files left behind: {names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&file)?.permissions().mode() & 0o777, 0o600);
        }
        Ok(())
    }
}
