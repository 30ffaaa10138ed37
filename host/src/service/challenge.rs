//! The identity endpoint's proof of local privilege: a one-time secret in
//! a `.key` file that only root and the `tether` group can read. A caller
//! that can read it can ask for the machine's tokens; it is deleted after
//! one use and expires within seconds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub const LIFETIME: Duration = Duration::from_secs(10);

/// At most this many secrets are known at once (open ones and ones kept to
/// tell a late answer apart): each is a file on disk, and unauthenticated
/// callers create them.
pub const MAX_OUTSTANDING: usize = 64;

pub struct Challenges {
    dir: PathBuf,
    lifetime: Duration,
    open: Mutex<HashMap<String, (PathBuf, Instant)>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    /// No such secret, or used already.
    Unknown,
    Expired,
}

impl Challenges {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn new(dir: &Path, lifetime: Duration) -> Self {
        Self {
            dir: dir.to_path_buf(),
            lifetime,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Writes a new key file and returns its path; `None` while
    /// [`MAX_OUTSTANDING`] are open (the caller is told to retry).
    pub fn issue(&self) -> std::io::Result<Option<PathBuf>> {
        self.sweep();
        if self.lock().len() >= MAX_OUTSTANDING {
            return Ok(None);
        }
        create_private_dir(&self.dir)?;
        let secret = hex::encode(crate::util::random_bytes::<32>());
        let path = self.dir.join(format!("{}.key", crate::util::guid()));
        write_private(&path, secret.as_bytes())?;
        self.lock()
            .insert(secret, (path.clone(), Instant::now() + self.lifetime));
        Ok(Some(path))
    }

    /// Checks the secret a caller read from a key file; any answer uses it up.
    pub fn answer(&self, secret: &str) -> Answer {
        self.sweep();
        let found = {
            let mut open = self.lock();
            let key = open
                .keys()
                .find(|k| constant_time_eq(k.as_bytes(), secret.trim().as_bytes()))
                .cloned();
            key.and_then(|k| open.remove(&k))
        };
        match found {
            Some((path, expires)) => {
                let _ = std::fs::remove_file(&path);
                if Instant::now() <= expires {
                    Answer::Accepted
                } else {
                    Answer::Expired
                }
            }
            None => Answer::Unknown,
        }
    }

    /// Deletes the files of expired challenges. (An expired secret stays
    /// known for one lifetime more, so its late use is told apart.)
    fn sweep(&self) {
        let now = Instant::now();
        let mut open = self.lock();
        open.retain(|_, (path, expires)| {
            if now > *expires {
                let _ = std::fs::remove_file(&*path);
            }
            now <= *expires + self.lifetime
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (PathBuf, Instant)>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
    if let Some(gid) = crate::platform::tether_group() {
        std::os::unix::fs::chown(dir, None, Some(gid))?;
    }
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)?;
    if let Some(gid) = crate::platform::tether_group() {
        std::os::unix::fs::fchown(&file, None, Some(gid))?;
    }
    file.write_all(bytes)
}

// On Windows the directory may be outside the state root (Azure Arc's,
// under %ProgramData%, which users may read), so it gets the state root's
// administrators-only ACL of its own.
#[cfg(windows)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::platform::restrict_to_administrators(dir)
}

#[cfg(windows)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_use_and_expiry() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let challenges =
            Challenges::new(&dir.path().join("challenges"), Duration::from_millis(300));
        let path = challenges.issue()?.ok_or("refused")?;
        let secret = std::fs::read_to_string(&path)?;
        assert_eq!(challenges.answer("not-the-secret"), Answer::Unknown);
        assert_eq!(challenges.answer(&secret), Answer::Accepted);
        assert!(!path.exists(), "the key file is deleted after use");
        assert_eq!(challenges.answer(&secret), Answer::Unknown, "used up");

        let late = challenges.issue()?.ok_or("refused")?;
        let secret = std::fs::read_to_string(&late)?;
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(challenges.answer(&secret), Answer::Expired);
        assert!(!late.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let issued = challenges.issue()?.ok_or("refused")?;
            assert_eq!(
                std::fs::metadata(&issued)?.permissions().mode() & 0o777,
                0o640
            );
            let dir_mode = std::fs::metadata(dir.path().join("challenges"))?
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o750);
        }
        Ok(())
    }

    #[test]
    fn outstanding_challenges_are_capped() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let challenges = Challenges::new(dir.path(), Duration::from_secs(10));
        for _ in 0..MAX_OUTSTANDING {
            assert!(challenges.issue()?.is_some());
        }
        assert!(challenges.issue()?.is_none(), "the cap holds");
        assert_eq!(std::fs::read_dir(dir.path())?.count(), MAX_OUTSTANDING);
        Ok(())
    }
}
