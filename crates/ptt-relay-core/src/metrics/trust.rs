//! What a terminal's `QualityReport` may count for: nothing it says is taken
//! on trust.
//!
//! - **One report per terminal and interval.** A session counts a report at
//!   most every [`MIN_REPORT_GAP`]; extra reports are acknowledged, ignored
//!   and counted ([`ReportCounters::too_frequent`]).
//! - **Bounded by what the relay sent.** The relay counts the voice
//!   datagrams it hands each terminal's connection (`Link`); a counted
//!   report's entries together may weigh at most the datagrams handed to that
//!   terminal since its previous counted report (the *budget*). A report
//!   claiming more frames received than that is a lie: counted
//!   ([`ReportCounters::overclaimed`]) and scaled down. Lost frames can never
//!   exceed the budget either.
//! - **One terminal weighs as one listener.** Scaling keeps the ratios the
//!   terminal claims (its loss, its delays: its own testimony, which the
//!   relay cannot check) and cuts only their weight to the budget, so the
//!   group's figures stay frame-weighted — the loss ratio is still "frames
//!   lost / frames sent to the listeners", a listener that heard a minute
//!   weighs more than one that heard a second — while a liar weighs at most
//!   what an honest listener of the same talk weighs, and a terminal the
//!   relay sent nothing (the talker itself) weighs nothing. Latency means and
//!   percentiles use the same capped weights.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ptt_proto::pb;

use super::quality::{BoundedEntry, ClientQuality, MAX_FRAMES_PER_REPORT};

/// Shortest time between two counted reports of one session. Clients report
/// every [`super::quality::SLOT`] (5 s) or slower; 4 s leaves room for a
/// report that travelled faster than its predecessor.
pub const MIN_REPORT_GAP: Duration = Duration::from_secs(4);

/// Frames a report may claim beyond the budget before it counts as a lie:
/// a report is cut by the terminal a little before the relay reads its
/// counter, so the frames in flight around the cut land in the neighbouring
/// interval (at 50 frames/s, half a second of one talker). The entry is
/// bounded by the budget all the same.
pub const OVERCLAIM_SLACK: u64 = 25;

/// What one session's counted reports have used up so far; lives on the
/// session's `Link` and is only touched by its control path.
#[derive(Debug, Default)]
pub struct ReportLedger {
    last_counted: Option<Instant>,
    handed_at_last: u64,
}

impl ReportLedger {
    /// Whether a report received at `now` counts, and if so its budget:
    /// the datagrams handed to the terminal (`handed_total`, since the
    /// session began) since the previous counted report.
    pub fn admit(&mut self, handed_total: u64, now: Instant) -> Option<u64> {
        if let Some(last) = self.last_counted
            && now.saturating_duration_since(last) < MIN_REPORT_GAP
        {
            return None;
        }
        let budget = handed_total.saturating_sub(self.handed_at_last);
        self.last_counted = Some(now);
        self.handed_at_last = handed_total;
        Some(budget)
    }
}

/// How the sessions' quality reports fared, relay-wide.
#[derive(Debug, Default)]
pub struct ReportCounters {
    accepted: AtomicU64,
    too_frequent: AtomicU64,
    overclaimed: AtomicU64,
    frames_overclaimed: AtomicU64,
}

impl ReportCounters {
    /// Reports counted into the figures.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Reports ignored: another report of the same session was counted less
    /// than [`MIN_REPORT_GAP`] before.
    pub fn too_frequent(&self) -> u64 {
        self.too_frequent.load(Ordering::Relaxed)
    }

    /// Counted reports that claimed more frames received than the relay sent
    /// the terminal (beyond [`OVERCLAIM_SLACK`]): lies, bounded.
    pub fn overclaimed(&self) -> u64 {
        self.overclaimed.load(Ordering::Relaxed)
    }

    /// Frames received those reports claimed beyond what the relay sent.
    pub fn frames_overclaimed(&self) -> u64 {
        self.frames_overclaimed.load(Ordering::Relaxed)
    }
}

/// What became of one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted, with the entries bounded by `budget` frames.
    Counted {
        /// Datagrams the relay handed the terminal in the interval.
        budget: u64,
        /// Whether it claimed more frames received than that.
        overclaimed: bool,
    },
    /// Ignored: too soon after the session's previous counted report.
    TooFrequent,
}

/// Takes a session's report received at `now`: admitted by the session's
/// `ledger` against `handed_total` (datagrams handed to the terminal since
/// its session began), its entries for groups the terminal `hears` bounded
/// and recorded into `quality`, the outcome counted in `counters`.
pub fn take_report(
    quality: &ClientQuality,
    counters: &ReportCounters,
    ledger: &Mutex<ReportLedger>,
    handed_total: u64,
    report: &pb::QualityReport,
    hears: impl Fn(u32) -> bool,
    now: Instant,
) -> Verdict {
    let admitted = ledger
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .admit(handed_total, now);
    let Some(budget) = admitted else {
        counters.too_frequent.fetch_add(1, Ordering::Relaxed);
        return Verdict::TooFrequent;
    };
    let entries: Vec<BoundedEntry> = report
        .groups
        .iter()
        .filter(|entry| hears(entry.group_id))
        .map(BoundedEntry::as_claimed)
        .collect();
    let (entries, overclaim) = bound(entries, budget);
    for entry in &entries {
        quality.record_bounded(entry, now);
    }
    counters.accepted.fetch_add(1, Ordering::Relaxed);
    let overclaimed = overclaim > OVERCLAIM_SLACK;
    if overclaimed {
        counters.overclaimed.fetch_add(1, Ordering::Relaxed);
        counters
            .frames_overclaimed
            .fetch_add(overclaim, Ordering::Relaxed);
    }
    Verdict::Counted {
        budget,
        overclaimed,
    }
}

/// Scales `entries` so together they weigh at most `budget` frames,
/// keeping each entry's received/lost ratio; returns them with the frames
/// received they claimed beyond `budget`.
pub fn bound(mut entries: Vec<BoundedEntry>, budget: u64) -> (Vec<BoundedEntry>, u64) {
    let received: u64 = entries.iter().map(|e| e.received).sum();
    let claimed: u64 = entries
        .iter()
        .map(|e| e.received.saturating_add(e.lost))
        .fold(0, u64::saturating_add);
    let overclaim = received.saturating_sub(budget);
    if claimed > budget {
        // claimed <= entries × MAX_FRAMES_PER_REPORT: no overflow in u128.
        let scale = |frames: u64| {
            let scaled = (u128::from(frames) * u128::from(budget) + u128::from(claimed) / 2)
                / u128::from(claimed);
            u64::try_from(scaled).unwrap_or(MAX_FRAMES_PER_REPORT)
        };
        for entry in &mut entries {
            entry.received = scale(entry.received);
            entry.lost = scale(entry.lost).min(budget);
        }
    }
    (entries, overclaim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(group_id: u32, received: u64, lost: u64, latency_us: u32) -> pb::GroupQuality {
        pb::GroupQuality {
            group_id,
            frames_received: received,
            frames_lost: lost,
            latency_mean_us: latency_us,
            latency_p95_us: latency_us * 2,
            ..pb::GroupQuality::default()
        }
    }

    fn report(entries: Vec<pb::GroupQuality>) -> pb::QualityReport {
        pb::QualityReport {
            interval_ms: 5_000,
            groups: entries,
        }
    }

    #[test]
    fn a_lie_weighs_as_one_listener_and_is_counted() {
        let (q, counters) = (ClientQuality::default(), ReportCounters::default());
        let now = Instant::now();
        // Three honest listeners were each sent 100 frames and lost half.
        for _ in 0..3 {
            let ledger = Mutex::default();
            let honest = report(vec![entry(7, 50, 50, 150_000)]);
            let verdict = take_report(&q, &counters, &ledger, 100, &honest, |_| true, now);
            assert_eq!(
                verdict,
                Verdict::Counted {
                    budget: 100,
                    overclaimed: false
                }
            );
        }
        // A fourth, sent the same 100, claims a million frames and no loss.
        let liar = Mutex::default();
        let lie = report(vec![entry(7, 1_000_000, 0, 1_000)]);
        let verdict = take_report(&q, &counters, &liar, 100, &lie, |_| true, now);
        assert!(matches!(
            verdict,
            Verdict::Counted {
                overclaimed: true,
                ..
            }
        ));
        let f = q.group(7, now).unwrap();
        assert_eq!(f.loss_ratio, Some(150.0 / 400.0));
        let m2e = f.mouth_to_ear.unwrap().as_micros();
        assert_eq!(m2e, (3 * 50 * 150_000 + 100 * 1_000) / 250);
        assert_eq!(counters.accepted(), 4);
        assert_eq!(counters.overclaimed(), 1);
        assert_eq!(counters.frames_overclaimed(), 1_000_000 - 100);
        // The talker was sent nothing: its lie weighs nothing.
        let talker = Mutex::default();
        take_report(&q, &counters, &talker, 0, &lie, |_| true, now);
        assert_eq!(q.group(7, now).unwrap().loss_ratio, Some(150.0 / 400.0));
    }

    #[test]
    fn one_report_per_interval_counts_and_the_budget_is_per_interval() {
        let (q, counters) = (ClientQuality::default(), ReportCounters::default());
        let ledger = Mutex::default();
        let t0 = Instant::now();
        let fake = report(vec![entry(3, 100, 0, 0)]);
        for i in 0..5 {
            let at = t0 + Duration::from_millis(100 * i);
            take_report(&q, &counters, &ledger, 100, &fake, |_| true, at);
        }
        assert_eq!((counters.accepted(), counters.too_frequent()), (1, 4));
        assert_eq!(q.group(3, t0).unwrap().reports, 1);
        // The next interval's budget is what was handed since: 40 frames.
        let later = t0 + MIN_REPORT_GAP;
        take_report(&q, &counters, &ledger, 140, &fake, |_| true, later);
        let f = q.group(3, later).unwrap();
        assert_eq!(f.frames_received, 140);
        assert_eq!(counters.overclaimed(), 1, "100 claimed, 40 sent");
    }

    #[test]
    fn entries_share_the_budget_keep_their_ratios_and_unheard_groups_drop() {
        let (q, counters) = (ClientQuality::default(), ReportCounters::default());
        let now = Instant::now();
        let two = report(vec![
            entry(1, 90, 10, 0),
            entry(2, 60, 40, 0),
            entry(9, 500, 0, 0),
        ]);
        take_report(&q, &counters, &Mutex::default(), 20, &two, |g| g != 9, now);
        let (one, two) = (q.group(1, now).unwrap(), q.group(2, now).unwrap());
        assert_eq!((one.frames_received, one.frames_lost), (9, 1));
        assert_eq!((two.frames_received, two.frames_lost), (6, 4));
        assert_eq!(q.group(9, now), None);
        // 150 received claimed against 20 sent: a lie.
        assert_eq!(counters.overclaimed(), 1);
    }
}
