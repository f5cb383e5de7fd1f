//! Receive-quality counters per group, turned into the `QualityReport`s the
//! operators' latency/loss view is built from.
//!
//! The client feeds every voice datagram it receives into the meter
//! (received, lost, duplicate, jitter, latency: what arrival alone tells).
//! Whoever plays the audio (the jitter buffer, or the caller) adds what only
//! playout knows, late and concealed frames, with [`QualityMeter::record_late`]
//! and [`QualityMeter::record_concealed`]. [`QualityMeter::take_report`]
//! builds one report for the interval and starts the next.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ptt_proto::pb;
use ptt_proto::voice::seq_cmp;

/// Latency samples kept per group and interval for the percentiles (five
/// minutes of one talker); past it only the mean is updated.
const MAX_SAMPLES: usize = 15_000;

/// Sequence window remembered below the newest frame, to tell a late frame
/// from a duplicate.
const WINDOW: i32 = 64;

/// Arrival state of one burst.
#[derive(Debug, Clone, Copy)]
struct BurstTrack {
    burst: u32,
    /// Highest sequence seen.
    top: u16,
    /// Bit i set: frame `top - i` was received.
    seen: u64,
    /// Previous (arrival µs, sender µs) for the jitter estimate.
    last_transit: Option<(u64, u64)>,
}

/// Counters of one group over the current interval.
#[derive(Debug, Default, Clone)]
struct GroupCounters {
    received: u64,
    lost: u64,
    late: u64,
    concealed: u64,
    duplicate: u64,
    /// RFC 3550 interarrival jitter estimate, µs (carried across intervals).
    jitter_us: f64,
    latency_sum_us: u64,
    latency_count: u64,
    latency_samples: Vec<u32>,
    track: Option<BurstTrack>,
}

impl GroupCounters {
    fn is_empty(&self) -> bool {
        self.received == 0 && self.lost == 0 && self.late == 0 && self.concealed == 0
    }
}

/// Per-group receive-quality counters; shared by the client (arrivals) and
/// the playout side (late and concealed frames). Cheap to update from any
/// task.
#[derive(Debug, Default)]
pub struct QualityMeter {
    groups: Mutex<HashMap<u32, GroupCounters>>,
}

impl QualityMeter {
    /// An empty meter.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn with_group(&self, group: u32, f: impl FnOnce(&mut GroupCounters)) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        f(groups.entry(group).or_default());
    }

    /// Counts one received voice frame. `received_unix_us` is this client's
    /// clock at arrival and `clock_offset_us` the relay-estimated offset of
    /// the sender's clock (0 if unknown); together they give the one-way
    /// latency (voice.md §3.3).
    pub fn record_frame(
        &self,
        group: u32,
        burst: u32,
        sequence: u16,
        sender_timestamp_us: u64,
        received_unix_us: u64,
        clock_offset_us: i64,
    ) {
        self.with_group(group, |g| {
            let track = match &mut g.track {
                Some(track) if track.burst == burst => track,
                slot => {
                    // A new burst: any first sequence is accepted (late entry).
                    g.received += 1;
                    *slot = Some(BurstTrack {
                        burst,
                        top: sequence,
                        seen: 1,
                        last_transit: Some((received_unix_us, sender_timestamp_us)),
                    });
                    record_latency(g, sender_timestamp_us, received_unix_us, clock_offset_us);
                    return;
                }
            };
            let distance = i32::from(seq_cmp(sequence, track.top));
            if distance > 0 {
                g.lost += u64::try_from(distance - 1).unwrap_or(0);
                track.seen = if distance >= WINDOW {
                    1
                } else {
                    (track.seen << distance) | 1
                };
                track.top = sequence;
            } else if distance == 0 {
                g.duplicate += 1;
                return;
            } else if -distance < WINDOW {
                let bit = 1u64 << (-distance);
                if track.seen & bit != 0 {
                    g.duplicate += 1;
                    return;
                }
                // A reordered frame that was counted as lost.
                track.seen |= bit;
                g.lost = g.lost.saturating_sub(1);
            } else {
                // Far older than anything remembered: too late to matter.
                g.late += 1;
                return;
            }
            g.received += 1;
            if let Some((prev_arrival, prev_sent)) = track.last_transit {
                // D = (Rj - Ri) - (Sj - Si); J += (|D| - J) / 16.
                let d = (received_unix_us as f64 - prev_arrival as f64)
                    - (sender_timestamp_us as f64 - prev_sent as f64);
                g.jitter_us += (d.abs() - g.jitter_us) / 16.0;
            }
            track.last_transit = Some((received_unix_us, sender_timestamp_us));
            record_latency(g, sender_timestamp_us, received_unix_us, clock_offset_us);
        });
    }

    /// Counts frames of `group` that arrived after their playout time.
    pub fn record_late(&self, group: u32, frames: u64) {
        self.with_group(group, |g| g.late += frames);
    }

    /// Counts frames of `group` the decoder concealed (PLC/FEC).
    pub fn record_concealed(&self, group: u32, frames: u64) {
        self.with_group(group, |g| g.concealed += frames);
    }

    /// The report for the interval that just ended (`interval` long), one
    /// entry per group that carried voice; `None` if none did. Counters
    /// restart from zero; the jitter estimate and burst tracking carry on.
    pub fn take_report(&self, interval: Duration) -> Option<pb::QualityReport> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let mut entries = Vec::new();
        for (&group_id, g) in groups.iter_mut() {
            if g.is_empty() {
                continue;
            }
            entries.push(entry(group_id, g));
            *g = GroupCounters {
                jitter_us: g.jitter_us,
                track: g.track,
                ..GroupCounters::default()
            };
        }
        if entries.is_empty() {
            return None;
        }
        entries.sort_by_key(|e| e.group_id);
        Some(pb::QualityReport {
            interval_ms: u32::try_from(interval.as_millis()).unwrap_or(u32::MAX),
            groups: entries,
        })
    }
}

fn record_latency(g: &mut GroupCounters, sent_us: u64, received_us: u64, offset_us: i64) {
    // Sender clock mapped to ours: sent - offset (offset = sender - ours).
    let latency = i128::from(received_us) - i128::from(sent_us) + i128::from(offset_us);
    let Ok(latency) = u32::try_from(latency.max(0)) else {
        return; // more than an hour: a clock that is simply wrong
    };
    g.latency_sum_us += u64::from(latency);
    g.latency_count += 1;
    if g.latency_samples.len() < MAX_SAMPLES {
        g.latency_samples.push(latency);
    }
}

fn entry(group_id: u32, g: &mut GroupCounters) -> pb::GroupQuality {
    let total = g.received + g.lost;
    let loss_ppm = (g.lost.saturating_mul(1_000_000))
        .checked_div(total)
        .map_or(0, |ppm| u32::try_from(ppm).unwrap_or(u32::MAX));
    g.latency_samples.sort_unstable();
    let percentile = |p: usize| -> u32 {
        let n = g.latency_samples.len();
        if n == 0 {
            return 0;
        }
        g.latency_samples[((n - 1) * p / 100).min(n - 1)]
    };
    pb::GroupQuality {
        group_id,
        frames_received: g.received,
        frames_lost: g.lost,
        frames_late: g.late,
        frames_concealed: g.concealed,
        frames_duplicate: g.duplicate,
        loss_ppm,
        jitter_us: g.jitter_us as u32,
        latency_mean_us: g
            .latency_sum_us
            .checked_div(g.latency_count)
            .map_or(0, |m| u32::try_from(m).unwrap_or(u32::MAX)),
        latency_p95_us: percentile(95),
        latency_p99_us: percentile(99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_reordering_and_duplicates() {
        let meter = QualityMeter::new();
        let frame = |seq: u16| {
            meter.record_frame(
                7,
                1,
                seq,
                u64::from(seq) * 20_000,
                u64::from(seq) * 20_000 + 5_000,
                0,
            )
        };
        for seq in [0, 1, 3, 4, 2, 4, 6] {
            frame(seq);
        }
        let report = meter.take_report(Duration::from_secs(5)).expect("report");
        let g = &report.groups[0];
        assert_eq!(g.group_id, 7);
        assert_eq!(
            (g.frames_received, g.frames_lost, g.frames_duplicate),
            (6, 1, 1)
        );
        assert_eq!(g.latency_mean_us, 5_000);
        assert_eq!(g.loss_ppm, 1_000_000 / 7);
        assert!(
            meter.take_report(Duration::from_secs(5)).is_none(),
            "counters restart"
        );
    }

    #[test]
    fn wraps_and_accepts_any_first_sequence() {
        let meter = QualityMeter::new();
        for seq in [65534u16, 65535, 0, 1] {
            meter.record_frame(1, 9, seq, 0, 0, 0);
        }
        meter.record_late(1, 2);
        let g = meter
            .take_report(Duration::from_secs(1))
            .expect("report")
            .groups[0];
        assert_eq!((g.frames_received, g.frames_lost, g.frames_late), (4, 0, 2));
    }
}
