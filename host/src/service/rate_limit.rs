//! A token bucket per client address, for the metadata endpoint.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

pub struct RateLimit {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimit {
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `client` may make a request now.
    pub fn allow(&self, client: IpAddr) -> bool {
        self.allow_at(client, Instant::now())
    }

    fn allow_at(&self, client: IpAddr, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = buckets.entry(client).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
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
    fn a_burst_then_the_steady_rate_per_client() {
        let limit = RateLimit::new(10, 20);
        let start = Instant::now();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = std::net::Ipv6Addr::LOCALHOST.into();
        let allowed = (0..30).filter(|_| limit.allow_at(a, start)).count();
        assert_eq!(allowed, 20);
        assert!(
            limit.allow_at(b, start),
            "another client has its own bucket"
        );
        assert!(!limit.allow_at(a, start + Duration::from_millis(50)));
        assert!(limit.allow_at(a, start + Duration::from_millis(150)));
    }
}
