//! What every package holds beside the binary, generated from the one
//! place each is defined: completions and man pages from the CLI's clap
//! definition, the unit and the identity drop-in from `tether::service::unit`
//! (the same text `tether service install` writes), the maintainer scripts
//! from `packaging/debian/` with this build's version and state schema.

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::{Path, PathBuf};
use tether::service::unit::{self, Origin};
use tether::state::StateRoot;

/// Where the packaged binary and state root live.
pub const BINARY: &str = "/usr/bin/tether";
pub const STATE_ROOT: &str = "/var/opt/tether";

/// Renders every asset for the package `version` (with its revision, as
/// the maintainer scripts compare it); returns their directory.
pub fn render(version: &str) -> Result<PathBuf> {
    let out = super::paths::assets();
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .with_context(|| format!("could not clear {}", out.display()))?;
    }
    completions(&out.join("completions"))?;
    man_pages(&out.join("man"))?;
    systemd(&out.join("systemd"))?;
    scripts(&out.join("debian"), "debian", &DEB_SCRIPTS, version)?;
    scripts(&out.join("rpm"), "rpm", &RPM_SCRIPTS, version)?;
    Ok(out)
}

fn completions(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell] {
        let mut cmd = tether::cli::Cli::command();
        clap_complete::generate_to(shell, &mut cmd, "tether", dir)
            .with_context(|| format!("could not write the {shell} completions"))?;
    }
    Ok(())
}

/// `tether.1` and one page per subcommand (`tether-connect.1`, …),
/// gzipped as Debian and Fedora ship them.
fn man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(tether::cli::Cli::command(), dir)
        .context("could not write the man pages")?;
    for page in std::fs::read_dir(dir)? {
        let page = page?.path();
        let status = std::process::Command::new("gzip")
            .args(["-9", "-n", "-f"])
            .arg(&page)
            .status()
            .context("could not run gzip (Debian's gzip package)")?;
        anyhow::ensure!(status.success(), "gzip failed on {}", page.display());
    }
    Ok(())
}

fn systemd(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let state = StateRoot::at(STATE_ROOT);
    std::fs::write(
        dir.join("tether.service"),
        unit::systemd_unit(Path::new(BINARY), &state, Origin::Package),
    )?;
    std::fs::write(
        dir.join("tether-identity.conf"),
        unit::manager_environment(Origin::Package),
    )?;
    Ok(())
}

const DEB_SCRIPTS: [&str; 4] = ["preinst", "postinst", "prerm", "postrm"];
const RPM_SCRIPTS: [&str; 4] = ["pre.sh", "post.sh", "preun.sh", "postun.sh"];

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))
}

/// Each script of `format`, with the shared functions (`scripts/lib.sh`)
/// in place of `@LIB@`, and this package's version and state schema.
fn scripts(dir: &Path, format: &str, names: &[&str], version: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let sources = super::paths::sources();
    let lib = read(&sources.join("scripts").join("lib.sh"))?;
    for name in names {
        let text = read(&sources.join(format).join(name))?
            .replace("@LIB@", lib.trim_end())
            .replace("@VERSION@", version)
            .replace("@STATE_SCHEMA@", &tether::state::SCHEMA.to_string());
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}
