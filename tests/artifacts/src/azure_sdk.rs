//! The Azure SDK for Python, unmodified, as operators' automation and
//! workloads on a machine install it: pinned packages from PyPI in a
//! virtual environment under the target directory, made the first time a
//! test asks (`python3 -m venv` must work: `.ci/run` installs Debian's
//! python3-venv where it is missing).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The packages, pinned.
pub const PACKAGES: &[&str] = &[
    "azure-mgmt-hybridcompute==10.0.0",
    "azure-core==1.41.0",
    "azure-mgmt-core==1.6.0",
    "azure-identity==1.27.0",
    "msal==1.39.0",
];

/// The virtual environment's python. Test binaries run at once make it
/// once between them (a file lock beside it).
pub fn python() -> Result<PathBuf, String> {
    let venv = Path::new(env!("TETHER_AZURE_SDK_VENV"));
    let parent = venv.parent().unwrap_or(venv);
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let lock = File::create(parent.join("azure-sdk-venv.lock"))
        .and_then(|file| file.lock().map(|()| file))
        .map_err(|e| format!("could not lock the venv: {e}"))?;
    let python = venv.join("bin/python");
    let marker = venv.join(format!("installed-{}", PACKAGES.join("+")));
    if !marker.exists() {
        make(venv, &python)?;
        std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
    }
    drop(lock);
    Ok(python)
}

fn make(venv: &Path, python: &Path) -> Result<(), String> {
    let made = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(venv)
        .output()
        .map_err(|e| format!("python3 is needed for the Azure SDK tests (apt-get install python3 python3-venv; .ci/run does): {e}"))?;
    if !made.status.success() {
        return Err(format!(
            "python3 -m venv failed (apt-get install python3-venv): {}",
            String::from_utf8_lossy(&made.stderr)
        ));
    }
    let pip = Command::new(python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
        .args(PACKAGES)
        .output()
        .map_err(|e| e.to_string())?;
    if !pip.status.success() {
        return Err(format!(
            "installing {PACKAGES:?} from PyPI failed: {}",
            String::from_utf8_lossy(&pip.stderr)
        ));
    }
    Ok(())
}
