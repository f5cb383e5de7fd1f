//! Counters of what the relay did and what it refused, readable at any time
//! without stopping the hot path (relaxed atomics, no locks).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

pub mod admission;
pub mod limits;
pub mod quality;
pub mod traffic;
pub mod trust;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a voice datagram was not forwarded. Every drop is counted by reason so
/// operators can tell a misconfigured terminal from an attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Larger than the protocol's maximum datagram.
    TooLarge,
    /// The 24-byte header is missing, of another version or of an unknown kind.
    BadHeader,
    /// The payload is not a valid Opus packet.
    NotOpus,
    /// The group id names no group.
    UnknownGroup,
    /// The sender does not hold the floor of the group.
    NotHolder,
    /// Received by QUIC but discarded by quinn before the relay read it:
    /// the connection's datagram receive buffer was full (a flood).
    ReceiveOverflow,
}

impl DropReason {
    /// All reasons, in the order of [`DropReason::index`].
    pub const ALL: [DropReason; 6] = [
        DropReason::TooLarge,
        DropReason::BadHeader,
        DropReason::NotOpus,
        DropReason::UnknownGroup,
        DropReason::NotHolder,
        DropReason::ReceiveOverflow,
    ];

    /// Stable label for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::TooLarge => "too_large",
            DropReason::BadHeader => "bad_header",
            DropReason::NotOpus => "not_opus",
            DropReason::UnknownGroup => "unknown_group",
            DropReason::NotHolder => "not_holder",
            DropReason::ReceiveOverflow => "receive_overflow",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a floor request was refused, as the terminal was told (`FloorDenied`):
/// by the floor, by the group task, or by the session before the request
/// reached either. Counted by reason so a dashboard tells a full queue from
/// a misconfigured ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialReason {
    /// The group id names no group.
    UnknownGroup,
    /// The requester has not joined the group (or is not a member).
    NotMember,
    /// The requester is a listen-only member.
    ListenOnly,
    /// The queue was full, or the request was displaced from it.
    QueueFull,
    /// A broadcast holds the floor: only its caller talks.
    BroadcastInProgress,
    /// The request needs rights the requester lacks.
    PriorityNotAllowed,
    /// The requester already holds the floor.
    AlreadyHolder,
    /// The requester is already queued.
    AlreadyQueued,
    /// A queued emergency request was dropped because the emergency ended.
    EmergencyCleared,
    /// A queued request waited too long and expired.
    QueueExpired,
}

impl DenialReason {
    /// All reasons, in the order of [`DenialReason::index`].
    pub const ALL: [DenialReason; 10] = [
        DenialReason::UnknownGroup,
        DenialReason::NotMember,
        DenialReason::ListenOnly,
        DenialReason::QueueFull,
        DenialReason::BroadcastInProgress,
        DenialReason::PriorityNotAllowed,
        DenialReason::AlreadyHolder,
        DenialReason::AlreadyQueued,
        DenialReason::EmergencyCleared,
        DenialReason::QueueExpired,
    ];

    /// Stable label for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenialReason::UnknownGroup => "unknown_group",
            DenialReason::NotMember => "not_member",
            DenialReason::ListenOnly => "listen_only",
            DenialReason::QueueFull => "queue_full",
            DenialReason::BroadcastInProgress => "broadcast_in_progress",
            DenialReason::PriorityNotAllowed => "priority_not_allowed",
            DenialReason::AlreadyHolder => "already_holder",
            DenialReason::AlreadyQueued => "already_queued",
            DenialReason::EmergencyCleared => "emergency_cleared",
            DenialReason::QueueExpired => "queue_expired",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl From<ptt_floor::DenyReason> for DenialReason {
    fn from(reason: ptt_floor::DenyReason) -> Self {
        use ptt_floor::DenyReason as D;
        match reason {
            D::NotMember => DenialReason::NotMember,
            D::ListenOnly => DenialReason::ListenOnly,
            D::QueueFull => DenialReason::QueueFull,
            D::BroadcastInProgress => DenialReason::BroadcastInProgress,
            D::PriorityNotAllowed => DenialReason::PriorityNotAllowed,
            D::AlreadyHolder => DenialReason::AlreadyHolder,
            D::AlreadyQueued => DenialReason::AlreadyQueued,
            D::EmergencyCleared => DenialReason::EmergencyCleared,
        }
    }
}

/// The relay's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Voice datagrams received from terminals.
    pub datagrams_in: Counter,
    /// Of those, keep-alive and probe datagrams (kind 1): counted, never
    /// forwarded. Each listener of a burst that stalls sends one.
    pub keepalives_in: Counter,
    /// Voice datagrams handed to a listener's connection.
    pub forwarded: Counter,
    /// Datagrams a listener's connection refused (closed, or no datagram support).
    pub send_failed: Counter,
    drops: [Counter; DropReason::ALL.len()],
    /// Control messages that could not be decoded.
    pub malformed_control: Counter,
    /// Terminals disconnected for misbehaving or being too slow.
    pub cut_off: Counter,
    /// Authentications that failed (unknown terminal, wrong secret).
    pub auth_failures: Counter,
    /// Logins with the right secret of a terminal an administrator
    /// disabled: refused with TERMINAL_DISABLED, not failures.
    pub auth_disabled: Counter,
    /// Authentications refused unchecked because the terminal failed too
    /// often from the source address.
    pub auth_rate_limited: Counter,
    /// Secrets verified (argon2 runs admitted to the hashing pool).
    pub auth_verifications: Counter,
    /// Logins refused at once because too many waited for verification.
    pub auth_busy: Counter,
    /// Failed logins answered late because failures across the relay
    /// exceeded their budget.
    pub auth_slowed: Counter,
    /// Logins by resumption credential (no argon2).
    pub auth_resumed: Counter,
    /// Resumption credentials refused as expired, signed with a replaced
    /// key, or naming a terminal no longer in the directory.
    pub auth_resume_stale: Counter,
    /// Resumption credentials refused as altered, forged, malformed or
    /// another terminal's.
    pub auth_resume_invalid: Counter,
    /// Sessions authenticated since start.
    pub sessions_opened: Counter,
    /// Admission before authentication: refusals by reason, address
    /// validation retries, unauthenticated connections now.
    pub admission: admission::AdmissionCounters,
    /// Call log records dropped because the log queue was full.
    pub log_dropped: Counter,
    /// Datagram in → handed to every recipient's connection on the talker's
    /// shard and posted to the other shards with recipients; one
    /// observation per frame. [`Metrics::wire_latency`] follows the frame
    /// on to the kernel on every shard.
    pub forward_latency: Histogram,
    /// Datagram in → its shard has run every listener's connection it was
    /// handed to, i.e. their packets went to the kernel (one frame at a
    /// time per shard, [`crate::shard::wire`]).
    pub wire_latency: Histogram,
    /// Floor request received → granted, for requests granted at once or
    /// after queueing.
    pub access_time: Histogram,
    /// Floor grants (a new burst, or an emergency upgrade of the held one).
    pub floor_grants: Counter,
    /// Floor requests put in a group's queue.
    pub floor_queued: Counter,
    floor_denials: [Counter; DenialReason::ALL.len()],
    /// Holders whose floor was revoked, for any reason (pre-emptions included).
    pub floor_revokes: Counter,
    /// Revokes because a higher-priority request took the floor.
    pub floor_preemptions: Counter,
    /// Dispatcher alerts logged and delivered.
    pub alerts_sent: Counter,
    /// Requests refused by the per-session rate limits, and sessions cut off
    /// for them.
    pub rate: limits::RateCounters,
    /// Bursts that ended before any voice frame of theirs was forwarded live
    /// (a grant released at once, or revoked unused). Still logged: frames
    /// sent with the release may trail it within the tail window.
    pub empty_bursts: Counter,
    /// The terminals' own receive-quality reports, per group, as bounded by
    /// [`trust`].
    pub client_quality: quality::ClientQuality,
    /// How the terminals' quality reports fared (counted, too frequent,
    /// overclaimed).
    pub quality_reports: trust::ReportCounters,
    /// Voice datagrams handed to a listener's connection that quinn never
    /// transmitted (its send queue overflowed and dropped the oldest, or the
    /// connection closed with them queued); counted when the session ends.
    /// Also the frames a stream listener's writer discarded when the
    /// listener fell behind ([`crate::stream_out`]), counted at once.
    pub listener_queue_dropped: Counter,
    /// Frames handed from the talker's shard to another shard with
    /// listeners of the group ([`crate::shard::post`]), one per frame and
    /// shard.
    pub shard_handovers: Counter,
    /// Handovers dropped because the receiving shard's inbox was full: that
    /// shard's listeners missed the frame.
    pub shard_handover_dropped: Counter,
    /// Talkers' frames published to the other relays of the cluster (one
    /// per frame, however many relays listen).
    pub cluster_voice_out: Counter,
    /// Frames not published: the queue to NATS was full, NATS was away, or
    /// it refused.
    pub cluster_voice_dropped: Counter,
    /// Frames of other relays' talkers fanned out here.
    pub cluster_voice_in: Counter,
    /// Messages on a group's voice subject that were not its voice.
    pub cluster_voice_unreadable: Counter,
    /// Call-log records of this relay stored by the cluster's stream.
    pub cluster_calllog_out: Counter,
    /// Call-log records of this relay never shared: the queue to NATS was
    /// full (NATS away too long). They stay in this relay's own call log.
    pub cluster_calllog_dropped: Counter,
    /// Other relays' call-log records stored here.
    pub cluster_calllog_in: Counter,
    /// The recorder's own counters (files written, frames dropped, errors).
    pub recording: std::sync::Arc<ptt_recording::Counters>,
}

impl Metrics {
    /// Counts one dropped datagram.
    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason.index()].inc();
    }

    /// Counts `n` dropped datagrams.
    #[inline]
    pub fn count_drops(&self, reason: DropReason, n: u64) {
        self.drops[reason.index()].add(n);
    }

    /// Datagrams dropped for `reason` since start.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].get()
    }

    /// Counts one refused floor request.
    #[inline]
    pub fn count_denial(&self, reason: DenialReason) {
        self.floor_denials[reason.index()].inc();
    }

    /// Floor requests refused for `reason` since start.
    pub fn denials(&self, reason: DenialReason) -> u64 {
        self.floor_denials[reason.index()].get()
    }
}

/// Upper bounds of the latency buckets in microseconds (the last bucket,
/// above the largest bound, is open). Spaced 1-2.5-5 per decade from 25 µs
/// to 10 s: fine where the relay's own share lives (tens of µs to a few ms)
/// and coarse where only client-side delays reach.
pub const LATENCY_BOUNDS_US: [u64; 19] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000,
];

/// A latency histogram the hot path can write from any thread: fixed
/// buckets of relaxed atomic counters, so an observation is a few adds and
/// never a lock. Readers take a [`HistogramSnapshot`] and compute windows
/// (the dashboard) or export cumulative buckets (Prometheus).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [Counter; LATENCY_BOUNDS_US.len() + 1],
    sum_us: Counter,
}

impl Histogram {
    /// Records one latency of `us` microseconds.
    #[inline]
    pub fn observe_us(&self, us: u64) {
        let bucket = LATENCY_BOUNDS_US.partition_point(|&bound| bound < us);
        self.buckets[bucket].inc();
        self.sum_us.add(us);
    }

    /// Records one latency.
    #[inline]
    pub fn observe(&self, latency: std::time::Duration) {
        self.observe_us(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// The counts so far. Buckets are read one by one, so a snapshot taken
    /// while observations land may be off by those few; fine for monitoring.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].get()),
            sum_us: self.sum_us.get(),
        }
    }
}

/// The counts of a [`Histogram`] at one moment: per bucket (not cumulative),
/// bucket `i` counting latencies `<= LATENCY_BOUNDS_US[i]` and above the
/// previous bound; the last bucket counts everything above the largest bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistogramSnapshot {
    /// Observations per bucket.
    pub buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    /// Sum of all observations in microseconds.
    pub sum_us: u64,
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// What was observed after `earlier` (a snapshot of the same histogram):
    /// the window between two snapshots.
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].saturating_sub(earlier.buckets[i])),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
        }
    }

    /// The `q` quantile (0..=1) in microseconds, interpolated linearly inside
    /// its bucket; `None` without observations. Observations above the
    /// largest bound report that bound.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut below = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 || ((below + n) as f64) < rank {
                below += n;
                continue;
            }
            let Some(&upper) = LATENCY_BOUNDS_US.get(i) else {
                return LATENCY_BOUNDS_US.last().map(|&b| b as f64);
            };
            let lower = if i == 0 { 0 } else { LATENCY_BOUNDS_US[i - 1] };
            let fraction = (rank - below as f64) / n as f64;
            return Some(lower as f64 + fraction * (upper - lower) as f64);
        }
        LATENCY_BOUNDS_US.last().map(|&b| b as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_bucket_of_their_upper_bound() {
        let h = Histogram::default();
        h.observe_us(25); // on the bound: first bucket
        h.observe_us(26);
        h.observe_us(30_000_000); // above every bound
        let s = h.snapshot();
        assert_eq!(s.buckets[0], 1);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[LATENCY_BOUNDS_US.len()], 1);
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum_us, 30_000_051);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket_and_windows_subtract() {
        let h = Histogram::default();
        for _ in 0..100 {
            h.observe_us(400); // bucket (250, 500]
        }
        let before = h.snapshot();
        let p50 = before.quantile_us(0.5).unwrap();
        assert!((250.0..=500.0).contains(&p50), "{p50}");
        for _ in 0..100 {
            h.observe_us(4_000); // bucket (2500, 5000]
        }
        let window = h.snapshot().since(&before);
        assert_eq!(window.count(), 100);
        let p99 = window.quantile_us(0.99).unwrap();
        assert!((2_500.0..=5_000.0).contains(&p99), "{p99}");
        assert_eq!(HistogramSnapshot::default().quantile_us(0.5), None);
    }
}
