//! CPU governance: all extensions of a runtime together may use
//! `extensions.agent.cpulimit` percent of one CPU, measured over short
//! windows. Enforced at epoch ticks (every 10 ms of guest execution): a
//! guest past the window's budget waits for the next window. Calls shorter
//! than a tick are never slowed. The share can change while guests run (the
//! service applies a new setting to its one runtime).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_millis(100);

pub struct CpuGovernor {
    percent: AtomicU8,
    window: Mutex<Window>,
}

struct Window {
    start: Instant,
    used: Duration,
}

impl CpuGovernor {
    /// `percent` of one CPU (1–100).
    pub fn new(percent: u8) -> Self {
        Self {
            percent: AtomicU8::new(percent.clamp(1, 100)),
            window: Mutex::new(Window {
                start: Instant::now(),
                used: Duration::ZERO,
            }),
        }
    }

    pub fn percent(&self) -> u8 {
        self.percent.load(Ordering::Relaxed)
    }

    /// A new share for every call from now on (1–100).
    pub fn set_percent(&self, percent: u8) {
        self.percent.store(percent.clamp(1, 100), Ordering::Relaxed);
    }

    fn budget(&self) -> Duration {
        WINDOW * u32::from(self.percent()) / 100
    }

    /// Charges `used` CPU time; returns how long to wait before going on.
    pub(crate) fn charge(&self, used: Duration) -> Option<Duration> {
        let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if now.duration_since(w.start) >= WINDOW {
            w.start = now;
            w.used = Duration::ZERO;
        }
        w.used += used;
        if w.used <= self.budget() {
            return None;
        }
        // Over budget: wait out this window, and as many more as the
        // overdraft needs, so the average holds.
        let windows_owed = w.used.as_nanos() / self.budget().as_nanos().max(1);
        let until = w.start + WINDOW * u32::try_from(windows_owed).unwrap_or(u32::MAX).min(50);
        w.start = until;
        w.used = Duration::ZERO;
        Some(until.saturating_duration_since(now))
    }
}

/// CPU time this thread has used.
#[cfg(unix)]
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id is
    // a constant the platform defines.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Without a thread CPU clock, wall time stands in (it can only be stricter).
#[cfg(not(unix))]
pub fn thread_cpu() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_governor_allows_its_budget_and_makes_overdrafts_wait() {
        let g = CpuGovernor::new(10);
        assert_eq!(g.charge(Duration::from_millis(5)), None);
        assert_eq!(g.charge(Duration::from_millis(5)), None);
        let wait = g.charge(Duration::from_millis(30)).expect("over budget");
        assert!(
            wait > Duration::from_millis(200) && wait <= Duration::from_millis(400),
            "{wait:?}"
        );
        assert_eq!(CpuGovernor::new(0).percent(), 1);
    }

    #[test]
    fn a_new_share_applies_to_the_next_charge() {
        let g = CpuGovernor::new(10);
        assert!(g.charge(Duration::from_millis(20)).is_some());
        g.set_percent(100);
        assert_eq!(g.percent(), 100);
        std::thread::sleep(WINDOW * 3);
        assert_eq!(g.charge(Duration::from_millis(50)), None);
        g.set_percent(0);
        assert_eq!(g.percent(), 1);
    }
}
