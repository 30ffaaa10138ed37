//! One token bucket for every caller of the metadata endpoint. Every local
//! process is 127.0.0.1 or ::1 (or any of 127.0.0.0/8 it binds), so a
//! bucket per address would only invite rotating source addresses.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

pub struct RateLimit {
    per_second: f64,
    burst: f64,
    bucket: Mutex<(f64, Option<Instant>)>,
}

impl RateLimit {
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            bucket: Mutex::new((f64::from(burst), None)),
        }
    }

    /// Whether a request may be served now.
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = &mut *bucket;
        if let Some(last) = last {
            let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
            *tokens = (*tokens + refill).min(self.burst);
        }
        *last = Some(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_steady_rate_for_everyone_together() {
        let limit = RateLimit::new(10, 20);
        let start = Instant::now();
        let allowed = (0..30).filter(|_| limit.allow_at(start)).count();
        assert_eq!(allowed, 20);
        assert!(!limit.allow_at(start + Duration::from_millis(50)));
        assert!(limit.allow_at(start + Duration::from_millis(150)));
    }
}
