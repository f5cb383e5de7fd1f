//! The rate limit of wrong tokens on the ops port: per source address and for all
//! addresses together, each in windows of a minute.
//!
//! A window opens with the first failure and lasts [`WINDOW_MS`]; once a window holds
//! its limit of failures, every token presented in it (right or wrong) is answered 429
//! without being compared, so a guesser learns nothing more until the window is over.
//! An IPv6 source is counted by its /64, which one host usually holds whole.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Length of a window.
pub(crate) const WINDOW_MS: u64 = 60_000;

/// Addresses tracked at most; beyond it only the total limit applies to new ones.
const MAX_TRACKED: usize = 4096;

/// Counts wrong tokens and says when a source must wait.
#[derive(Debug)]
pub(crate) struct TokenLimit {
    per_address: u32,
    total: u32,
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    total: Window,
    by_source: HashMap<IpAddr, Window>,
}

/// Failures since `start_ms`.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    start_ms: u64,
    failures: u32,
}

impl Window {
    /// The failures still in the window at `now_ms`.
    fn current(self, now_ms: u64) -> u32 {
        if now_ms >= self.start_ms + WINDOW_MS {
            0
        } else {
            self.failures
        }
    }

    fn count(&mut self, now_ms: u64) {
        if self.current(now_ms) == 0 {
            *self = Window {
                start_ms: now_ms,
                failures: 0,
            };
        }
        self.failures += 1;
    }

    /// `Some(ms to wait)` if the window holds `limit` failures (0 is no limit).
    fn full(self, limit: u32, now_ms: u64) -> Option<u64> {
        (limit > 0 && self.current(now_ms) >= limit).then(|| self.start_ms + WINDOW_MS - now_ms)
    }
}

/// A token refused unchecked: how long until it would be compared again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limited {
    pub(crate) wait_ms: u64,
}

impl TokenLimit {
    /// `per_address` and `total` wrong tokens a minute (0: no limit).
    pub(crate) fn new(per_address: u32, total: u32) -> Self {
        Self {
            per_address,
            total,
            windows: Mutex::new(Windows::default()),
        }
    }

    /// Whether a token from `source` may be compared at `now_ms`.
    pub(crate) fn check(&self, source: Option<IpAddr>, now_ms: u64) -> Result<(), Limited> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let own = source
            .and_then(|s| windows.by_source.get(&key(s)).copied())
            .and_then(|w| w.full(self.per_address, now_ms));
        match own.max(windows.total.full(self.total, now_ms)) {
            Some(wait_ms) => Err(Limited { wait_ms }),
            None => Ok(()),
        }
    }

    /// Counts a wrong (or missing) token from `source` at `now_ms`.
    pub(crate) fn failed(&self, source: Option<IpAddr>, now_ms: u64) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.total.count(now_ms);
        let Some(source) = source.map(key) else {
            return;
        };
        let tracked = &mut windows.by_source;
        if tracked.len() >= MAX_TRACKED && !tracked.contains_key(&source) {
            tracked.retain(|_, w| w.current(now_ms) > 0);
            if tracked.len() >= MAX_TRACKED {
                return;
            }
        }
        tracked.entry(source).or_default().count(now_ms);
    }
}

/// What an address is counted as: itself, or its /64 for IPv6.
fn key(source: IpAddr) -> IpAddr {
    match source.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// The request's source address, as the ops server records it for every request.
pub(crate) fn source(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())
}

impl IntoResponse for Limited {
    /// 429 in the JSON error shape, with `Retry-After`.
    fn into_response(self) -> Response {
        let seconds = self.wait_ms.div_ceil(1000).max(1);
        let message = format!("too many wrong tokens; try again in {seconds} s");
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn an_address_waits_out_its_minute_after_its_limit() {
        let limit = TokenLimit::new(3, 0);
        for t in 0..3 {
            assert_eq!(limit.check(ip("10.0.0.1"), 1_000 + t), Ok(()));
            limit.failed(ip("10.0.0.1"), 1_000 + t);
        }
        assert_eq!(
            limit.check(ip("10.0.0.1"), 2_000),
            Err(Limited { wait_ms: 59_000 })
        );
        // Others are not held up, and the window ends a minute after its first failure.
        assert_eq!(limit.check(ip("10.0.0.2"), 2_000), Ok(()));
        assert_eq!(limit.check(ip("10.0.0.1"), 61_000), Ok(()));
        limit.failed(ip("10.0.0.1"), 61_000);
        assert_eq!(limit.check(ip("10.0.0.1"), 61_001), Ok(()));
    }

    #[test]
    fn the_total_limit_holds_everyone_and_ipv6_counts_by_64() {
        let limit = TokenLimit::new(2, 3);
        limit.failed(ip("2001:db8::1"), 0);
        limit.failed(ip("2001:db8::2"), 1);
        assert!(limit.check(ip("2001:db8::3"), 2).is_err(), "same /64");
        assert_eq!(limit.check(ip("2001:db8:0:1::1"), 2), Ok(()));
        limit.failed(None, 3);
        assert_eq!(
            limit.check(ip("192.0.2.9"), 4),
            Err(Limited { wait_ms: 59_996 })
        );
        assert_eq!(limit.check(ip("192.0.2.9"), 60_000), Ok(()));
        assert_eq!(
            key("::ffff:192.0.2.9".parse().unwrap()),
            ip("192.0.2.9").unwrap()
        );
    }

    #[test]
    fn no_limit_when_zero_and_the_map_stays_bounded() {
        let limit = TokenLimit::new(0, 0);
        for n in 0..(MAX_TRACKED as u32 + 10) {
            limit.failed(Some(IpAddr::from(n.to_be_bytes())), 5);
        }
        assert_eq!(limit.check(ip("0.0.0.1"), 6), Ok(()));
        let tracked = limit.windows.lock().unwrap().by_source.len();
        assert_eq!(tracked, MAX_TRACKED);
    }
}
