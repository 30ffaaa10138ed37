//! What an extension writes (through `host.log` or to stdout/stderr),
//! captured per call within a budget, and forwarded to the host's log
//! tagged with the extension's id.
//!
//! A guest can write without end; the host's log must not grow without
//! end. Each call may keep [`MAX_RECORDS`] lines of at most
//! [`MAX_LINE_BYTES`] each; past that lines are counted, not kept, and one
//! closing line says how many were dropped.

use super::wit::Level;
use bytes::Bytes;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

pub const MAX_RECORDS: usize = 1000;
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Bytes of log lines one call may keep, all lines together.
pub const MAX_CALL_BYTES: usize = 256 * 1024;
/// stderr lines kept regardless of the budget, to explain a panic.
const STDERR_TAIL: usize = 8;

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// `host.log` (the SDK's logging macros).
    Log,
    Stdout,
    Stderr,
    /// Written by the host about the extension (for example, dropped lines).
    Host,
}

/// One captured line (also as the service sends it to the CLI).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LogRecord {
    #[serde(serialize_with = "level_name", deserialize_with = "level_from_name")]
    pub level: Level,
    pub source: LogSource,
    pub message: String,
}

fn level_name<S: serde::Serializer>(level: &Level, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(level_str(*level))
}

fn level_from_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
    let name = <String as serde::Deserialize>::deserialize(d)?;
    [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
    ]
    .into_iter()
    .find(|level| level_str(*level) == name)
    .ok_or_else(|| serde::de::Error::custom(format!("`{name}` is not a log level")))
}

pub fn level_str(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// The contract's name of a status state.
pub fn status_name(state: super::wit::StatusState) -> &'static str {
    use super::wit::StatusState;
    match state {
        StatusState::Transitioning => "transitioning",
        StatusState::Success => "success",
        StatusState::Warning => "warning",
        StatusState::Error => "error",
    }
}

pub(crate) struct LogCapture {
    extension: String,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    records: Vec<LogRecord>,
    bytes: usize,
    dropped: usize,
    stdout_partial: Vec<u8>,
    stderr_partial: Vec<u8>,
    stderr_tail: VecDeque<String>,
}

/// What one call logged.
pub(crate) struct Captured {
    pub records: Vec<LogRecord>,
    pub dropped: usize,
    pub stderr_tail: Vec<String>,
}

impl LogCapture {
    pub(crate) fn new(extension: &str) -> Self {
        Self {
            extension: extension.to_string(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn log(&self, level: Level, source: LogSource, message: &str) {
        let mut inner = self.lock();
        self.push(&mut inner, level, source, message);
    }

    fn push(&self, inner: &mut Inner, level: Level, source: LogSource, message: &str) {
        if source == LogSource::Stderr {
            if inner.stderr_tail.len() == STDERR_TAIL {
                inner.stderr_tail.pop_front();
            }
            inner.stderr_tail.push_back(truncate(message, 1024));
        }
        let message = truncate(message, MAX_LINE_BYTES);
        if inner.records.len() >= MAX_RECORDS || inner.bytes + message.len() > MAX_CALL_BYTES {
            inner.dropped += 1;
            return;
        }
        inner.bytes += message.len();
        emit(&self.extension, level, source, &message);
        inner.records.push(LogRecord {
            level,
            source,
            message,
        });
    }

    /// Appends raw stream bytes, turning complete lines into records.
    fn write_stream(&self, source: LogSource, bytes: &[u8]) {
        let mut inner = self.lock();
        let level = if source == LogSource::Stderr {
            Level::Warn
        } else {
            Level::Info
        };
        let mut rest = bytes;
        while !rest.is_empty() {
            let partial = partial_mut(&mut inner, source);
            let room = MAX_LINE_BYTES.saturating_sub(partial.len());
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) if i <= room => {
                    partial.extend_from_slice(&rest[..i]);
                    rest = &rest[i + 1..];
                }
                _ if rest.len() <= room => {
                    partial.extend_from_slice(rest);
                    return;
                }
                // An over-long line: cut it where the budget ends.
                _ => {
                    partial.extend_from_slice(&rest[..room]);
                    rest = &rest[room..];
                }
            }
            let line = String::from_utf8_lossy(&std::mem::take(partial_mut(&mut inner, source)))
                .into_owned();
            self.push(&mut inner, level, source, &line);
        }
    }

    /// Takes what was captured since the last call, flushing partial lines.
    pub(crate) fn take(&self) -> Captured {
        let mut inner = self.lock();
        for source in [LogSource::Stdout, LogSource::Stderr] {
            let partial = std::mem::take(partial_mut(&mut inner, source));
            if !partial.is_empty() {
                let level = if source == LogSource::Stderr {
                    Level::Warn
                } else {
                    Level::Info
                };
                self.push(
                    &mut inner,
                    level,
                    source,
                    &String::from_utf8_lossy(&partial),
                );
            }
        }
        let dropped = std::mem::take(&mut inner.dropped);
        inner.bytes = 0;
        let mut records = std::mem::take(&mut inner.records);
        if dropped > 0 {
            let message = format!(
                "{dropped} more log lines were dropped: an extension may log {MAX_RECORDS} lines or {} KiB per call",
                MAX_CALL_BYTES / 1024
            );
            emit(&self.extension, Level::Warn, LogSource::Host, &message);
            records.push(LogRecord {
                level: Level::Warn,
                source: LogSource::Host,
                message,
            });
        }
        Captured {
            records,
            dropped,
            stderr_tail: std::mem::take(&mut inner.stderr_tail).into(),
        }
    }
}

fn partial_mut(inner: &mut Inner, source: LogSource) -> &mut Vec<u8> {
    if source == LogSource::Stderr {
        &mut inner.stderr_partial
    } else {
        &mut inner.stdout_partial
    }
}

fn truncate(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_string();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [truncated, {} bytes]", &message[..end], message.len())
}

fn emit(extension: &str, level: Level, source: LogSource, message: &str) {
    let source = match source {
        LogSource::Log => "log",
        LogSource::Stdout => "stdout",
        LogSource::Stderr => "stderr",
        LogSource::Host => "host",
    };
    match level {
        Level::Trace => {
            tracing::trace!(target: "tether_guest", extension, source, "{message}")
        }
        Level::Debug => {
            tracing::debug!(target: "tether_guest", extension, source, "{message}")
        }
        Level::Info => tracing::info!(target: "tether_guest", extension, source, "{message}"),
        Level::Warn => tracing::warn!(target: "tether_guest", extension, source, "{message}"),
        Level::Error => {
            tracing::error!(target: "tether_guest", extension, source, "{message}")
        }
    }
}

/// The guest's stdout or stderr, as WASI sees it.
#[derive(Clone)]
pub(crate) struct CaptureStream {
    capture: Arc<LogCapture>,
    source: LogSource,
}

impl CaptureStream {
    pub(crate) fn new(capture: Arc<LogCapture>, source: LogSource) -> Self {
        Self { capture, source }
    }
}

impl IsTerminal for CaptureStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CaptureStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CaptureStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.capture.write_stream(self.source, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CaptureStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.capture.write_stream(self.source, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_bytes_become_lines_and_the_budget_holds() {
        let capture = LogCapture::new("t");
        capture.write_stream(LogSource::Stdout, b"one\ntw");
        capture.write_stream(LogSource::Stdout, b"o\nthree");
        let got = capture.take();
        let lines: Vec<_> = got.records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(lines, ["one", "two", "three"]);

        for i in 0..(MAX_RECORDS + 10) {
            capture.log(Level::Info, LogSource::Log, &format!("line {i}"));
        }
        let got = capture.take();
        assert_eq!(got.dropped, 10);
        assert_eq!(got.records.len(), MAX_RECORDS + 1);
        assert!(
            got.records[MAX_RECORDS]
                .message
                .contains("10 more log lines were dropped")
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let capture = LogCapture::new("t");
        capture.write_stream(LogSource::Stderr, &vec![b'a'; MAX_LINE_BYTES * 3]);
        let got = capture.take();
        assert_eq!(got.records.len(), 3);
        assert!(
            got.records
                .iter()
                .all(|r| r.message.len() <= MAX_LINE_BYTES + 64)
        );
    }
}
