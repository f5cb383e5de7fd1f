//! Latency windows for the dashboard: the relay's lock-free histograms read
//! once a second, turned into percentiles over the last second (one chart
//! point) and over the last [`HEADLINE_SECS`] seconds (the big figures).
//!
//! Only cumulative snapshots are kept (a few hundred bytes each), so any
//! window is one subtraction and the hot path is never asked for more than
//! a read of its counters.

use std::collections::VecDeque;

use serde::Serialize;

use ptt_relay_core::metrics::{Histogram, HistogramSnapshot};

/// Seconds of per-second points kept for the charts (five minutes).
pub(crate) const HISTORY_SECS: usize = 300;

/// Seconds the headline figures cover: a minute, so access time (one
/// observation per grant) still shows between calls; the charts show each
/// second.
pub(crate) const HEADLINE_SECS: usize = 60;

/// Percentiles of one window in whole microseconds, `None` without
/// observations (the page shows "—").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Percentiles {
    /// Median.
    pub(crate) p50: u64,
    /// 95th percentile.
    pub(crate) p95: u64,
    /// 99th percentile.
    pub(crate) p99: u64,
    /// Observations in the window.
    pub(crate) n: u64,
}

impl Percentiles {
    /// The percentiles of `window`, `None` if it is empty.
    pub(crate) fn of(window: &HistogramSnapshot) -> Option<Self> {
        let q = |q| window.quantile_us(q).map_or(0, |us| us.round() as u64);
        (window.count() > 0).then(|| Self {
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            n: window.count(),
        })
    }

    /// As a compact chart point: `[p50, p95, p99]`.
    fn triple(self) -> [u64; 3] {
        [self.p50, self.p95, self.p99]
    }
}

/// One second of the charts: when (Unix seconds) and the percentiles of
/// each series in that second (`null` where nothing was observed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Point {
    /// Unix time in seconds at the end of the second.
    pub(crate) t: i64,
    /// Forward latency `[p50, p95, p99]` in µs.
    pub(crate) fwd: Option<[u64; 3]>,
    /// Access time `[p50, p95, p99]` in µs.
    pub(crate) acc: Option<[u64; 3]>,
    /// Mean mouth-to-ear in µs over the terminals' last-minute reports
    /// (the terminals report means, not distributions).
    pub(crate) m2e: Option<u64>,
}

/// The big figures: each series over the last [`HEADLINE_SECS`] seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Headline {
    /// Seconds covered.
    pub(crate) window_s: usize,
    /// Datagram in → handed to every listener's connection.
    pub(crate) forward: Option<Percentiles>,
    /// Floor request → grant.
    pub(crate) access: Option<Percentiles>,
}

/// Cumulative snapshots of one histogram, one per second, newest last.
#[derive(Debug, Default)]
struct Series {
    ring: VecDeque<HistogramSnapshot>,
}

impl Series {
    fn push(&mut self, now: HistogramSnapshot) {
        if self.ring.len() > HEADLINE_SECS {
            self.ring.pop_front();
        }
        self.ring.push_back(now);
    }

    /// What was observed over the last `secs` seconds (fewer right after
    /// start).
    fn window(&self, secs: usize) -> HistogramSnapshot {
        let Some(newest) = self.ring.back() else {
            return HistogramSnapshot::default();
        };
        let back = secs.min(self.ring.len() - 1);
        match self.ring.get(self.ring.len() - 1 - back) {
            Some(earlier) if back > 0 => newest.since(earlier),
            _ => HistogramSnapshot::default(),
        }
    }
}

/// The latency figures and chart history, advanced once a second by the
/// dashboard's sampler.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    forward: Series,
    access: Series,
    history: VecDeque<Point>,
    headline: Option<Headline>,
}

impl Latency {
    /// Reads the histograms at Unix second `t`, adding one chart point and
    /// renewing the headline. `m2e_us` is the terminals' reported mean
    /// mouth-to-ear, if any terminal reported one.
    pub(crate) fn tick(
        &mut self,
        t: i64,
        forward: &Histogram,
        access: &Histogram,
        m2e_us: Option<u64>,
    ) {
        self.forward.push(forward.snapshot());
        self.access.push(access.snapshot());
        let last = |series: &Series| Percentiles::of(&series.window(1));
        let point = Point {
            t,
            fwd: last(&self.forward).map(Percentiles::triple),
            acc: last(&self.access).map(Percentiles::triple),
            m2e: m2e_us,
        };
        if self.history.len() >= HISTORY_SECS {
            self.history.pop_front();
        }
        self.history.push_back(point);
        let headline = |series: &Series| Percentiles::of(&series.window(HEADLINE_SECS));
        self.headline = Some(Headline {
            window_s: HEADLINE_SECS,
            forward: headline(&self.forward),
            access: headline(&self.access),
        });
    }

    /// The newest chart point.
    pub(crate) fn point(&self) -> Option<Point> {
        self.history.back().copied()
    }

    /// The headline figures of the last tick.
    pub(crate) fn headline(&self) -> Option<Headline> {
        self.headline
    }

    /// Every chart point kept, oldest first.
    pub(crate) fn history(&self) -> Vec<Point> {
        self.history.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_last_second_and_the_headline_span() {
        let (fwd, acc) = (Histogram::default(), Histogram::default());
        let mut latency = Latency::default();
        latency.tick(1, &fwd, &acc, None);
        // Nothing observed yet: no figures, a point of nulls.
        assert_eq!(latency.headline().unwrap().forward, None);
        assert_eq!(latency.point().unwrap().fwd, None);

        for _ in 0..100 {
            fwd.observe_us(40); // bucket (25, 50]
        }
        latency.tick(2, &fwd, &acc, None);
        let second = latency.point().unwrap().fwd.unwrap();
        assert!((25..=50).contains(&second[0]), "{second:?}");
        assert_eq!(latency.headline().unwrap().forward.unwrap().n, 100);

        // A quiet second: the chart point is empty, the headline still
        // holds the burst of a second ago.
        latency.tick(3, &fwd, &acc, None);
        assert_eq!(latency.point().unwrap().fwd, None);
        assert_eq!(latency.headline().unwrap().forward.unwrap().n, 100);

        // Past the headline span the old burst is gone.
        for t in 4..4 + HEADLINE_SECS as i64 {
            latency.tick(t, &fwd, &acc, None);
        }
        assert_eq!(latency.headline().unwrap().forward, None);
    }

    #[test]
    fn a_full_history_stays_under_32_kib() {
        // Five minutes of seconds with every series at seven digits: the
        // most a browser downloads when it opens the page.
        let point = Point {
            t: 1_800_000_000,
            fwd: Some([9_999_999; 3]),
            acc: Some([9_999_999; 3]),
            m2e: Some(9_999_999),
        };
        let json = serde_json::to_string(&vec![point; HISTORY_SECS]).unwrap();
        assert!(json.len() < 32 * 1024, "{} bytes", json.len());
    }

    #[test]
    fn history_is_bounded() {
        let (fwd, acc) = (Histogram::default(), Histogram::default());
        let mut latency = Latency::default();
        for t in 0..(HISTORY_SECS as i64 + 50) {
            acc.observe_us(120_000);
            latency.tick(t, &fwd, &acc, None);
        }
        let history = latency.history();
        assert_eq!(history.len(), HISTORY_SECS);
        assert_eq!(history.first().unwrap().t, 50);
        assert!(history.iter().all(|p| p.acc.is_some()));
    }
}
