//! Resource limits of one activation, and the limiter that enforces them.

use std::time::Duration;
use thiserror::Error;

/// The most memory any extension may be granted, whatever its manifest
/// asks: the pooling allocator sizes its slots by it.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// The largest string an `invoke` may return.
pub const MAX_OUTPUT_BYTES: usize = 4 << 20;

/// Limits of one extension's activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, all memories of the component together.
    pub memory_bytes: usize,
    /// How long one call may run before it is stopped.
    pub call_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// Limits with the memory in MiB, clamped to [`MAX_MEMORY_BYTES`].
    pub fn new(memory_mib: u64, call_timeout: Duration) -> Self {
        let bytes = usize::try_from(memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        Self {
            memory_bytes: bytes.min(MAX_MEMORY_BYTES),
            call_timeout,
        }
    }
}

/// Raised by the limiter when a guest asks for more memory than its limit;
/// the trap carries it, so the cause is reported as the memory limit rather
/// than as whatever the guest does when an allocation fails.
#[derive(Debug, Error)]
#[error("memory limit of {limit} bytes reached (the extension asked for {requested} bytes)")]
pub(crate) struct MemoryLimitExceeded {
    pub limit: usize,
    pub requested: usize,
}

/// Caps the total linear memory of an activation's instances.
pub(crate) struct Limiter {
    limit: usize,
    /// Bytes held by the memories of this store, summed over all of them.
    used: usize,
}

impl Limiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, used: 0 }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.used.saturating_add(growth);
        if total > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.limit,
                requested: total,
            }));
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far past any
        // real extension and far below what could hurt the host.
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        8
    }

    fn tables(&self) -> usize {
        32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_is_counted_across_growths() -> wasmtime::Result<()> {
        let mut limiter = Limiter::new(100);
        assert!(limiter.memory_growing(0, 60, None)?);
        assert!(limiter.memory_growing(60, 100, None)?);
        let err = limiter
            .memory_growing(100, 101, None)
            .expect_err("past the limit");
        assert!(err.is::<MemoryLimitExceeded>());
        Ok(())
    }

    #[test]
    fn memory_limit_is_clamped() {
        let limits = Limits::new(1 << 40, Duration::from_secs(1));
        assert_eq!(limits.memory_bytes, MAX_MEMORY_BYTES);
    }
}
