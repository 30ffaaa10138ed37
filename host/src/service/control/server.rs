//! The service's side: accept connections, read one request, run it on a
//! blocking thread (the library is synchronous), stream the replies.

use super::{Caller, MAX_REQUEST_BYTES, MAX_UNPRIVILEGED_REQUEST_BYTES, Reply, Request};
use crate::exit::Exit;
use anyhow::Result;
use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Runs one request; `progress` reports steps as they happen.
pub type Handler = Arc<dyn Fn(Request, &dyn Fn(&str)) -> Result<Value> + Send + Sync>;

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(stream: S, caller: Caller, handler: Handler) {
    let (read, mut write) = tokio::io::split(stream);
    let mut line = String::new();
    let cap = if caller.admin {
        MAX_REQUEST_BYTES
    } else {
        MAX_UNPRIVILEGED_REQUEST_BYTES
    };
    let mut reader = BufReader::new(read.take(cap));
    let replies = match reader.read_line(&mut line).await {
        Ok(0) => return,
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Ok(request) if request.needs_admin() && !caller.admin => {
                tracing::warn!(
                    "refused a `{}` request from {}: not root",
                    request.name(),
                    caller.who
                );
                refusal(
                    Exit::NotAdmin,
                    format!(
                        "`{}` changes the machine and only root may ask it of the service (administrators on Windows); members of the `tether` group may read its status only. Run the command as root (sudo)",
                        request.name()
                    ),
                )
            }
            Ok(request) => run(request, handler),
            Err(e) => refusal(
                Exit::Usage,
                format!(
                    "the service did not understand the request: {e}; is the CLI the same version as the service?"
                ),
            ),
        },
        Err(e) => {
            tracing::debug!("a control connection failed: {e}");
            return;
        }
    };
    let mut replies = replies;
    while let Some(reply) = replies.recv().await {
        let Ok(mut bytes) = serde_json::to_vec(&reply) else {
            break;
        };
        bytes.push(b'\n');
        if write.write_all(&bytes).await.is_err() {
            // The CLI went away; the operation runs to its end regardless.
            break;
        }
    }
    let _ = write.shutdown().await;
}

fn refusal(exit: Exit, message: String) -> tokio::sync::mpsc::UnboundedReceiver<Reply> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = tx.send(Reply::Failed {
        exit_code: exit as u8,
        message,
    });
    rx
}

fn run(request: Request, handler: Handler) -> tokio::sync::mpsc::UnboundedReceiver<Reply> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_blocking(move || {
        let progress = |text: &str| {
            let _ = tx.send(Reply::Progress(text.to_string()));
        };
        let reply = match handler(request, &progress) {
            Ok(value) => Reply::Done(value),
            Err(error) => Reply::Failed {
                exit_code: Exit::of(&error) as u8,
                message: format!("{error:#}"),
            },
        };
        let _ = tx.send(reply);
    });
    rx
}

pub use imp::{Listener, bind, serve};

#[cfg(unix)]
mod imp {
    use super::{Handler, handle};
    use crate::service::control::Caller;
    use crate::state::StateRoot;
    use anyhow::{Context, Result, bail};
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    pub struct Listener {
        listener: tokio::net::UnixListener,
        path: PathBuf,
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Binds the socket: directory 0750 and socket 0660, owned by root and
    /// the `tether` group when that group exists. Must be called inside
    /// the tokio runtime.
    pub fn bind(state: &StateRoot) -> Result<Listener> {
        let path = super::super::socket_path(state);
        let dir = path.parent().context("the socket path has no directory")?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            bail!(
                "a Tether service is already running for {} (its control socket {} answers); stop it first",
                state.path().display(),
                path.display()
            );
        }
        // A socket left by a service that died.
        let _ = std::fs::remove_file(&path);
        let group = crate::platform::tether_group();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
        let listener = tokio::net::UnixListener::bind(&path)
            .with_context(|| format!("could not listen on {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
        if let Some(gid) = group {
            std::os::unix::fs::chown(dir, None, Some(gid))?;
            std::os::unix::fs::chown(&path, None, Some(gid))?;
        }
        Ok(Listener { listener, path })
    }

    /// The peer's credentials as the kernel recorded them at connect
    /// (`SO_PEERCRED`): uid 0 is root, anyone else may only read.
    fn caller_of(stream: &tokio::net::UnixStream) -> Caller {
        match stream.peer_cred() {
            Ok(cred) => Caller {
                admin: cred.uid() == 0,
                who: match cred.pid() {
                    Some(pid) => format!("uid {} (pid {pid})", cred.uid()),
                    None => format!("uid {}", cred.uid()),
                },
            },
            // Unknown is not root.
            Err(e) => Caller {
                admin: false,
                who: format!("an unknown peer ({e})"),
            },
        }
    }

    pub async fn serve(listener: Listener, handler: Handler) {
        loop {
            match listener.listener.accept().await {
                Ok((stream, _)) => {
                    let caller = caller_of(&stream);
                    tokio::spawn(handle(stream, caller, handler.clone()));
                }
                Err(e) => {
                    tracing::warn!("the control socket could not accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    }
}

#[cfg(windows)]
mod imp {
    use super::{Handler, handle};
    use crate::platform::SecurityDescriptor;
    use crate::service::control::Caller;
    use crate::state::StateRoot;
    use anyhow::{Context, Result};
    use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
    use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;

    pub struct Listener {
        name: String,
        descriptor: SecurityDescriptor,
        first: NamedPipeServer,
    }

    /// SYSTEM and Administrators only; nobody else may even open it.
    const PIPE_SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";

    fn create(
        name: &str,
        descriptor: &SecurityDescriptor,
        first: bool,
    ) -> std::io::Result<NamedPipeServer> {
        let mut attributes = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: descriptor.as_ptr(),
            bInheritHandle: 0,
        };
        // SAFETY: `attributes` and the descriptor it points to are alive
        // for the call, which copies what it needs.
        unsafe {
            ServerOptions::new()
                .first_pipe_instance(first)
                .reject_remote_clients(true)
                .create_with_security_attributes_raw(name, (&raw mut attributes).cast())
        }
    }

    /// Creates the pipe, for administrators and SYSTEM only, remote
    /// clients rejected.
    pub fn bind(state: &StateRoot) -> Result<Listener> {
        let name = super::super::pipe_name(state);
        let descriptor = SecurityDescriptor::from_sddl(PIPE_SDDL)?;
        let first = create(&name, &descriptor, true).with_context(|| {
            format!("could not create the pipe {name} (is a service already running?)")
        })?;
        Ok(Listener {
            name,
            descriptor,
            first,
        })
    }

    /// The client's token, asked by impersonating it for a moment: the
    /// pipe's DACL already admits only SYSTEM and Administrators, and this
    /// decides again where the request is run.
    fn caller_of(pipe: &NamedPipeServer) -> Caller {
        use std::os::windows::io::AsRawHandle;
        match crate::platform::pipe_client_is_admin(pipe.as_raw_handle()) {
            Ok(admin) => Caller {
                admin,
                who: "the pipe's client".into(),
            },
            Err(e) => Caller {
                admin: false,
                who: format!("a pipe client whose token could not be read ({e})"),
            },
        }
    }

    pub async fn serve(listener: Listener, handler: Handler) {
        let mut server = listener.first;
        loop {
            if let Err(e) = server.connect().await {
                tracing::warn!("the control pipe could not accept: {e}");
            }
            let next = match create(&listener.name, &listener.descriptor, false) {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!("the control pipe could not be renewed: {e}");
                    return;
                }
            };
            let connected = std::mem::replace(&mut server, next);
            let caller = caller_of(&connected);
            tokio::spawn(handle(connected, caller, handler.clone()));
        }
    }
}
