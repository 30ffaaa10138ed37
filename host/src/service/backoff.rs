//! When to try again after a failure: exponential backoff with jitter,
//! never tighter than a floor, never looser than the regular interval, and
//! never sooner than the cloud's `Retry-After`.

use std::time::Duration;

/// The longest `Retry-After` honoured; a cloud asking for longer is
/// retried after this, so a bad header cannot silence a machine for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Retries start at a sixteenth of `interval` and double up to
    /// `interval`: a ten-minute outage with a five-minute heartbeat costs
    /// about seven attempts, not a hot loop.
    pub fn for_interval(interval: Duration) -> Self {
        Self {
            base: (interval / 16).max(Duration::from_millis(50)),
            cap: interval,
            failures: 0,
        }
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt after another failure. `jitter`
    /// is uniform in [0, 1): the delay lands in the upper half of its step,
    /// so a fleet that failed together does not retry together.
    pub fn failed(&mut self, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << self.failures.min(16))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        let delay = step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        match retry_after {
            Some(wait) => delay.max(wait.min(MAX_RETRY_AFTER)),
            None => delay,
        }
    }
}

/// A number uniform in [0, 1) from the OS's random source.
pub fn jitter() -> f64 {
    let bytes = crate::util::random_bytes::<8>();
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_interval_and_stay_in_their_band() {
        let interval = Duration::from_secs(300);
        let mut backoff = Backoff::for_interval(interval);
        let mut previous_step = Duration::ZERO;
        for _ in 0..12 {
            let low = backoff.clone().failed(None, 0.0);
            let high = backoff.clone().failed(None, 0.999_999);
            assert!(low >= previous_step / 2, "{low:?} after {previous_step:?}");
            assert!(high <= interval, "{high:?}");
            assert!(low * 2 >= high - Duration::from_millis(1));
            previous_step = high;
            backoff.failed(None, jitter());
        }
        assert_eq!(previous_step.as_secs(), 299, "the cap is the interval");
        backoff.succeeded();
        assert!(backoff.failed(None, 0.0) < Duration::from_secs(19));
    }

    #[test]
    fn a_ten_minute_outage_costs_a_handful_of_attempts() {
        let interval = Duration::from_secs(300);
        let mut backoff = Backoff::for_interval(interval);
        let (mut elapsed, mut attempts) = (Duration::ZERO, 0);
        while elapsed < Duration::from_secs(600) {
            elapsed += backoff.failed(None, 0.0);
            attempts += 1;
        }
        assert!((5..=10).contains(&attempts), "{attempts} attempts");
    }

    #[test]
    fn retry_after_is_honoured_and_bounded() {
        let mut backoff = Backoff::for_interval(Duration::from_secs(300));
        assert_eq!(
            backoff.failed(Some(Duration::from_secs(120)), 0.5),
            Duration::from_secs(120)
        );
        assert_eq!(
            backoff.failed(Some(Duration::from_secs(86_400)), 0.5),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
