//! `tether reset`: the same unregistration as disconnect, run as a
//! background operation (Azure Local's Start-ArcBootstrapReset), leaving
//! the machine ready to connect again. Its progress is a status file that
//! `tether reset status` reads.

use super::disconnect::{DisconnectRequest, disconnect};
use super::registration::remove_if_exists;
use super::{LifecycleError, Registration};
use crate::auth::SignIn;
use crate::config::Settings;
use crate::extensions::manager::Manager;
use crate::state::{Access, StateRoot, record, write_atomic};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetStatus {
    pub id: String,
    /// `Running`, `Succeeded` or `Failed`.
    pub state: String,
    pub step: String,
    pub percent_complete: u8,
    pub errors: Vec<String>,
    pub started: u64,
    pub finished: Option<u64>,
}

impl ResetStatus {
    pub fn is_done(&self) -> bool {
        self.state != "Running"
    }
}

fn dir(state: &StateRoot) -> PathBuf {
    state.path().join("operations")
}

fn status_path(state: &StateRoot) -> PathBuf {
    dir(state).join("reset.json")
}

/// The access token handed to the background process (root-only, read once).
fn token_path(state: &StateRoot, id: &str) -> PathBuf {
    dir(state).join(format!("reset-{id}.token"))
}

pub fn status(state: &StateRoot) -> Result<Option<ResetStatus>> {
    record::read(
        &status_path(state),
        "remove it; `tether show` tells whether the machine is still connected",
    )
}

fn save(state: &StateRoot, status: &ResetStatus) -> Result<()> {
    record::write(&status_path(state), status, Access::Public)
}

/// Starts a reset in a background process with an ARM token (`None`:
/// local only).
pub fn start(state: &StateRoot, token: Option<String>, exe: &Path) -> Result<ResetStatus> {
    let status = prepare(state, token)?;
    std::process::Command::new(exe)
        .args(["reset", "--run-operation", &status.id])
        .env(crate::state::HOME_ENV, state.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("could not start the background reset")?;
    Ok(status)
}

/// Records a new reset operation (and its token) for [`run`] to carry out.
pub fn prepare(state: &StateRoot, token: Option<String>) -> Result<ResetStatus> {
    if Registration::load(state)?.is_none()
        && super::journal::pending(state, "disconnect")?.is_none()
    {
        return Err(LifecycleError::NotConnected.into());
    }
    if let Some(current) = status(state)?
        && !current.is_done()
    {
        anyhow::bail!(
            "a reset ({}) is already running; follow it with `tether reset status`",
            current.id
        );
    }
    let id = crate::util::guid();
    let status = ResetStatus {
        id: id.clone(),
        state: "Running".into(),
        step: "starting".into(),
        percent_complete: 0,
        errors: Vec::new(),
        started: crate::util::now(),
        finished: None,
    };
    save(state, &status)?;
    if let Some(token) = token {
        write_atomic(&token_path(state, &id), token.as_bytes(), Access::Private)?;
    }
    Ok(status)
}

/// The background process's work.
/// `manager` is the state root's: in the service, the one hosting its
/// extensions.
pub fn run(manager: &mut Manager, settings: &Settings, id: &str) -> Result<()> {
    let state = &manager.state().clone();
    let mut status = status(state)?
        .filter(|s| s.id == id)
        .with_context(|| format!("no reset operation {id}"))?;
    let token_file = token_path(state, id);
    let token = std::fs::read_to_string(&token_file).ok();
    remove_if_exists(&token_file)?;
    let request = DisconnectRequest {
        sign_in: token.clone().map(SignIn::AccessToken),
        force_local_only: token.is_none(),
    };
    let mut progress = |text: &str| {
        let (step, percent) = if text.starts_with("signing in") {
            ("signing in", 10)
        } else if text.starts_with("deleting") {
            ("deleting the machine resource", 40)
        } else if text.starts_with("removing the local") {
            ("removing the local registration", 80)
        } else {
            ("unregistering", 20)
        };
        status.step = step.into();
        status.percent_complete = percent;
        let _ = save(state, &status);
    };
    let result = disconnect(manager, settings, request, &mut progress);
    let mut status = self::status(state)?.unwrap_or(status);
    status.finished = Some(crate::util::now());
    match result {
        Ok(_) => {
            status.state = "Succeeded".into();
            status.step = "done: ready to connect again".into();
            status.percent_complete = 100;
        }
        Err(e) => {
            status.state = "Failed".into();
            status.errors.push(format!("{e:#}"));
        }
    }
    save(state, &status)
}

/// Follows the reset `started` until it ends; `progress` sees each new
/// state (percent and step) once.
pub fn wait(
    state: &StateRoot,
    started: &ResetStatus,
    progress: &mut dyn FnMut(&ResetStatus),
) -> Result<ResetStatus> {
    let mut last: Option<(u8, String)> = None;
    loop {
        let status = status(state)?.unwrap_or_else(|| started.clone());
        let seen = (status.percent_complete, status.step.clone());
        if last.as_ref() != Some(&seen) {
            progress(&status);
            last = Some(seen);
        }
        if status.is_done() {
            return Ok(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
