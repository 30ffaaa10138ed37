//! The proxy for the machine's other services, as azcmagent's proxy script
//! sets it: `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (and their lowercase
//! forms) in the service manager's default environment, a systemd manager
//! drop-in on Linux, the machine-wide environment on Windows. Distinct
//! from the `proxy.url` setting, which only Tether itself uses.

#[cfg(not(windows))]
use super::unit::UNIT_DIR;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What the machine's services are given, as `tether show` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyEnv {
    /// Empty when none is set.
    pub url: String,
    pub bypass: Vec<String>,
    /// The drop-in that holds it (Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Checks a proxy URL for the machine's services: `http://` or `https://`,
/// a host, at most a port. Credentials are refused: the environment of
/// every service on the machine is readable by its users and in its logs.
pub fn check_url(text: &str) -> Result<String> {
    let url = url::Url::parse(text).map_err(|e| {
        anyhow::anyhow!("`{text}` is not a URL ({e}); give one such as http://proxy.example:3128")
    })?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "the proxy must be an http:// or https:// URL, not {}://",
        url.scheme()
    );
    anyhow::ensure!(
        url.username().is_empty() && url.password().is_none(),
        "a proxy URL for the machine's services may not carry a user name or password: every service's environment is readable by its users; use a proxy that authenticates the machine another way"
    );
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .with_context(|| format!("`{text}` names no host"))?;
    anyhow::ensure!(
        url.path() == "/" && url.query().is_none() && url.fragment().is_none(),
        "a proxy URL is scheme://host[:port], without a path"
    );
    Ok(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

fn check_bypass(entries: &[String]) -> Result<Vec<String>> {
    entries
        .iter()
        .flat_map(|e| e.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            anyhow::ensure!(
                e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_*:/[]".contains(c)),
                "`{e}` is not a host, domain or address range for NO_PROXY"
            );
            Ok(e.to_string())
        })
        .collect()
}

/// The drop-in beside the unit directory's `system.conf.d`.
pub fn drop_in_path(unit_dir: &Path) -> PathBuf {
    unit_dir
        .parent()
        .unwrap_or(unit_dir)
        .join("system.conf.d")
        .join("tether-proxy.conf")
}

fn variables(url: &str, bypass: &[String]) -> Vec<(&'static str, String)> {
    let no_proxy = bypass.join(",");
    let mut vars = vec![
        ("HTTPS_PROXY", url.to_string()),
        ("https_proxy", url.to_string()),
        ("HTTP_PROXY", url.to_string()),
        ("http_proxy", url.to_string()),
    ];
    if !no_proxy.is_empty() {
        vars.push(("NO_PROXY", no_proxy.clone()));
        vars.push(("no_proxy", no_proxy));
    }
    vars
}

/// The drop-in's text.
#[cfg(not(windows))]
fn drop_in(url: &str, bypass: &[String]) -> String {
    let assignments: Vec<String> = variables(url, bypass)
        .into_iter()
        .map(|(name, value)| format!("\"{name}={value}\""))
        .collect();
    format!(
        "# Written by `tether service proxy-env set`; `tether service proxy-env clear` removes it.\n[Manager]\nDefaultEnvironment={}\n",
        assignments.join(" ")
    )
}

/// Reads what the drop-in under `unit_dir` sets, if it is there.
pub fn current(unit_dir: &Path) -> ProxyEnv {
    let path = drop_in_path(unit_dir);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return ProxyEnv::default();
    };
    let value = |name: &str| {
        text.split('"')
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    ProxyEnv {
        url: value("HTTPS_PROXY").unwrap_or_default(),
        bypass: value("NO_PROXY")
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        path: Some(path),
        notes: Vec::new(),
    }
}

#[cfg(not(windows))]
/// Whether systemd reads drop-ins from `unit_dir`'s `system.conf.d`.
fn managed(unit_dir: &Path) -> bool {
    super::unit::systemd_running() && unit_dir == Path::new(UNIT_DIR)
}

#[cfg(not(windows))]
fn reload(unit_dir: &Path, notes: &mut Vec<String>) -> Result<()> {
    if managed(unit_dir) {
        let status = std::process::Command::new("systemctl")
            .arg("daemon-reload")
            .status()
            .context("could not run systemctl")?;
        anyhow::ensure!(status.success(), "systemctl daemon-reload failed");
        notes.push("services started from now on have it; restart running ones (`systemctl restart NAME`) to give it to them".into());
    } else {
        notes.push(format!(
            "systemd is not managing this machine (or the drop-in went under {} rather than {UNIT_DIR}): it takes effect when systemd next starts",
            unit_dir.display()
        ));
    }
    Ok(())
}

/// Sets the proxy for the machine's services.
pub fn set(unit_dir: &Path, url: &str, bypass: &[String]) -> Result<ProxyEnv> {
    let url = check_url(url)?;
    let bypass = check_bypass(bypass)?;
    let mut notes = Vec::new();
    let path = write(unit_dir, &url, &bypass, &mut notes)?;
    Ok(ProxyEnv {
        url,
        bypass,
        path,
        notes,
    })
}

/// Removes it.
pub fn clear(unit_dir: &Path) -> Result<ProxyEnv> {
    let mut notes = Vec::new();
    remove(unit_dir, &mut notes)?;
    Ok(ProxyEnv {
        notes,
        ..Default::default()
    })
}

#[cfg(not(windows))]
fn write(
    unit_dir: &Path,
    url: &str,
    bypass: &[String],
    notes: &mut Vec<String>,
) -> Result<Option<PathBuf>> {
    let path = drop_in_path(unit_dir);
    crate::state::write_atomic(
        &path,
        drop_in(url, bypass).as_bytes(),
        crate::state::Access::Public,
    )?;
    reload(unit_dir, notes)?;
    Ok(Some(path))
}

#[cfg(not(windows))]
fn remove(unit_dir: &Path, notes: &mut Vec<String>) -> Result<()> {
    let path = drop_in_path(unit_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => reload(unit_dir, notes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.push("no proxy was set for the machine's services".into());
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("could not remove {}", path.display())),
    }
}

/// Windows reads environment names without regard to case: one of each.
#[cfg(windows)]
const WINDOWS_NAMES: [&str; 3] = ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"];

#[cfg(windows)]
fn write(
    _unit_dir: &Path,
    url: &str,
    bypass: &[String],
    notes: &mut Vec<String>,
) -> Result<Option<PathBuf>> {
    for (name, value) in variables(url, bypass) {
        if WINDOWS_NAMES.contains(&name) {
            crate::platform::set_machine_environment(name, Some(&value))
                .with_context(|| format!("could not set {name} for the machine"))?;
        }
    }
    notes.push(
        "services started from now on have it, once the Service Control Manager restarts".into(),
    );
    Ok(None)
}

#[cfg(windows)]
fn remove(_unit_dir: &Path, _notes: &mut Vec<String>) -> Result<()> {
    for name in WINDOWS_NAMES {
        crate::platform::set_machine_environment(name, None)
            .with_context(|| format!("could not clear {name} for the machine"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_credentials_refused_without_echoing_them() {
        assert_eq!(
            check_url("http://proxy.example:3128").ok().as_deref(),
            Some("http://proxy.example:3128")
        );
        assert_eq!(
            check_url("https://proxy.example/").ok().as_deref(),
            Some("https://proxy.example")
        );
        for bad in ["ftp://p:21", "proxy:3128", "http://p:3128/path", "http://"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        let refused = check_url("http://ops:s3cret@p:3128").expect_err("credentials");
        assert!(!format!("{refused:#}").contains("s3cret"), "{refused:#}");
    }

    #[test]
    fn the_drop_in_sets_every_form_and_reads_back() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let units = dir.path().join("system");
        let set = set(
            &units,
            "http://127.0.0.1:3128",
            &["localhost,10.0.0.0/8".into()],
        )?;
        let text = std::fs::read_to_string(drop_in_path(&units))?;
        for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
            assert!(
                text.contains(&format!("\"{name}=http://127.0.0.1:3128\"")),
                "{text}"
            );
        }
        assert!(text.contains("\"NO_PROXY=localhost,10.0.0.0/8\""), "{text}");
        let read = current(&units);
        assert_eq!((read.url, read.bypass), (set.url, set.bypass));
        clear(&units)?;
        assert_eq!(current(&units), ProxyEnv::default());
        Ok(())
    }
}
