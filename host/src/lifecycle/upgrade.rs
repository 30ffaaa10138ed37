//! `tether upgrade`: asks the platform's package manager to move Tether to
//! a version (the newest it knows, or the one given), as `azcmagent
//! upgrade` does. The package's own scripts do the rest: they check the
//! state, keep the registration and the extensions, and restart the service
//! once. Nothing is downloaded here: the package manager's repositories (or
//! the .msi given) are where the version comes from.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The package managers Tether's packages are installed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Apt,
    Dnf,
    Yum,
    Zypper,
    Msiexec,
}

/// What an upgrade did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Upgraded {
    pub package_manager: PackageManager,
    /// The command run, as an operator would type it.
    pub command: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub changed: bool,
}

fn exists(path: &str) -> bool {
    Path::new(path).exists()
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Which package manager installed this Tether.
pub fn detect() -> Result<PackageManager> {
    if cfg!(windows) {
        return Ok(PackageManager::Msiexec);
    }
    if exists("/usr/bin/dpkg-query") && succeeds("dpkg-query", &["-W", "tether"]) {
        return Ok(PackageManager::Apt);
    }
    if exists("/usr/bin/rpm") && succeeds("rpm", &["-q", "tether"]) {
        for (path, manager) in [
            ("/usr/bin/zypper", PackageManager::Zypper),
            ("/usr/bin/dnf", PackageManager::Dnf),
            ("/usr/bin/yum", PackageManager::Yum),
        ] {
            if exists(path) {
                return Ok(manager);
            }
        }
    }
    anyhow::bail!(
        "this Tether was not installed from a package (dpkg and rpm do not know it), so there is nothing to upgrade it with: install the .deb or .rpm (README, \"Installing the agent\"), or replace the binary yourself"
    )
}

/// The installed package's version.
pub fn installed_version(manager: PackageManager) -> Option<String> {
    let out = match manager {
        PackageManager::Apt => Command::new("dpkg-query")
            .args(["-W", "-f", "${Version}", "tether"])
            .output(),
        PackageManager::Dnf | PackageManager::Yum | PackageManager::Zypper => Command::new("rpm")
            .args(["-q", "--qf", "%{VERSION}-%{RELEASE}", "tether"])
            .output(),
        PackageManager::Msiexec => return None,
    }
    .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A version as package managers write it: no spaces, no shell.
fn check_version(version: &str) -> Result<()> {
    anyhow::ensure!(
        !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~-:".contains(c)),
        "`{version}` is not a package version (for example 0.1.0-1)"
    );
    Ok(())
}

/// The command that moves the package to `version` (the newest without).
pub fn command(
    manager: PackageManager,
    version: Option<&str>,
    msi: Option<&Path>,
) -> Result<Vec<String>> {
    if let Some(version) = version {
        check_version(version)?;
    }
    let words: Vec<String> = match (manager, version) {
        (PackageManager::Apt, Some(v)) => vec!["apt-get", "install", "-y", "-q"]
            .into_iter()
            .map(String::from)
            .chain([format!("tether={v}")])
            .collect(),
        (PackageManager::Apt, None) => {
            ["apt-get", "install", "-y", "-q", "--only-upgrade", "tether"]
                .map(String::from)
                .to_vec()
        }
        (PackageManager::Dnf | PackageManager::Yum, v) => {
            let tool = if manager == PackageManager::Dnf {
                "dnf"
            } else {
                "yum"
            };
            match v {
                Some(v) => vec![
                    tool.into(),
                    "install".into(),
                    "-y".into(),
                    format!("tether-{v}"),
                ],
                None => vec![tool.into(), "upgrade".into(), "-y".into(), "tether".into()],
            }
        }
        (PackageManager::Zypper, Some(v)) => vec![
            "zypper".into(),
            "--non-interactive".into(),
            "install".into(),
            format!("tether={v}"),
        ],
        (PackageManager::Zypper, None) => ["zypper", "--non-interactive", "update", "tether"]
            .map(String::from)
            .to_vec(),
        (PackageManager::Msiexec, _) => {
            let msi = msi.context(
                "on Windows, give the Tether .msi to upgrade to: tether upgrade --msi PATH",
            )?;
            vec![
                "msiexec".into(),
                "/i".into(),
                msi.display().to_string(),
                "/qn".into(),
                "/norestart".into(),
            ]
        }
    };
    Ok(words)
}

/// Runs the upgrade; the package manager's own words are in the error
/// when it refuses (a downgrade, newer state, an unknown version).
pub fn upgrade(version: Option<&str>, msi: Option<PathBuf>) -> Result<Upgraded> {
    let manager = detect()?;
    let words = command(manager, version, msi.as_deref())?;
    let from = installed_version(manager);
    let (program, args) = words.split_first().context("no package manager command")?;
    let out = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .with_context(|| format!("could not run {program}"))?;
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let tail: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(8)..].join("\n  ");
        anyhow::bail!(
            "`{}` failed; Tether is unchanged{}. It said:\n  {tail}",
            words.join(" "),
            from.as_deref()
                .map(|v| format!(" ({v})"))
                .unwrap_or_default()
        );
    }
    let to = installed_version(manager);
    Ok(Upgraded {
        package_manager: manager,
        command: words.join(" "),
        changed: from != to,
        from,
        to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_manager_is_asked_in_its_own_grammar() -> Result<()> {
        let line = |m, v| command(m, v, None).map(|w| w.join(" "));
        assert_eq!(
            line(PackageManager::Apt, Some("0.2.0-1"))?,
            "apt-get install -y -q tether=0.2.0-1"
        );
        assert_eq!(
            line(PackageManager::Apt, None)?,
            "apt-get install -y -q --only-upgrade tether"
        );
        assert_eq!(
            line(PackageManager::Dnf, Some("0.2.0-1"))?,
            "dnf install -y tether-0.2.0-1"
        );
        assert_eq!(line(PackageManager::Yum, None)?, "yum upgrade -y tether");
        assert_eq!(
            line(PackageManager::Zypper, Some("0.2.0"))?,
            "zypper --non-interactive install tether=0.2.0"
        );
        assert!(line(PackageManager::Apt, Some("1; rm -rf /")).is_err());
        assert!(line(PackageManager::Msiexec, None).is_err());
        Ok(())
    }
}
