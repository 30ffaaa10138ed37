//! `extension.toml`.

use crate::PackageError;
use serde::{Deserialize, Serialize};

/// The manifest. `Publisher/Name` is the extension's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub publisher: String,
    pub name: String,
    pub version: semver::Version,
    /// The `tether:extension` contract version it was built against.
    pub contract: semver::Version,
    #[serde(default)]
    pub description: String,
    /// For example `monitoring` (the only category monitor mode admits).
    pub category: String,
    pub component: ComponentRef,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub limits: Limits,
    /// Commands the host service runs on an interval (`[[schedule]]`).
    #[serde(default, rename = "schedule", skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<crate::Schedule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentRef {
    /// Its name inside the package.
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

/// What the extension asks to be granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Origins for outbound HTTP: `scheme://host[:port]`, `*.` leftmost.
    #[serde(default)]
    pub outbound: Vec<String>,
    /// Directories it may read (absolute).
    #[serde(default)]
    pub read_paths: Vec<String>,
    /// Directories it may read and write (absolute).
    #[serde(default)]
    pub write_paths: Vec<String>,
    /// Read paths it can do without: one absent on the machine is skipped,
    /// one present is granted like a read path (for example dpkg's status
    /// file, or the rpm database, whichever the machine has).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional_read_paths: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_memory")]
    pub memory_mib: u64,
    #[serde(default = "default_timeout")]
    pub call_timeout_ms: u64,
}

/// The longest call a manifest may ask for: half of the host service's
/// systemd `WatchdogSec` (120 s), so that nothing an extension does can
/// come near it.
pub const MAX_CALL_TIMEOUT_MS: u64 = 60_000;

fn default_memory() -> u64 {
    64
}

fn default_timeout() -> u64 {
    10_000
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: default_memory(),
            call_timeout_ms: default_timeout(),
        }
    }
}

fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl Manifest {
    /// Parses and checks a manifest.
    pub fn parse(bytes: &[u8]) -> Result<Self, PackageError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| PackageError::Manifest("it is not UTF-8".into()))?;
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| PackageError::Manifest(e.message().to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), PackageError> {
        let bad = |m: String| Err(PackageError::Manifest(m));
        crate::id::check_part("publisher", &self.publisher).map_err(PackageError::Manifest)?;
        crate::id::check_part("name", &self.name).map_err(PackageError::Manifest)?;
        if !valid_part(&self.category) {
            return bad(format!("category `{}` is not a single word", self.category));
        }
        if self.component.file.contains(['/', '\\'])
            || self.component.file.starts_with('.')
            || self.component.file.is_empty()
        {
            return bad("component.file is a plain file name".into());
        }
        if self.component.sha256.len() != 64
            || !self.component.sha256.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return bad("component.sha256 is 64 hex digits".into());
        }
        if !(1..=1024).contains(&self.limits.memory_mib) {
            return bad("limits.memory_mib is 1 to 1024".into());
        }
        if !(1..=MAX_CALL_TIMEOUT_MS).contains(&self.limits.call_timeout_ms) {
            return bad(format!(
                "limits.call_timeout_ms is 1 to {MAX_CALL_TIMEOUT_MS} (a minute); do longer work in several calls"
            ));
        }
        if self.schedules.len() > crate::schedule::MAX_SCHEDULES {
            return bad(format!(
                "at most {} [[schedule]] entries",
                crate::schedule::MAX_SCHEDULES
            ));
        }
        for schedule in &self.schedules {
            schedule.check().map_err(PackageError::Manifest)?;
        }
        Ok(())
    }

    /// `Publisher/Name`, as spelled.
    pub fn id(&self) -> String {
        format!("{}/{}", self.publisher, self.name)
    }

    /// The id as the parsed type every path is built from. A parsed
    /// manifest's publisher and name were checked, so this only fails on
    /// a manifest built by hand.
    pub fn extension_id(&self) -> Result<crate::ExtensionId, crate::IdError> {
        crate::ExtensionId::new(&self.publisher, &self.name)
    }

    /// An author's `extension.toml` (everything but `[component]`)
    /// completed with the component's file name, digest and size, as
    /// packed: the text, checked.
    pub fn complete(template: &str, component: &[u8]) -> Result<String, PackageError> {
        use sha2::Digest;
        let mut table: toml::Table = toml::from_str(template).map_err(|e| {
            PackageError::Manifest(format!("it is not valid TOML: {}", e.message()))
        })?;
        let mut c = toml::Table::new();
        c.insert("file".into(), "component.wasm".into());
        c.insert(
            "sha256".into(),
            hex::encode(sha2::Sha256::digest(component)).into(),
        );
        let size = i64::try_from(component.len())
            .map_err(|_| PackageError::Manifest("the component is too large".into()))?;
        c.insert("size".into(), toml::Value::Integer(size));
        table.insert("component".into(), toml::Value::Table(c));
        let text =
            toml::to_string_pretty(&table).map_err(|e| PackageError::Manifest(e.to_string()))?;
        Self::parse(text.as_bytes())?;
        Ok(text)
    }

    /// The manifest as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}
