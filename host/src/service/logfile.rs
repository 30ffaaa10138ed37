//! The service's log: JSON lines in a size-rotated file under the state
//! root (`logs/tether.log`, then `.1` … `.N`), and text on stderr, which
//! systemd's journal or the Windows event log collects. Every line passes
//! the same redactor as log bundles, so a secret that slips into a message
//! never reaches the disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
pub const KEEP: u32 = 5;

/// A log file that moves itself aside when it grows past `max_bytes`.
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<File>,
    written: u64,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            max_bytes,
            keep,
            file: Some(file),
            written,
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        for n in (1..self.keep).rev() {
            let from = numbered(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, numbered(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(&self.path, 1))?;
        self.file = Some(open_append(&self.path)?);
        self.written = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    options.open(path)
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.max_bytes && self.written > 0 {
            self.rotate()?;
        }
        let line = crate::diagnostics::redact::redact(&String::from_utf8_lossy(buf));
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("the log file is not open"))?;
        file.write_all(line.as_bytes())?;
        self.written += line.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// A shareable handle for `tracing_subscriber`'s writer.
#[derive(Clone)]
pub struct SharedLog(Arc<Mutex<RotatingFile>>);

impl SharedLog {
    pub fn new(file: RotatingFile) -> Self {
        Self(Arc::new(Mutex::new(file)))
    }
}

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SharedLog {
    type Writer = SharedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Standard error, redacted as the log file is: under systemd it is the
/// journal, which every member of `adm` and `systemd-journal` may read.
#[derive(Clone, Copy, Default)]
pub struct RedactedStderr;

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = crate::diagnostics::redact::redact(&String::from_utf8_lossy(buf));
        io::stderr().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// The service's log file under `state_root`.
pub fn path(state_root: &Path) -> PathBuf {
    state_root.join("logs").join("tether.log")
}

/// Logs to the rotating file and to stderr. `verbose` raises the level as
/// the CLI's `-v` does; `TETHER_LOG` overrides both.
pub fn init(state_root: &Path, verbose: u8) -> io::Result<PathBuf> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, fmt};
    let path = path(state_root);
    let file = SharedLog::new(RotatingFile::open(&path, MAX_BYTES, KEEP)?);
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = || {
        EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| {
            EnvFilter::new(format!(
                "{level},hyper=warn,reqwest=warn,wasmtime=warn,cranelift=warn"
            ))
        })
    };
    let _ = tracing_subscriber::registry()
        .with(fmt::layer().json().with_writer(file).with_filter(filter()))
        .with(
            fmt::layer()
                .with_writer(RedactedStderr)
                .with_target(false)
                .with_filter(filter()),
        )
        .try_init();
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_keeping_n_files_and_redacts() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("logs").join("tether.log");
        let mut log = RotatingFile::open(&path, 100, 3)?;
        for i in 0..20 {
            writeln!(log, "line {i:02} ........................................")?;
        }
        writeln!(log, "client_secret=hunter2-very-secret")?;
        log.flush()?;
        assert!(numbered(&path, 1).exists() && numbered(&path, 3).exists());
        assert!(!numbered(&path, 4).exists(), "only three are kept");
        for n in 1..=3 {
            assert!(std::fs::metadata(numbered(&path, n))?.len() <= 100);
        }
        let current = std::fs::read_to_string(&path)?;
        assert!(!current.contains("hunter2"), "{current}");
        Ok(())
    }
}
