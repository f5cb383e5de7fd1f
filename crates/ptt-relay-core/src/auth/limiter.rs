//! Slowing down password guessing: failed logins are counted per (source
//! address, terminal), an attempt holds its place from before its secret is
//! hashed until it succeeds, and a pair that failed too often in a minute is
//! refused without checking. Failures across the whole relay are counted too:
//! past a global budget, every failed login is answered late.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Pairs remembered before stale ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

/// One (address, terminal) pair's count in its current window.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Start of the current window.
    since: Instant,
    /// Failures in the current window.
    failures: u32,
    /// Attempts reserved and not yet decided.
    in_flight: u32,
}

/// A fixed one-minute window of failures across the relay.
#[derive(Debug, Clone, Copy)]
struct GlobalWindow {
    since: Instant,
    failures: u32,
}

/// Failed logins per (source address, terminal) in a one-minute window
/// (fixed windows, which is enough to stop guessing), attempts in flight
/// included, and failures across the relay against a global budget.
///
/// Keyed by the pair so that one terminal guessed at from a depot's NAT does
/// not lock out the other terminals behind the same address.
#[derive(Debug)]
pub struct AuthLimiter {
    limit: u32,
    global_limit: u32,
    entries: DashMap<(IpAddr, u32), Entry>,
    global: Mutex<GlobalWindow>,
    last_prune: Mutex<Instant>,
}

/// The pair failed `limit` times this minute (attempts in flight included):
/// refused without checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed logins of this terminal from this address; wait a minute")]
pub struct RateLimited;

impl AuthLimiter {
    /// Allows `limit` failures per (address, terminal) per minute (0: no
    /// limit) and `global_limit` failures per minute across the relay before
    /// failed logins are slowed down (0: never).
    pub fn new(limit: u32, global_limit: u32) -> Self {
        let now = Instant::now();
        Self {
            limit,
            global_limit,
            entries: DashMap::new(),
            global: Mutex::new(GlobalWindow {
                since: now,
                failures: 0,
            }),
            last_prune: Mutex::new(now),
        }
    }

    /// Reserves a login attempt of `terminal` from `addr` before its secret
    /// is checked: it counts against the pair until
    /// [`Attempt::succeeded`] (or until it is dropped undecided), and as a
    /// failure after [`Attempt::failed`].
    pub fn try_reserve(
        &self,
        addr: IpAddr,
        terminal: u32,
        now: Instant,
    ) -> Result<Attempt<'_>, RateLimited> {
        if self.limit > 0 {
            let mut entry = self.entries.entry((addr, terminal)).or_insert(Entry {
                since: now,
                failures: 0,
                in_flight: 0,
            });
            if now.duration_since(entry.since) >= WINDOW {
                entry.since = now;
                entry.failures = 0;
            }
            if entry.failures.saturating_add(entry.in_flight) >= self.limit {
                return Err(RateLimited);
            }
            entry.in_flight += 1;
        }
        Ok(Attempt {
            limiter: self,
            key: Some((addr, terminal)),
        })
    }

    /// Whether failures across the relay exceeded the global budget this
    /// minute: failed logins are then answered late.
    pub fn slowing_down(&self, now: Instant) -> bool {
        if self.global_limit == 0 {
            return false;
        }
        let global = lock(&self.global);
        now.duration_since(global.since) < WINDOW && global.failures > self.global_limit
    }

    /// Releases an attempt's place, counting it as a failure if it failed.
    fn settle(&self, key: (IpAddr, u32), failed: bool, now: Instant) {
        if self.limit > 0 {
            if let Some(mut entry) = self.entries.get_mut(&key) {
                entry.in_flight = entry.in_flight.saturating_sub(1);
                if failed {
                    if now.duration_since(entry.since) >= WINDOW {
                        entry.since = now;
                        entry.failures = 0;
                    }
                    entry.failures = entry.failures.saturating_add(1);
                }
            }
            self.prune(now);
        }
        if failed {
            let mut global = lock(&self.global);
            if now.duration_since(global.since) >= WINDOW {
                *global = GlobalWindow {
                    since: now,
                    failures: 0,
                };
            }
            global.failures = global.failures.saturating_add(1);
        }
    }

    /// Forgets stale pairs now and then so the map stays small; at most once
    /// a second, so a flood of fresh pairs does not make every login scan it.
    fn prune(&self, now: Instant) {
        if self.entries.len() <= PRUNE_ABOVE {
            return;
        }
        {
            let mut last = lock(&self.last_prune);
            if now.duration_since(*last) < Duration::from_secs(1) {
                return;
            }
            *last = now;
        }
        self.entries
            .retain(|_, e| e.in_flight > 0 || now.duration_since(e.since) < WINDOW);
    }

    /// Pairs currently remembered (for tests).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A login attempt holding its place in the [`AuthLimiter`] while its
/// secret is checked. Dropped undecided (the login was cancelled, the relay
/// was too busy to check), it frees its place without counting a failure.
#[derive(Debug)]
#[must_use = "an attempt holds its place until it is decided"]
pub struct Attempt<'a> {
    limiter: &'a AuthLimiter,
    key: Option<(IpAddr, u32)>,
}

impl Attempt<'_> {
    /// The secret was right: the place is freed, nothing is counted.
    pub fn succeeded(mut self) {
        if let Some(key) = self.key.take() {
            self.limiter.settle(key, false, Instant::now());
        }
    }

    /// The secret was wrong: counted against the pair and the global budget.
    /// Returns whether failed logins are being slowed down (the global budget
    /// is exceeded), so the caller answers late.
    pub fn failed(mut self, now: Instant) -> bool {
        if let Some(key) = self.key.take() {
            self.limiter.settle(key, true, now);
        }
        self.limiter.slowing_down(now)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.limiter.settle(key, false, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_a_pair_after_the_limit_until_the_window_passes() {
        let limiter = AuthLimiter::new(3, 0);
        let (a, other) = (addr("127.0.0.1"), addr("127.0.0.2"));
        let start = Instant::now();
        for _ in 0..3 {
            let _ = limiter.try_reserve(a, 100, start).unwrap().failed(start);
        }
        assert_eq!(
            limiter.try_reserve(a, 100, start).unwrap_err(),
            RateLimited,
            "fourth try within the minute"
        );
        assert!(
            limiter.try_reserve(other, 100, start).is_ok(),
            "other addresses are unaffected"
        );
        assert!(
            limiter.try_reserve(a, 101, start).is_ok(),
            "other terminals behind the same address are unaffected"
        );
        assert!(
            limiter.try_reserve(a, 100, start + WINDOW).is_ok(),
            "a minute later"
        );
    }

    #[test]
    fn attempts_in_flight_count_until_they_are_decided() {
        let limiter = AuthLimiter::new(3, 0);
        let a = addr("10.0.0.1");
        let now = Instant::now();
        let held: Vec<_> = (0..3)
            .map(|_| limiter.try_reserve(a, 7, now).unwrap())
            .collect();
        assert!(
            limiter.try_reserve(a, 7, now).is_err(),
            "three checks in flight fill the limit"
        );
        let mut held = held.into_iter();
        held.next().unwrap().succeeded();
        let again = limiter
            .try_reserve(a, 7, now)
            .expect("a success frees its place");
        drop(again);
        drop(held.next());
        assert!(
            limiter.try_reserve(a, 7, now).is_ok(),
            "an undecided attempt frees its place without counting"
        );
        let _ = held.next().unwrap().failed(now);
        let fills: Vec<_> = (0..2)
            .map(|_| limiter.try_reserve(a, 7, now).unwrap())
            .collect();
        assert!(
            limiter.try_reserve(a, 7, now).is_err(),
            "one failure and two in flight fill the limit"
        );
        drop(fills);
    }

    #[test]
    fn zero_disables_the_pair_limit() {
        let limiter = AuthLimiter::new(0, 0);
        let a = addr("10.0.0.1");
        let now = Instant::now();
        for _ in 0..100 {
            let _ = limiter.try_reserve(a, 1, now).unwrap().failed(now);
        }
        assert!(limiter.try_reserve(a, 1, now).is_ok());
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn failures_past_the_global_budget_slow_everyone_down_for_the_window() {
        let limiter = AuthLimiter::new(10, 4);
        let now = Instant::now();
        for i in 0..4u8 {
            let ip = IpAddr::from([10, 0, 0, i]);
            assert!(
                !limiter.try_reserve(ip, 1, now).unwrap().failed(now),
                "within the budget"
            );
        }
        assert!(!limiter.slowing_down(now));
        assert!(
            limiter
                .try_reserve(addr("10.0.1.1"), 2, now)
                .unwrap()
                .failed(now),
            "the fifth failure exceeds the budget of four"
        );
        assert!(limiter.slowing_down(now), "everyone is slowed down");
        assert!(
            !limiter.slowing_down(now + WINDOW),
            "until the window passes"
        );
    }

    #[test]
    fn stale_pairs_are_forgotten_when_the_map_grows() {
        let limiter = AuthLimiter::new(10, 0);
        let start = Instant::now();
        for i in 0..=PRUNE_ABOVE as u32 {
            let _ = limiter
                .try_reserve(addr("10.0.0.1"), i, start)
                .unwrap()
                .failed(start);
        }
        let later = start + WINDOW + Duration::from_secs(2);
        let _ = limiter
            .try_reserve(addr("10.0.0.2"), 1, later)
            .unwrap()
            .failed(later);
        assert_eq!(limiter.tracked(), 1, "only the fresh pair is left");
    }
}
