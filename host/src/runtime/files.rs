//! The files capability: directories an extension may read, or read and
//! write, granted as WASI preopens. Two keys, as for every capability that
//! reaches outside the sandbox: the manifest declares (`read_paths`,
//! `write_paths`), the operator allows (`extensions.files.allowed`, path
//! prefixes). A path is checked on its canonical form — symlinks resolved —
//! at admission and again at every load, so a link planted later does not
//! move a grant; inside a preopen, WASI resolves every path within it, so
//! a link that points out of it is refused at use. Some places are never
//! grantable, whatever the operator allows: the state root and the identity
//! key files (their own secrets), the system's secrets, and the kernel's
//! views of processes and devices (`/proc` holds the service's own memory
//! and environment).

use std::path::{Path, PathBuf};

/// One granted directory, canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileGrant {
    pub path: PathBuf,
    pub write: bool,
}

/// Never grantable, nor anything that contains them or lies inside them.
const NEVER: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/ssh",
    "/root",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
];

/// What the operator and the machine allow.
#[derive(Debug, Clone)]
pub struct FilePolicy {
    /// `extensions.files.allowed`, as the operator wrote them.
    pub allowed: Vec<String>,
    /// The state root and the identity key files' directory.
    pub own: Vec<PathBuf>,
}

fn canonical(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// Whether one of `a` and `b` lies inside the other (or they are one).
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

impl FilePolicy {
    /// The grant for a declared path, or why not (naming the setting that
    /// would allow it).
    pub fn grant(&self, declared: &str, write: bool) -> Result<FileGrant, String> {
        let kind = if write { "write path" } else { "read path" };
        let path = Path::new(declared);
        if !path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "{kind} `{declared}` must be absolute, without `..`"
            ));
        }
        let never = |p: &Path| {
            NEVER.iter().any(|n| overlaps(p, Path::new(n)))
                || self
                    .own
                    .iter()
                    .filter_map(|o| canonical(o).or_else(|| Some(o.clone())))
                    .any(|o| overlaps(p, &o))
        };
        if never(path) {
            return Err(format!(
                "{kind} `{declared}` is not something an extension may be granted (system secrets, the kernel's process views, or Tether's own state)"
            ));
        }
        let real = canonical(path).ok_or_else(|| {
            format!("{kind} `{declared}` is not an existing directory on this machine")
        })?;
        if !real.is_dir() {
            return Err(format!(
                "{kind} `{declared}` is not a directory (grants are directories)"
            ));
        }
        if never(&real) {
            return Err(format!(
                "{kind} `{declared}` leads (through a link) to `{}`, which an extension may never be granted",
                real.display()
            ));
        }
        let allowed = self
            .allowed
            .iter()
            .filter_map(|a| canonical(Path::new(a)))
            .any(|a| real.starts_with(&a));
        if !allowed {
            return Err(format!(
                "{kind} `{declared}`{} is not under extensions.files.allowed; the operator allows it with `tether config set extensions.files.allowed {declared} --add`",
                if real != path {
                    format!(" (really `{}`)", real.display())
                } else {
                    String::new()
                }
            ));
        }
        Ok(FileGrant { path: real, write })
    }

    /// Every grant a manifest asks for, or the first refusal.
    pub fn grants(&self, read: &[String], write: &[String]) -> Result<Vec<FileGrant>, String> {
        read.iter()
            .map(|p| self.grant(p, false))
            .chain(write.iter().map(|p| self.grant(p, true)))
            .collect()
    }
}

/// Adds the grants to a WASI context, each at its own path in the guest.
pub fn preopen(
    builder: &mut wasmtime_wasi::WasiCtxBuilder,
    grants: &[FileGrant],
) -> anyhow::Result<()> {
    use wasmtime_wasi::FsPerms;
    for grant in grants {
        let perms = if grant.write {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        let guest = grant.path.to_string_lossy().into_owned();
        builder.preopened_dir(&grant.path, guest, perms)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_existing_directories_outside_tethers_own_are_granted()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = std::fs::canonicalize(dir.path())?;
        let data = root.join("data");
        let state = root.join("state");
        std::fs::create_dir_all(&data)?;
        std::fs::create_dir_all(&state)?;
        let policy = FilePolicy {
            allowed: vec![root.display().to_string()],
            own: vec![state.clone()],
        };
        let ok = policy.grant(&data.display().to_string(), true)?;
        assert_eq!(
            ok,
            FileGrant {
                path: data.clone(),
                write: true
            }
        );
        for (declared, says) in [
            (state.display().to_string(), "not something"),
            (root.display().to_string(), "not something"),
            ("/proc/self".to_string(), "not something"),
            ("relative".to_string(), "absolute"),
            (format!("{}/../x", data.display()), "absolute"),
            (root.join("missing").display().to_string(), "existing"),
            ("/usr/share".to_string(), "extensions.files.allowed"),
        ] {
            let refused = policy.grant(&declared, false).err().unwrap_or_default();
            assert!(refused.contains(says), "{declared}: {refused}");
        }
        #[cfg(unix)]
        {
            // A link inside the allowed prefix that leads out of it.
            std::os::unix::fs::symlink("/usr/share", root.join("share-link"))?;
            let refused = policy
                .grant(&root.join("share-link").display().to_string(), false)
                .err()
                .unwrap_or_default();
            assert!(refused.contains("really `/usr/share`"), "{refused}");
            // /etc holds /etc/shadow: never, through a link or not.
            std::os::unix::fs::symlink("/etc", root.join("etc-link"))?;
            let refused = policy
                .grant(&root.join("etc-link").display().to_string(), false)
                .err()
                .unwrap_or_default();
            assert!(refused.contains("may never be granted"), "{refused}");
            std::os::unix::fs::symlink(&state, root.join("state-link"))?;
            let refused = policy
                .grant(&root.join("state-link").display().to_string(), false)
                .err()
                .unwrap_or_default();
            assert!(refused.contains("may never be granted"), "{refused}");
        }
        Ok(())
    }
}
