//! What the listeners hear, per group, as the terminals themselves report it
//! (`QualityReport`, proto/ptt.proto): mouth-to-ear latency, jitter and loss
//! over the last minute.
//!
//! The relay only sees its own share of the delay; the operators' "latency
//! you can see" view (ARCHITECTURE §1) needs the clients' figures too. Each
//! group keeps twelve five-second slots of sums, so a report costs a few
//! additions and reading a group's last minute costs twelve, whatever the
//! number of terminals. Reports come on the control path (one per terminal
//! every few seconds), never on the voice path, so one mutex over the map is
//! plenty; the scrape and the dashboard take it briefly and nothing on the
//! hot path ever does.
//!
//! Nothing a terminal says is trusted as is: a session's report goes through
//! [`super::trust`] first (one counted report per terminal and interval, its
//! frames bounded by what the relay sent that terminal), so each entry
//! recorded here weighs at most the frames the relay really sent the
//! reporter, and one terminal counts as one listener at most, never as the
//! whole group.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ptt_proto::pb;

/// Length of one slot of the rolling window.
pub const SLOT: Duration = Duration::from_secs(5);

/// Slots in the rolling window: together the last minute.
pub const SLOTS: usize = 12;

/// Largest latency or jitter a report may claim; larger values are clamped,
/// so one broken or hostile terminal cannot push a group's mean to hours.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// Most frames one report may claim (received plus lost): a 5 s report at
/// 50 frames/s holds 250; this leaves room for long intervals while keeping
/// a bogus report from outweighing every honest one for good.
pub const MAX_FRAMES_PER_REPORT: u64 = 1_000_000;

/// Per-group rolling figures from the terminals' quality reports.
#[derive(Debug)]
pub struct ClientQuality {
    start: Instant,
    groups: Mutex<HashMap<u32, Window>>,
}

impl Default for ClientQuality {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            groups: Mutex::new(HashMap::new()),
        }
    }
}

/// One group's client figures over the last minute (see [`SLOTS`] × [`SLOT`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GroupFigures {
    /// Reports that covered the group.
    pub reports: u64,
    /// Frames the reporting listeners received.
    pub frames_received: u64,
    /// Frames they never received.
    pub frames_lost: u64,
    /// Mean mouth-to-ear (sender timestamp → receipt) latency, weighted by
    /// frames received; `None` if no report carried a latency.
    pub mouth_to_ear: Option<Duration>,
    /// The listeners' 95th percentile of mouth-to-ear, averaged with the
    /// same (capped) frame weights; `None` if no report carried one.
    pub mouth_to_ear_p95: Option<Duration>,
    /// Mean interarrival jitter, weighted by frames received; `None` without
    /// frames.
    pub jitter: Option<Duration>,
    /// Lost / (received + lost); `None` without frames.
    pub loss_ratio: Option<f64>,
}

/// One group's entry of a report as it is counted: frames already bounded
/// (see [`super::trust`]), delays as the terminal claimed them (clamped to
/// [`MAX_DELAY`] when recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BoundedEntry {
    /// The group.
    pub group_id: u32,
    /// Frames received, at most what the relay sent the terminal.
    pub received: u64,
    /// Frames lost, at most what the relay sent the terminal.
    pub lost: u64,
    /// Claimed mean mouth-to-ear, µs (0: not measured).
    pub latency_mean_us: u32,
    /// Claimed 95th percentile of mouth-to-ear, µs (0: not measured).
    pub latency_p95_us: u32,
    /// Claimed jitter, µs.
    pub jitter_us: u32,
}

impl BoundedEntry {
    /// The entry as claimed, frames clamped to [`MAX_FRAMES_PER_REPORT`]
    /// only: for figures that come from a trusted source (tests, benches).
    pub fn as_claimed(report: &pb::GroupQuality) -> Self {
        let lost = report.frames_lost.min(MAX_FRAMES_PER_REPORT);
        let received = report
            .frames_received
            .min(MAX_FRAMES_PER_REPORT.saturating_sub(lost));
        Self {
            group_id: report.group_id,
            received,
            lost,
            latency_mean_us: report.latency_mean_us,
            latency_p95_us: report.latency_p95_us,
            jitter_us: report.jitter_us,
        }
    }
}

impl ClientQuality {
    /// Adds one group's entry, taken as claimed (frames clamped to
    /// [`MAX_FRAMES_PER_REPORT`] only), received at `now`. Sessions go
    /// through [`super::trust::take_report`] instead, which bounds the
    /// entry by what the relay sent the terminal.
    pub fn record(&self, report: &pb::GroupQuality, now: Instant) {
        self.record_bounded(&BoundedEntry::as_claimed(report), now);
    }

    /// Adds one checked entry received at `now`. The caller checks the group
    /// exists and the terminal hears it, so the map holds configured groups
    /// only (and the metric labels stay bounded).
    pub fn record_bounded(&self, entry: &BoundedEntry, now: Instant) {
        let slot = self.slot_index(now);
        let mut groups = self.lock();
        let window = groups.entry(entry.group_id).or_default();
        window.slot(slot).add(entry);
    }

    /// The figures of group `group` over the minute before `now`, `None` if
    /// no terminal reported on it in that time.
    pub fn group(&self, group: u32, now: Instant) -> Option<GroupFigures> {
        let slot = self.slot_index(now);
        let groups = self.lock();
        groups.get(&group).and_then(|w| w.figures(slot))
    }

    /// The figures of every group reported on in the minute before `now`,
    /// sorted by group id.
    pub fn all(&self, now: Instant) -> Vec<(u32, GroupFigures)> {
        let slot = self.slot_index(now);
        let mut out: Vec<(u32, GroupFigures)> = {
            let groups = self.lock();
            groups
                .iter()
                .filter_map(|(&id, w)| w.figures(slot).map(|f| (id, f)))
                .collect()
        };
        out.sort_unstable_by_key(|&(id, _)| id);
        out
    }

    fn slot_index(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        elapsed.as_secs() / SLOT.as_secs()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Window>> {
        // A panic while holding the lock leaves sums that are still sums.
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The slots of one group, indexed by slot number modulo [`SLOTS`].
#[derive(Debug, Default)]
struct Window {
    slots: [Slot; SLOTS],
}

impl Window {
    /// The slot for `index`, emptied first if it still holds an older one.
    fn slot(&mut self, index: u64) -> &mut Slot {
        let slot = &mut self.slots[(index % SLOTS as u64) as usize];
        if slot.index != index {
            *slot = Slot {
                index,
                ..Slot::default()
            };
        }
        slot
    }

    /// Sums over the slots of the last minute up to slot `now`.
    fn figures(&self, now: u64) -> Option<GroupFigures> {
        let mut sum = Slot::default();
        for slot in &self.slots {
            let fresh = slot.reports > 0 && slot.index <= now && now - slot.index < SLOTS as u64;
            if fresh {
                sum.merge(slot);
            }
        }
        (sum.reports > 0).then(|| sum.figures())
    }
}

/// Sums of the reports of one five-second slot.
#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    index: u64,
    reports: u64,
    received: u64,
    lost: u64,
    /// Σ latency_mean_us × frames, over reports that carried a latency.
    latency_weighted_us: u128,
    latency_frames: u64,
    /// Σ latency_p95_us × frames, over reports that carried a percentile.
    p95_weighted_us: u128,
    p95_frames: u64,
    /// Σ jitter_us × frames.
    jitter_weighted_us: u128,
}

impl Slot {
    fn add(&mut self, report: &BoundedEntry) {
        let max_us = MAX_DELAY.as_micros() as u64;
        let (received, lost) = (report.received, report.lost);
        self.reports += 1;
        self.received = self.received.saturating_add(received);
        self.lost = self.lost.saturating_add(lost);
        // A latency of 0 means the terminal measured none (no clock offset
        // yet, or no timestamped frame): it says nothing about the delay.
        if report.latency_mean_us > 0 {
            let latency = u64::from(report.latency_mean_us).min(max_us);
            self.latency_weighted_us += u128::from(latency) * u128::from(received);
            self.latency_frames = self.latency_frames.saturating_add(received);
        }
        if report.latency_p95_us > 0 {
            let p95 = u64::from(report.latency_p95_us).min(max_us);
            self.p95_weighted_us += u128::from(p95) * u128::from(received);
            self.p95_frames = self.p95_frames.saturating_add(received);
        }
        let jitter = u64::from(report.jitter_us).min(max_us);
        self.jitter_weighted_us += u128::from(jitter) * u128::from(received);
    }

    fn merge(&mut self, other: &Slot) {
        self.reports += other.reports;
        self.received = self.received.saturating_add(other.received);
        self.lost = self.lost.saturating_add(other.lost);
        self.latency_weighted_us += other.latency_weighted_us;
        self.latency_frames = self.latency_frames.saturating_add(other.latency_frames);
        self.p95_weighted_us += other.p95_weighted_us;
        self.p95_frames = self.p95_frames.saturating_add(other.p95_frames);
        self.jitter_weighted_us += other.jitter_weighted_us;
    }

    fn figures(&self) -> GroupFigures {
        let mean = |weighted: u128, frames: u64| {
            (frames > 0).then(|| {
                let us = weighted / u128::from(frames);
                Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
            })
        };
        let total = self.received.saturating_add(self.lost);
        GroupFigures {
            reports: self.reports,
            frames_received: self.received,
            frames_lost: self.lost,
            mouth_to_ear: mean(self.latency_weighted_us, self.latency_frames),
            mouth_to_ear_p95: mean(self.p95_weighted_us, self.p95_frames),
            jitter: mean(self.jitter_weighted_us, self.received),
            loss_ratio: (total > 0).then(|| self.lost as f64 / total as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(
        group: u32,
        received: u64,
        lost: u64,
        latency_us: u32,
        jitter_us: u32,
    ) -> pb::GroupQuality {
        pb::GroupQuality {
            group_id: group,
            frames_received: received,
            frames_lost: lost,
            latency_mean_us: latency_us,
            jitter_us,
            ..pb::GroupQuality::default()
        }
    }

    #[test]
    fn figures_are_frame_weighted_means_over_the_reports() {
        let q = ClientQuality::default();
        let now = q.start;
        q.record(&report(7, 300, 0, 40_000, 2_000), now);
        q.record(
            &report(7, 100, 100, 80_000, 6_000),
            now + Duration::from_secs(7),
        );
        let f = q.group(7, now + Duration::from_secs(8)).unwrap();
        assert_eq!(f.reports, 2);
        assert_eq!(f.frames_received, 400);
        assert_eq!(f.frames_lost, 100);
        assert_eq!(f.mouth_to_ear, Some(Duration::from_micros(50_000)));
        assert_eq!(f.jitter, Some(Duration::from_micros(3_000)));
        assert_eq!(f.loss_ratio, Some(0.2));
        assert_eq!(q.group(8, now), None);
        assert_eq!(q.all(now + Duration::from_secs(8)), vec![(7, f)]);
    }

    #[test]
    fn reports_older_than_a_minute_fall_out() {
        let q = ClientQuality::default();
        let t0 = q.start;
        q.record(&report(1, 100, 0, 30_000, 1_000), t0);
        q.record(
            &report(1, 100, 0, 90_000, 1_000),
            t0 + Duration::from_secs(30),
        );
        let both = q.group(1, t0 + Duration::from_secs(59)).unwrap();
        assert_eq!(both.reports, 2);
        let later = q.group(1, t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(later.reports, 1);
        assert_eq!(later.mouth_to_ear, Some(Duration::from_micros(90_000)));
        // The slot of t0 is reused (same index modulo SLOTS) and emptied first.
        q.record(&report(1, 10, 10, 0, 0), t0 + Duration::from_secs(60));
        let reused = q.group(1, t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(reused.reports, 2);
        assert_eq!(reused.frames_received, 110);
        assert_eq!(q.group(1, t0 + Duration::from_secs(200)), None);
    }

    #[test]
    fn unknown_latency_and_hostile_values_do_not_distort_the_figures() {
        let q = ClientQuality::default();
        let now = q.start;
        // No latency measured: jitter and loss count, latency does not.
        q.record(&report(3, 50, 0, 0, 1_000), now);
        assert_eq!(q.group(3, now).unwrap().mouth_to_ear, None);
        // Absurd claims are clamped.
        q.record(&report(3, u64::MAX, 0, u32::MAX, u32::MAX), now);
        q.record(&report(3, u64::MAX, u64::MAX, u32::MAX, u32::MAX), now);
        let f = q.group(3, now).unwrap();
        assert_eq!(f.frames_received, 50 + MAX_FRAMES_PER_REPORT);
        assert_eq!(f.frames_lost, MAX_FRAMES_PER_REPORT);
        assert_eq!(f.mouth_to_ear, Some(MAX_DELAY));
        assert!(f.jitter.unwrap() <= MAX_DELAY);
        let ratio = f.loss_ratio.unwrap();
        assert!((0.0..=1.0).contains(&ratio), "{ratio}");
    }
}
