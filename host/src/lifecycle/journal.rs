//! Journals of multi-step operations. Each step is recorded (atomically)
//! once it is done; an operation found in the journal at the next start is
//! resumed or rolled back.
//!
//! `TETHER_FAILPOINT=OPERATION:STEP` makes the process abort right after
//! recording STEP: how tests kill an operation at each step, reproducibly.

use crate::state::{Access, StateRoot, record};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub operation: String,
    /// The steps done, in order.
    pub done: Vec<String>,
    pub started: u64,
    /// What the operation needs to resume (never a secret).
    pub data: Value,
}

impl Entry {
    pub fn has(&self, step: &str) -> bool {
        self.done.iter().any(|s| s == step)
    }
}

pub struct Journal {
    path: PathBuf,
    entry: Entry,
}

fn path(state: &StateRoot, operation: &str) -> PathBuf {
    state
        .path()
        .join("journal")
        .join(format!("{operation}.json"))
}

/// The unfinished `operation`, if there is one.
pub fn pending(state: &StateRoot, operation: &str) -> Result<Option<Entry>> {
    let path = path(state, operation);
    record::read(
        &path,
        "it records an interrupted operation: remove it, then check with `tether show` what that operation left",
    )
}

impl Journal {
    /// Starts `operation`, or resumes the unfinished one.
    pub fn begin(state: &StateRoot, operation: &str, data: Value) -> Result<Self> {
        let entry = match pending(state, operation)? {
            Some(entry) => entry,
            None => Entry {
                operation: operation.to_string(),
                done: Vec::new(),
                started: crate::util::now(),
                data,
            },
        };
        let journal = Self {
            path: path(state, operation),
            entry,
        };
        journal.save()?;
        Ok(journal)
    }

    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    pub fn data_mut(&mut self) -> &mut Value {
        &mut self.entry.data
    }

    fn save(&self) -> Result<()> {
        record::write(&self.path, &self.entry, Access::Private)
    }

    /// Records `step` as done.
    pub fn done(&mut self, step: &str) -> Result<()> {
        if !self.entry.has(step) {
            self.entry.done.push(step.to_string());
        }
        self.save()?;
        failpoint(&self.entry.operation, step);
        Ok(())
    }

    /// The operation is complete: the journal goes.
    pub fn finish(self) -> Result<()> {
        super::registration::remove_if_exists(&self.path)
    }
}

fn failpoint(operation: &str, step: &str) {
    if std::env::var("TETHER_FAILPOINT").is_ok_and(|f| f == format!("{operation}:{step}")) {
        eprintln!("failpoint {operation}:{step}: aborting");
        std::process::abort();
    }
}
