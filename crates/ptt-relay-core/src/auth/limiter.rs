//! Slowing down password guessing: a source address that fails to
//! authenticate too often in a minute is refused without checking.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// The window failures are counted in.
const WINDOW: Duration = Duration::from_secs(60);

/// Failed authentications per source address in a sliding one-minute window
/// (approximated by fixed windows, which is enough to stop guessing).
#[derive(Debug)]
pub struct AuthLimiter {
    limit: u32,
    failures: DashMap<IpAddr, (Instant, u32)>,
}

impl AuthLimiter {
    /// Allows `limit` failures per address per minute; 0 disables the limit.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            failures: DashMap::new(),
        }
    }

    /// Whether `addr` may try to authenticate now.
    pub fn allows(&self, addr: IpAddr, now: Instant) -> bool {
        if self.limit == 0 {
            return true;
        }
        match self.failures.get(&addr) {
            Some(entry) => {
                let (since, count) = *entry;
                now.duration_since(since) >= WINDOW || count < self.limit
            }
            None => true,
        }
    }

    /// Records a failed attempt from `addr`.
    pub fn record_failure(&self, addr: IpAddr, now: Instant) {
        let mut entry = self.failures.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        drop(entry);
        // Forget stale addresses now and then so the map stays small.
        if self.failures.len() > 10_000 {
            self.failures
                .retain(|_, (since, _)| now.duration_since(*since) < WINDOW);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_passes() {
        let limiter = AuthLimiter::new(3);
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.allows(addr, start));
            limiter.record_failure(addr, start);
        }
        assert!(!limiter.allows(addr, start), "fourth try within the minute");
        assert!(
            limiter.allows(other, start),
            "other addresses are unaffected"
        );
        assert!(limiter.allows(addr, start + WINDOW), "a minute later");
    }
}
