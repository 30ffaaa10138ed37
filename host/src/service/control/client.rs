//! The CLI's side: find the running service and ask it something.

use super::{Reply, Request};
use crate::exit::{Exit, coded};
use crate::state::StateRoot;
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};

/// Why the service could not be asked.
#[derive(Debug)]
pub enum Unreachable {
    /// No service runs for this state root.
    NotRunning,
    /// One runs, but this user may not talk to it.
    Denied,
    /// Something answers that is not the service (Windows: a pipe of the
    /// service's name held by an unprivileged process).
    Impostor,
}

/// A connection to the running service.
pub struct Connection {
    stream: Box<dyn ReadWrite>,
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

impl Connection {
    /// Connects to the service of `state`, if it runs.
    pub fn open(state: &StateRoot) -> Result<Connection, Unreachable> {
        imp::open(state).map(|stream| Connection { stream })
    }

    /// Sends `request`; `progress` sees each step; returns the result. A
    /// failure comes back with the exit code the service chose.
    pub fn call(mut self, request: &Request, progress: &mut dyn FnMut(&str)) -> Result<Value> {
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        self.stream
            .write_all(&line)
            .context("could not send the request to the service")?;
        self.stream.flush()?;
        // Answers are small but for an invoke's output and logs.
        let reader = BufReader::new(self.stream.take(64 << 20));
        for line in reader.lines() {
            let line = line.context("the service's answer was cut short")?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Reply>(&line)
                .context("the service's answer could not be read")?
            {
                Reply::Progress(text) => progress(&text),
                Reply::Done(value) => return Ok(value),
                Reply::Failed { exit_code, message } => {
                    return Err(coded(Exit::from_code(exit_code), message));
                }
            }
        }
        anyhow::bail!("the service closed the connection without an answer (did it stop?)")
    }
}

/// Asks the service if it runs; `Ok(None)` when it does not.
pub fn ask(
    state: &StateRoot,
    request: &Request,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<Value>> {
    match Connection::open(state) {
        Ok(connection) => connection.call(request, progress).map(Some),
        Err(Unreachable::NotRunning) => Ok(None),
        Err(Unreachable::Denied) => Err(coded(
            Exit::NotAdmin,
            "the running service's control socket is open to root and the `tether` group only; run this as root or as a member of that group",
        )),
        Err(Unreachable::Impostor) => Err(coded(
            Exit::Refused,
            "the service's control pipe is held by a process that is not the Tether service; nothing was sent. Find and stop that process, then start the service",
        )),
    }
}

#[cfg(unix)]
mod imp {
    use super::{ReadWrite, Unreachable};
    use crate::state::StateRoot;
    use std::io::ErrorKind;
    use std::os::unix::net::UnixStream;

    pub fn open(state: &StateRoot) -> Result<Box<dyn ReadWrite>, Unreachable> {
        match UnixStream::connect(super::super::socket_path(state)) {
            Ok(stream) => Ok(Box::new(stream)),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(Unreachable::Denied),
            // Absent, or left behind by a service that died: not running.
            Err(_) => Err(Unreachable::NotRunning),
        }
    }
}

#[cfg(windows)]
mod imp {
    use super::{ReadWrite, Unreachable};
    use crate::state::StateRoot;
    use std::io::ErrorKind;
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Storage::FileSystem::SECURITY_IDENTIFICATION;

    /// Opens the service's pipe. The server may identify the CLI but never
    /// act as it (`SECURITY_IDENTIFICATION`), and the CLI sends nothing
    /// (a token, say) until it knows that the pipe's server runs as SYSTEM
    /// or an administrator: a pipe of that name created first by someone
    /// else is not the service.
    pub fn open(state: &StateRoot) -> Result<Box<dyn ReadWrite>, Unreachable> {
        let name = super::super::pipe_name(state);
        let pipe = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .security_qos_flags(SECURITY_IDENTIFICATION)
            .open(&name)
        {
            Ok(pipe) => pipe,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => return Err(Unreachable::Denied),
            Err(_) => return Err(Unreachable::NotRunning),
        };
        match crate::platform::pipe_server_is_admin(&pipe) {
            Ok(true) => Ok(Box::new(pipe)),
            Ok(false) => {
                tracing::error!(
                    "the pipe {name} is served by a process that is not the Tether service (not SYSTEM or an administrator); nothing was sent"
                );
                Err(Unreachable::Impostor)
            }
            Err(e) => {
                tracing::error!(
                    "could not tell who serves the pipe {name} ({e}); nothing was sent"
                );
                Err(Unreachable::Impostor)
            }
        }
    }
}
