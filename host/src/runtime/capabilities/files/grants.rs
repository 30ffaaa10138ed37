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
//!
//! A read path may also name one file. WASI opens only directories, so a
//! granted file is served as a copy taken when the activation starts, in a
//! directory of its own at the file's parent path holding nothing else:
//! `/etc/os-release` without the rest of `/etc`. Of `/proc`, only the
//! machine-wide files ([`MACHINE_WIDE_PROC`]) may be granted this way,
//! never an entry of a process.

use std::path::{Path, PathBuf};

/// One grant: a directory (canonical), or a file served as a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileGrant {
    /// What is opened (canonical).
    pub path: PathBuf,
    /// Where the guest finds it: the canonical path for a directory, the
    /// declared path for a file (its copy is taken from `path`).
    pub guest: PathBuf,
    pub write: bool,
    /// A single file, read-only, copied at each activation.
    pub file: bool,
}

/// The files of `/proc` that describe the machine, not a process; the
/// only part of it an extension may be granted (read-only copies).
pub const MACHINE_WIDE_PROC: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/loadavg",
    "/proc/stat",
    "/proc/uptime",
    "/proc/version",
    "/proc/diskstats",
    "/proc/partitions",
    "/proc/mounts",
];

/// The most of one granted file that is copied for an activation.
pub const MAX_FILE_COPY: u64 = 8 << 20;

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
        if MACHINE_WIDE_PROC.contains(&declared) {
            if write {
                return Err(format!("{kind} `{declared}` can only be read"));
            }
            return self.allow(declared, path.to_path_buf(), false, true);
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
            format!("{kind} `{declared}` is not an existing directory or file on this machine")
        })?;
        let file = real.is_file();
        let readable_file = file && !write;
        if !real.is_dir() && !readable_file {
            return Err(format!(
                "{kind} `{declared}` is not a directory{}",
                if write {
                    " (write grants are directories)"
                } else {
                    " nor a regular file"
                }
            ));
        }
        if never(&real) {
            return Err(format!(
                "{kind} `{declared}` leads (through a link) to `{}`, which an extension may never be granted",
                real.display()
            ));
        }
        self.allow(declared, real, write, file)
    }

    /// The grant, if `extensions.files.allowed` covers `real`.
    fn allow(
        &self,
        declared: &str,
        real: PathBuf,
        write: bool,
        file: bool,
    ) -> Result<FileGrant, String> {
        let kind = if write { "write path" } else { "read path" };
        let allowed = self
            .allowed
            .iter()
            .filter_map(|a| canonical(Path::new(a)))
            .any(|a| real.starts_with(&a));
        if !allowed {
            return Err(format!(
                "{kind} `{declared}`{} is not under extensions.files.allowed; the operator allows it with `tether config set extensions.files.allowed {declared} --add`",
                if real != Path::new(declared) {
                    format!(" (really `{}`)", real.display())
                } else {
                    String::new()
                }
            ));
        }
        Ok(FileGrant {
            guest: if file {
                PathBuf::from(declared)
            } else {
                real.clone()
            },
            path: real,
            write,
            file,
        })
    }

    /// Every grant a manifest asks for, or the first refusal. Optional
    /// read paths absent from this machine are left out.
    pub fn grants(
        &self,
        capabilities: &tether_package::Capabilities,
    ) -> Result<Vec<FileGrant>, String> {
        let present = capabilities
            .optional_read_paths
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_ok());
        capabilities
            .read_paths
            .iter()
            .chain(present)
            .map(|p| self.grant(p, false))
            .chain(capabilities.write_paths.iter().map(|p| self.grant(p, true)))
            .collect()
    }
}

/// The copies of granted files for one activation, removed with it.
pub struct Snapshot {
    dir: Option<PathBuf>,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Copies at most [`MAX_FILE_COPY`] of `from` (a `/proc` file has no size
/// until read) into `to`, readable by its owner only.
fn copy_capped(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut source = std::fs::File::open(from)?.take(MAX_FILE_COPY);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o400);
    let mut target = options.open(to)?;
    let mut buffer = Vec::new();
    source.read_to_end(&mut buffer)?;
    target.write_all(&buffer)
}

/// Adds the grants to a WASI context, each at its own path in the guest;
/// granted files as copies in a fresh directory per parent path.
pub fn preopen(
    builder: &mut wasmtime_wasi::WasiCtxBuilder,
    grants: &[FileGrant],
) -> anyhow::Result<Snapshot> {
    use anyhow::Context;
    use wasmtime_wasi::FsPerms;
    let mut snapshot = Snapshot { dir: None };
    let mut parents: std::collections::BTreeMap<PathBuf, Vec<&FileGrant>> = Default::default();
    for grant in grants {
        if grant.file {
            // A file inside a granted directory is served by the directory.
            let covered = grants
                .iter()
                .any(|g| !g.file && grant.guest.starts_with(&g.guest));
            if !covered && let Some(parent) = grant.guest.parent() {
                parents.entry(parent.to_path_buf()).or_default().push(grant);
            }
            continue;
        }
        let perms = if grant.write {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        let guest = grant.path.to_string_lossy().into_owned();
        builder.preopened_dir(&grant.path, guest, perms)?;
    }
    if parents.is_empty() {
        return Ok(snapshot);
    }
    let root = std::env::temp_dir().join(format!(
        "tether-files-{}",
        hex::encode(crate::util::random_bytes::<8>())
    ));
    std::fs::create_dir(&root).with_context(|| format!("could not create {}", root.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    snapshot.dir = Some(root.clone());
    for (index, (parent, files)) in parents.into_iter().enumerate() {
        let dir = root.join(index.to_string());
        std::fs::create_dir(&dir)?;
        for grant in files {
            let name = grant
                .guest
                .file_name()
                .context("a granted file has a name")?;
            copy_capped(&grant.path, &dir.join(name))
                .with_context(|| format!("could not copy {}", grant.path.display()))?;
        }
        builder.preopened_dir(&dir, parent.to_string_lossy(), FsPerms::ReadOnly)?;
    }
    Ok(snapshot)
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
                guest: data.clone(),
                write: true,
                file: false
            }
        );
        std::fs::write(data.join("one.txt"), "one")?;
        let one = data.join("one.txt").display().to_string();
        assert!(
            policy.grant(&one, false)?.file,
            "a file is granted read-only"
        );
        assert!(policy.grant(&one, true).is_err(), "never writable");
        // Of /proc, only the machine-wide files, and only when allowed.
        let refused = policy
            .grant("/proc/cpuinfo", false)
            .err()
            .unwrap_or_default();
        assert!(refused.contains("extensions.files.allowed"), "{refused}");
        let with_proc = FilePolicy {
            allowed: vec!["/proc".into()],
            own: vec![],
        };
        assert!(with_proc.grant("/proc/cpuinfo", false)?.file);
        for process in [
            "/proc/self/environ",
            "/proc/1/environ",
            "/proc/self",
            "/proc/kcore",
        ] {
            assert!(with_proc.grant(process, false).is_err(), "{process}");
        }
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
