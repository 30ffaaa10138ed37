//! Registering the service with the operating system: a hardened systemd
//! unit on Linux, the Service Control Manager on Windows.

use crate::state::StateRoot;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

pub const SERVICE_NAME: &str = "tether";

/// Who writes a unit or drop-in, as its first line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `tether service install`.
    Command,
    /// The .deb or .rpm package.
    Package,
}

impl Origin {
    fn header(self) -> &'static str {
        match self {
            Origin::Command => {
                "# Written by `tether service install`; `tether service uninstall` removes it."
            }
            Origin::Package => {
                "# Installed by the tether package, which replaces it on upgrade; put changes in a drop-in."
            }
        }
    }
}

/// Where the unit goes unless told otherwise.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// The unit for `exe`, keeping its state in `state`.
///
/// Hardening: everything systemd offers that Tether does not need is off.
/// Two things stay allowed on purpose: `MemoryDenyWriteExecute` is not
/// set, because wasmtime compiles extensions to machine code at run time;
/// and network families, because heartbeats and the metadata service need
/// them. `ProtectSystem=strict` makes the whole file system read-only but
/// the state root.
pub fn systemd_unit(exe: &Path, state: &StateRoot, origin: Origin) -> String {
    let tokens = state.identity_tokens_dir();
    let tokens = tokens.display();
    let state = state.path().display();
    let exe = exe.display();
    let header = origin.header();
    format!(
        "{header}
[Unit]
Description=Tether agent: connects this machine to its control plane and hosts its extensions
Documentation=man:tether(1)
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={exe} service run
ExecReload=/bin/kill -HUP $MAINPID
Environment=TETHER_HOME={state}
Restart=on-failure
RestartSec=5s
WatchdogSec=120s
TimeoutStopSec=30s
KillMode=mixed
UMask=0027
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={state} -{tokens}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
LockPersonality=yes
SystemCallArchitectures=native
CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE

[Install]
WantedBy=multi-user.target
"
    )
}

/// `IDENTITY_ENDPOINT` and `IMDS_ENDPOINT`, by which the Azure SDKs'
/// managed-identity credentials find Azure Arc, as azcmagent sets them
/// for the machine: a systemd manager drop-in on Linux, the machine-wide
/// environment on Windows.
pub fn identity_environment() -> [(&'static str, String); 2] {
    let base = format!("http://localhost:{}", super::metadata::DEFAULT_PORT);
    [
        (
            "IDENTITY_ENDPOINT",
            format!("{base}/metadata/identity/oauth2/token"),
        ),
        ("IMDS_ENDPOINT", base),
    ]
}

/// The service manager's drop-in that gives every service on the machine
/// [`identity_environment`].
pub fn manager_environment(origin: Origin) -> String {
    let [(identity_name, identity), (imds_name, imds)] = identity_environment();
    let header = origin.header();
    format!(
        "{header}
[Manager]
DefaultEnvironment=\"{identity_name}={identity}\" \"{imds_name}={imds}\"
"
    )
}

/// Where the drop-in goes: `system.conf.d` beside the unit directory
/// (`/etc/systemd/system.conf.d` for the default one).
pub fn manager_environment_path(dir: &Path) -> PathBuf {
    dir.parent()
        .unwrap_or(dir)
        .join("system.conf.d")
        .join(format!("{SERVICE_NAME}-identity.conf"))
}

/// What `service install`, `uninstall` and `status` report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub manager: &'static str,
    pub unit: Option<PathBuf>,
    pub installed: bool,
    /// The service manager's word (`active`, `inactive`, …); `None` where
    /// it is not running (a container, a build machine).
    pub state: Option<String>,
    pub notes: Vec<String>,
}

/// Whether systemd manages this machine (sd_booted's test).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn systemctl(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("systemctl")
        .args(args)
        .output()
        .context("could not run systemctl")?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() && args.first() != Some(&"is-active") {
        anyhow::bail!(
            "systemctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(text)
}

/// Whether systemd is to be told about units in `dir`: it runs, and `dir`
/// is where it looks (a unit written elsewhere is only written).
fn managed(dir: &Path) -> bool {
    systemd_running() && dir == Path::new(UNIT_DIR)
}

pub fn unit_path(dir: &Path) -> PathBuf {
    dir.join(format!("{SERVICE_NAME}.service"))
}

/// Writes the unit and, where systemd runs, enables and starts it.
pub fn install(dir: &Path, exe: &Path, state: &StateRoot, start: bool) -> Result<Registration> {
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    std::fs::create_dir_all(state.path())?;
    let path = unit_path(dir);
    crate::state::write_atomic(
        &path,
        systemd_unit(exe, state, Origin::Command).as_bytes(),
        crate::state::Access::Public,
    )?;
    crate::state::write_atomic(
        &manager_environment_path(dir),
        manager_environment(Origin::Command).as_bytes(),
        crate::state::Access::Public,
    )?;
    // ProtectSystem=strict keeps the service from creating it later.
    let tokens = state.identity_tokens_dir();
    std::fs::create_dir_all(&tokens)
        .with_context(|| format!("could not create {}", tokens.display()))?;
    let mut notes = Vec::new();
    let mut service_state = None;
    if managed(dir) {
        systemctl(&["daemon-reload"])?;
        if start {
            systemctl(&["enable", "--now", SERVICE_NAME])?;
        } else {
            systemctl(&["enable", SERVICE_NAME])?;
        }
        service_state = Some(systemctl(&["is-active", SERVICE_NAME])?);
    } else {
        notes.push(format!(
            "systemd is not managing this machine (or the unit went to {} rather than {UNIT_DIR}): the unit is written; enable it with `systemctl enable --now {SERVICE_NAME}` where systemd runs",
            dir.display()
        ));
    }
    Ok(Registration {
        manager: "systemd",
        unit: Some(path),
        installed: true,
        state: service_state,
        notes,
    })
}

/// Stops and disables the service where systemd runs, and removes the unit.
pub fn uninstall(dir: &Path) -> Result<Registration> {
    let path = unit_path(dir);
    let mut notes = Vec::new();
    if managed(dir) && path.exists() {
        systemctl(&["disable", "--now", SERVICE_NAME])?;
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.push(format!("{} was not installed", path.display()));
        }
        Err(e) => return Err(e).with_context(|| format!("could not remove {}", path.display())),
    }
    let environment = manager_environment_path(dir);
    match std::fs::remove_file(&environment) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("could not remove {}", environment.display()));
        }
    }
    if managed(dir) {
        systemctl(&["daemon-reload"])?;
    }
    Ok(Registration {
        manager: "systemd",
        unit: Some(path),
        installed: false,
        state: None,
        notes,
    })
}

/// Whether the unit is installed, and what systemd says of it.
pub fn status(dir: &Path) -> Registration {
    let path = unit_path(dir);
    let state = managed(dir)
        .then(|| systemctl(&["is-active", SERVICE_NAME]).ok())
        .flatten();
    Registration {
        manager: "systemd",
        installed: path.exists(),
        unit: Some(path),
        state,
        notes: Vec::new(),
    }
}
