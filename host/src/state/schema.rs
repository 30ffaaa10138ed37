//! The state tree's schema: which schema its files are in, which Tether
//! last wrote them, and the migrations from each older schema to the next.
//!
//! Every command that uses the state checks the tree first ([`prepare`]):
//! a tree of a newer schema is refused before anything reads it (a
//! downgrade onto newer state); an older one is migrated forward, one
//! schema at a time, by whoever may write it (root; the service). A reader
//! without write access works on the older files as they are: every record
//! reader is tolerant ([`super::record`]).
//!
//! Schemas:
//! 1. round 1's files, without a version (two carried `"schema": 1`);
//! 2. every JSON record carries `"schema"`, and the tree this marker.

use super::record::{self, NewerState};
use super::{Access, StateRoot, write_atomic};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The schema this binary writes.
pub const SCHEMA: u32 = 2;

/// The tree's marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Marker {
    pub schema: u32,
    /// The Tether version that last wrote the tree.
    #[serde(default)]
    pub written_by: String,
}

/// What [`prepare`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// No state yet.
    Empty,
    /// Already this schema.
    Current,
    /// Migrated from this schema.
    Migrated { from: u32 },
    /// Older, left as it is for want of write access.
    Older { schema: u32 },
}

fn marker_path(state: &StateRoot) -> PathBuf {
    state.path().join("state-version.json")
}

/// The tree's marker; a tree with state but no marker is schema 1.
pub fn marker(state: &StateRoot) -> Result<Option<Marker>> {
    let path = marker_path(state);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
            format!(
                "{} is damaged; it records the state's schema: write {{\"schema\": {SCHEMA}}} to it if this Tether wrote the state, or reinstall the Tether that did",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(has_state(state).then(|| {
            Marker {
                schema: 1,
                written_by: String::new(),
            }
        })),
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

fn has_state(state: &StateRoot) -> bool {
    [
        "registration.json",
        "extensions",
        "settings.toml",
        "trust.toml",
    ]
    .iter()
    .any(|name| state.path().join(name).exists())
}

/// Refuses a newer tree; migrates an older one when `writable`.
pub fn prepare(state: &StateRoot, writable: bool) -> Result<Prepared> {
    let Some(found) = marker(state)? else {
        if writable && state.path().is_dir() {
            write_marker(state)?;
        }
        return Ok(Prepared::Empty);
    };
    if found.schema > SCHEMA {
        return Err(NewerState {
            path: state.path().to_path_buf(),
            schema: found.schema.into(),
            written_by: Some(found.written_by).filter(|v| !v.is_empty()),
        }
        .into());
    }
    if !writable {
        return Ok(if found.schema == SCHEMA {
            Prepared::Current
        } else {
            Prepared::Older {
                schema: found.schema,
            }
        });
    }
    for from in found.schema..SCHEMA {
        migrate_from(state, from)
            .with_context(|| format!("could not migrate the state from schema {from}"))?;
    }
    if found.schema < SCHEMA || found.written_by != crate::version::VERSION {
        write_marker(state)?;
    }
    Ok(if found.schema == SCHEMA {
        Prepared::Current
    } else {
        tracing::info!(
            "migrated the state under {} from schema {} to {SCHEMA}",
            state.path().display(),
            found.schema
        );
        Prepared::Migrated { from: found.schema }
    })
}

fn write_marker(state: &StateRoot) -> Result<()> {
    let marker = Marker {
        schema: SCHEMA,
        written_by: crate::version::VERSION.into(),
    };
    write_atomic(
        &marker_path(state),
        &serde_json::to_vec_pretty(&marker)?,
        Access::Public,
    )
}

/// One step: schema `from` to `from + 1`. Each step is idempotent, so a
/// migration killed halfway is run again whole.
fn migrate_from(state: &StateRoot, from: u32) -> Result<()> {
    match from {
        1 => {
            for path in records(state) {
                record::restamp(&path)?;
            }
            Ok(())
        }
        _ => anyhow::bail!("no migration from schema {from} is known"),
    }
}

/// Every JSON record in the tree (not extensions' own data, nor documents).
fn records(state: &StateRoot) -> Vec<PathBuf> {
    let root = state.path();
    let mut found: Vec<PathBuf> = [
        "registration.json",
        "agent-status.json",
        "login.json",
        "operations/reset.json",
    ]
    .iter()
    .map(|name| root.join(name))
    .chain([state.extension_versions(), state.report_outbox()])
    .collect();
    found.extend(json_files(&root.join("journal")));
    for publisher in dirs(&state.extensions_dir()) {
        found.extend(
            dirs(&publisher)
                .into_iter()
                .map(|ext| ext.join("state.json")),
        );
    }
    found.retain(|path| path.is_file());
    found
}

fn dirs(dir: &Path) -> Vec<PathBuf> {
    entries(dir).into_iter().filter(|p| p.is_dir()).collect()
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    entries(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}
