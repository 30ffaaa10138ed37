//! The settings file: read, validated, changed under a lock, written
//! atomically; and watched, so a running service picks up changes.

use super::properties::{Edit, Mode, Settings, find};
use crate::state::{Access, StateRoot, write_atomic};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(
        "the settings file {path} is broken: {detail}. Fix it by hand, or move it away to start from the defaults; Tether will not overwrite it"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the extension lists cannot be changed while config.mode is monitor; run `tether config set config.mode full` first (the lists are kept as they are)"
    )]
    MonitorMode,
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The settings of one state root.
#[derive(Debug, Clone)]
pub struct SettingsStore {
    path: PathBuf,
    lock: PathBuf,
}

impl SettingsStore {
    pub fn new(state: &StateRoot) -> Self {
        Self {
            path: state.path().join("settings.toml"),
            lock: state.path().join(".settings.lock"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings; the defaults when there is no file yet.
    pub fn load(&self) -> Result<Settings, ConfigError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => parse(&self.path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(ConfigError::Io {
                action: "read",
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Sets `key`; returns the settings as written.
    pub fn set(&self, key: &str, value: &str, edit: Edit) -> Result<Settings, ConfigError> {
        let property = find(key).map_err(ConfigError::Invalid)?;
        self.update(|settings| {
            if property.frozen_in_monitor_mode && settings.config.mode == Mode::Monitor {
                return Err(ConfigError::MonitorMode);
            }
            property
                .set(settings, value, edit)
                .map_err(ConfigError::Invalid)
        })
    }

    /// Returns `key` to its default; returns the settings as written.
    pub fn clear(&self, key: &str) -> Result<Settings, ConfigError> {
        let property = find(key).map_err(ConfigError::Invalid)?;
        self.update(|settings| {
            if property.frozen_in_monitor_mode && settings.config.mode == Mode::Monitor {
                return Err(ConfigError::MonitorMode);
            }
            property.clear(settings);
            Ok(())
        })
    }

    /// Read, change, write, all under the settings lock, so that two
    /// commands at once both land.
    fn update(
        &self,
        change: impl FnOnce(&mut Settings) -> Result<(), ConfigError>,
    ) -> Result<Settings, ConfigError> {
        let _lock = self.lock()?;
        let mut settings = self.load()?;
        change(&mut settings)?;
        let text = toml::to_string_pretty(&settings)
            .map_err(|e| ConfigError::Invalid(format!("could not render the settings: {e}")))?;
        let header =
            "# Tether's operator settings. Prefer `tether config set`; see `tether config info`.\n";
        write_atomic(
            &self.path,
            format!("{header}{text}").as_bytes(),
            Access::Public,
        )
        .map_err(|e| ConfigError::Io {
            action: "write",
            path: self.path.clone(),
            source: std::io::Error::other(format!("{e:#}")),
        })?;
        Ok(settings)
    }

    fn lock(&self) -> Result<File, ConfigError> {
        let io = |action, source| ConfigError::Io {
            action,
            path: self.lock.clone(),
            source,
        };
        if let Some(dir) = self.lock.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| io("open", e))?;
        file.lock().map_err(|e| io("lock", e))?;
        Ok(file)
    }

    /// A watch on the file, for hot reload.
    pub fn watch(&self) -> Watch {
        Watch {
            store: self.clone(),
            seen: digest(&self.path),
        }
    }
}

fn parse(path: &Path, text: &str) -> Result<Settings, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: ")
            })
            .unwrap_or_default();
        ConfigError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("{at}{}", e.message()),
        }
    })
}

fn digest(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path)
        .ok()
        .map(|b| *blake3::hash(&b).as_bytes())
}

/// Notices changes to the settings file. A running service polls it on its
/// own schedule (no file-system watcher thread, no tight loop).
pub struct Watch {
    store: SettingsStore,
    seen: Option<[u8; 32]>,
}

impl Watch {
    /// The new settings if the file changed since the last call; a broken
    /// file is reported (and the caller keeps the settings it had).
    pub fn changed(&mut self) -> Option<Result<Settings, ConfigError>> {
        let now = digest(self.store.path());
        if now == self.seen {
            return None;
        }
        self.seen = now;
        Some(self.store.load())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_sees_changes_and_broken_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = SettingsStore::new(&StateRoot::at(dir.path()));
        let mut watch = store.watch();
        assert!(watch.changed().is_none());
        store.set("extensions.agent.cpulimit", "30", Edit::Replace)?;
        let seen = watch.changed().ok_or("no change seen")??;
        assert_eq!(seen.extensions.agent.cpulimit, 30);
        assert!(watch.changed().is_none());
        std::fs::write(store.path(), "[proxy]\nurl = 3\n")?;
        match watch.changed() {
            Some(Err(ConfigError::Corrupt { detail, .. })) => {
                assert!(detail.contains("line 2"), "{detail}")
            }
            other => return Err(format!("expected a corrupt file, got {other:?}").into()),
        }
        Ok(())
    }
}
