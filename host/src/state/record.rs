//! State files as JSON records that carry their schema version: written
//! with `"schema"` beside their fields, read by any binary whose schema is
//! the same or newer. Reading is tolerant on purpose: a field this binary
//! does not know (added by a newer one of the same schema) is ignored and
//! a field it misses takes its default, so an upgrade or a one-version
//! rollback never breaks a file. Only a file of a newer schema, one whose
//! meaning changed, is refused, with [`NewerState`].

use super::{Access, SCHEMA, write_atomic};
use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// The key every record carries.
const KEY: &str = "schema";

/// State written by a newer Tether, whose meaning this one does not know.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} is in state schema {schema}{by}; this Tether ({version}) reads schema {SCHEMA} and older. Install that version or a newer one again (`apt-get install tether=VERSION`, `dnf install tether-VERSION`, or its .msi), or remove the state to start over (`apt-get purge tether`)",
    by = written_by.as_deref().map(|v| format!(", written by Tether {v}")).unwrap_or_default(),
    version = crate::version::VERSION
)]
pub struct NewerState {
    pub path: PathBuf,
    pub schema: u64,
    pub written_by: Option<String>,
}

/// The schema a record's JSON says it is in; files from before schemas
/// were recorded are schema 1.
pub fn schema_of(value: &serde_json::Value) -> u64 {
    value
        .get(KEY)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1)
}

/// Reads the record at `path`: `None` when there is none. A damaged file
/// is an error that ends with `remedy` (what the operator can do).
pub fn read<T: DeserializeOwned>(path: &Path, remedy: &str) -> Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    let damaged =
        |e: serde_json::Error| anyhow::anyhow!("{} is damaged ({e}); {remedy}", path.display());
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).map_err(damaged)?;
    let schema = schema_of(&value);
    if schema > u64::from(SCHEMA) {
        return Err(NewerState {
            path: path.to_path_buf(),
            schema,
            written_by: None,
        }
        .into());
    }
    if let Some(fields) = value.as_object_mut() {
        fields.remove(KEY);
    }
    serde_json::from_value(value).map(Some).map_err(damaged)
}

/// Writes `record` at `path`, atomically, stamped with this schema.
pub fn write<T: Serialize>(path: &Path, record: &T, access: Access) -> Result<()> {
    let mut value = serde_json::to_value(record)
        .with_context(|| format!("could not encode {}", path.display()))?;
    let fields = value
        .as_object_mut()
        .with_context(|| format!("{} must hold a JSON object", path.display()))?;
    fields.insert(KEY.into(), SCHEMA.into());
    write_atomic(path, &serde_json::to_vec_pretty(&value)?, access)
}

/// Rewrites the record at `path` in this schema, keeping every field and
/// who may read it (migrations).
pub fn restamp(path: &Path) -> Result<()> {
    let bytes =
        std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        // A damaged file is left for its reader to report, with its remedy.
        return Ok(());
    };
    let Some(fields) = value.as_object_mut() else {
        return Ok(());
    };
    fields.insert(KEY.into(), SCHEMA.into());
    write_atomic(path, &serde_json::to_vec_pretty(&value)?, access_of(path))
}

#[cfg(unix)]
fn access_of(path: &Path) -> Access {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o044 != 0 => Access::Public,
        _ => Access::Private,
    }
}

#[cfg(not(unix))]
fn access_of(_path: &Path) -> Access {
    Access::Private
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Old {
        name: String,
    }

    #[test]
    fn unknown_fields_are_ignored_and_newer_schemas_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("r.json");
        assert!(read::<Old>(&path, "")?.is_none());

        std::fs::write(&path, r#"{"name":"a","addedLater":true}"#)?;
        assert_eq!(read::<Old>(&path, "")?, Some(Old { name: "a".into() }));

        write(&path, &Old { name: "b".into() }, Access::Private)?;
        let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        assert_eq!(schema_of(&raw), u64::from(SCHEMA));

        std::fs::write(&path, format!(r#"{{"schema":{},"name":"c"}}"#, SCHEMA + 1))?;
        let refused = read::<Old>(&path, "").expect_err("newer");
        assert!(
            refused.downcast_ref::<NewerState>().is_some(),
            "{refused:#}"
        );
        assert!(refused.to_string().contains("reads schema"), "{refused:#}");

        std::fs::write(&path, "{not json")?;
        let damaged = read::<Old>(&path, "remove it").expect_err("damaged");
        assert!(damaged.to_string().ends_with("remove it"), "{damaged:#}");
        Ok(())
    }
}
