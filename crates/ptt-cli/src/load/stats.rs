//! What a load run measures, and the report it ends with (a table on stdout
//! and, with `--report`, JSON).

use std::collections::HashMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency recorded, µs (60 s); larger values are clamped to it.
const MAX_US: u64 = 60_000_000;

/// A latency histogram with µs resolution, from 1 µs to 60 s.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        // 3 significant digits from 1 µs to 60 s: exact to 0.1 %.
        Self(Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"))
    }

    /// Records one latency of `us` microseconds (clamped to the range).
    pub fn record_us(&mut self, us: u64) {
        let _ = self.0.record(us.clamp(1, MAX_US));
    }

    /// Adds `other`'s samples.
    pub fn add(&mut self, other: &Latency) {
        let _ = self.0.add(&other.0);
    }

    pub(crate) fn p99_ms(&self) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(0.99) as f64 / 1000.0)
    }

    /// p50/p95/p99/max in ms; `None` without samples.
    #[must_use]
    pub fn summary(&self) -> Option<Percentiles> {
        if self.0.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            count: self.0.len(),
            p50: ms(self.0.value_at_quantile(0.50)),
            p95: ms(self.0.value_at_quantile(0.95)),
            p99: ms(self.0.value_at_quantile(0.99)),
            max: ms(self.0.max()),
        })
    }
}

/// Writes a float rounded to 3 decimals (µs for milliseconds, ms for
/// seconds): the measurement's resolution, without binary noise such as
/// 0.23874999999999974 in the JSON report.
fn micros<S: serde::Serializer>(value: &f64, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_f64((value * 1e3).round() / 1e3)
}

/// [`micros`] for an optional value.
fn micros_opt<S: serde::Serializer>(value: &Option<f64>, out: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => micros(value, out),
        None => out.serialize_none(),
    }
}

/// Writes a ratio rounded to 6 decimals (parts per million).
fn ppm<S: serde::Serializer>(value: &f64, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_f64((value * 1e6).round() / 1e6)
}

/// [`ppm`] for an optional value.
fn ppm_opt<S: serde::Serializer>(value: &Option<f64>, out: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => ppm(value, out),
        None => out.serialize_none(),
    }
}

/// Percentiles of one latency, milliseconds (µs resolution).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    #[serde(serialize_with = "micros")]
    pub p50: f64,
    /// 95th percentile (the MCPTT KPIs are stated at it).
    #[serde(serialize_with = "micros")]
    pub p95: f64,
    /// 99th percentile.
    #[serde(serialize_with = "micros")]
    pub p99: f64,
    /// Largest sample.
    #[serde(serialize_with = "micros")]
    pub max: f64,
}

/// The result of `ptt load`, as written with `--report FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Relay address loaded.
    pub server: String,
    /// The emulated link between terminals and relay (`--link`), if any:
    /// then the latencies and the loss include the link's.
    #[serde(default)]
    pub link: Option<String>,
    /// Voice travelled on QUIC streams (voice.md §4), not datagrams.
    #[serde(default)]
    pub voice_streams: bool,
    /// True when `ptt load` started the relay itself (then the relay's CPU
    /// and memory are known).
    pub own_relay: bool,
    /// Terminals simulated: listeners plus late entrants.
    pub terminals: usize,
    /// Terminals logged in for the whole run, listening (and some talking).
    pub listeners: usize,
    /// Terminals kept back to log in during bursts (late entry).
    pub late_entry_terminals: usize,
    /// Groups with traffic or listeners.
    pub groups: usize,
    /// Groups in which talkers took turns.
    pub talk_groups: usize,
    /// Talkers in all.
    pub talkers: usize,
    /// Seconds of talking asked for.
    #[serde(serialize_with = "micros")]
    pub duration_s: f64,
    /// Frames per second per talker.
    pub fps: u32,
    /// Log-ins that failed for now (no handshake in time, refused) and
    /// were tried again, as a radio would; a terminal that fails three
    /// times fails the run.
    #[serde(default)]
    pub login_retries: u64,
    /// Floor grants that led to a burst.
    pub bursts: u64,
    /// Floor requests that were not granted within 5 s or were refused.
    pub floor_failures: u64,
    /// Voice datagrams the talkers sent (the client's count, including each
    /// burst's end marker).
    pub frames_sent: u64,
    /// Frames that should have arrived: each burst's frames × the listeners
    /// joined to its group (the talker excluded).
    pub frames_expected: u64,
    /// Distinct frames that arrived at listeners (duplicates excluded).
    pub frames_received: u64,
    /// 1 − received / expected, at least 0.
    #[serde(serialize_with = "ppm")]
    pub loss_ratio: f64,
    /// Frames that arrived more than once at a listener.
    pub duplicates: u64,
    /// Frames that arrived after a later frame of the same burst.
    pub reordered: u64,
    /// Packets the kernel dropped at the listeners' own sockets because
    /// their receive buffers were full (`SO_RXQ_OVFL`): loss the generator
    /// caused by not reading in time, not the relay. Any packet, voice or
    /// not.
    #[serde(default)]
    pub listener_socket_drops: u64,
    /// Events a slow listener missed (counted as lost by the receiver side).
    pub lagged_events: u64,
    /// Press → floor granted.
    pub access_ms: Option<Percentiles>,
    /// Sender's capture timestamp (voice header, µs) → datagram received by
    /// a listener, every frame; one machine, one clock. Ends at the kernel's
    /// receive stamp on the listener's socket where the frame's packet is
    /// known (see `one_way_socket_ms`), else when the listener read the
    /// frame (which adds the generator's own delay).
    pub one_way_ms: Option<Percentiles>,
    /// One-way of the frames whose packet was matched at the listener's
    /// socket, ending at the kernel's receive stamp: the relay's path alone.
    /// Not a burst's first frame, nor a packet that carried two frames.
    pub one_way_socket_ms: Option<Percentiles>,
    /// The relay's own share of one-way: datagram in → handed to every
    /// listener's connection, from its `pttd_forward_latency_seconds`
    /// histogram (bucketed: 25/50/100/250/500 µs, 1/2.5/5 ms …), where `ptt
    /// load` started the relay.
    pub relay_forward_ms: Option<Percentiles>,
    /// The relay's whole share of one-way: datagram in → its shard has run
    /// every listener's connection, which hands the packet to the kernel
    /// (`pttd_wire_latency_seconds`, one frame at a time per shard; same
    /// buckets), where `ptt load` started the relay.
    #[serde(default)]
    pub relay_wire_ms: Option<Percentiles>,
    /// Frames the relay handed to a listener's connection and never sent
    /// (the listener's queue overflowed, or held them at close), where
    /// `ptt load` started the relay.
    #[serde(default)]
    pub relay_listener_queue_dropped: Option<u64>,
    /// Frames the relay lost between its shards (an inbox was full).
    #[serde(default)]
    pub relay_handover_dropped: Option<u64>,
    /// Datagrams a listener's connection refused on the relay.
    #[serde(default)]
    pub relay_send_failed: Option<u64>,
    /// Mouth-to-ear at one probe listener per talk group: the talker's
    /// capture timestamp → the frame decoded (Opus) after playout from a
    /// timer-driven jitter buffer (ptt-client's, default tuning). The
    /// talkers replay pre-encoded packets, so encoding itself is not timed.
    pub mouth_to_ear_ms: Option<Percentiles>,
    /// Mouth-to-ear APPROXIMATED at every listener as one-way + the
    /// playout delay of a jitter buffer fed with its arrivals (no decoding,
    /// no timed playout).
    pub mouth_to_ear_approx_ms: Option<Percentiles>,
    /// Frames the probes failed to decode (concealed instead).
    pub decode_errors: u64,
    /// Log-in started by a terminal during bursts → its first voice frame.
    pub late_entry_ms: Option<Percentiles>,
    /// Late entries tried.
    pub late_entries: u64,
    /// Late entries that heard nothing within 3 s.
    pub late_entry_failures: u64,
    /// ACK frames the listeners sent per DATAGRAM frame they received
    /// (their QUIC connections' stats, over the whole run): the relay
    /// processes about this many ACKs per voice packet, less what the link
    /// lost. On loopback quinn acknowledges every second packet; the
    /// relay's ACK-frequency request only takes hold with a real RTT.
    #[serde(default, serialize_with = "ppm_opt")]
    pub listener_acks_per_datagram: Option<f64>,
    /// Relay CPU seconds (user + system) during the talking phase.
    #[serde(serialize_with = "micros_opt")]
    pub relay_cpu_seconds: Option<f64>,
    /// Relay CPU seconds over its whole life (including log-ins).
    #[serde(serialize_with = "micros_opt")]
    pub relay_cpu_seconds_total: Option<f64>,
    /// Relay peak resident memory (VmHWM), KiB.
    pub relay_peak_rss_kib: Option<u64>,
    /// Relay resident memory once started, before any log-in, KiB.
    pub relay_rss_start_kib: Option<u64>,
    /// Relay resident memory with every terminal logged in and joined but
    /// nobody talking yet, KiB: what idle terminals cost.
    pub relay_rss_logged_in_kib: Option<u64>,
    /// CPU seconds of the load generator itself during the talking phase:
    /// near `duration_s × cores` it, not the relay, is the bottleneck and
    /// the latencies measure it.
    #[serde(serialize_with = "micros_opt")]
    pub load_cpu_seconds: Option<f64>,
    /// CPU seconds of the talker thread (talkers, late entrants and the
    /// talkers' own listening) during the talking phase.
    #[serde(serialize_with = "micros_opt")]
    pub load_talker_cpu_seconds: Option<f64>,
    /// Receive lanes: threads of the generator, each with its own runtime
    /// and sockets, over which the listeners are spread.
    pub receive_lanes: usize,
    /// CPU seconds of all receive lanes during the talking phase.
    #[serde(serialize_with = "micros_opt")]
    pub load_receive_cpu_seconds: Option<f64>,
    /// The busiest receive lane's share of one core during the talking
    /// phase. Arrivals are stamped on the lanes, after QUIC decryption:
    /// well under 1 the stamps are the relay's timing; near 1 a lane queues
    /// arrivals and its own delay is in the one-way figures.
    #[serde(serialize_with = "ppm_opt")]
    pub receive_lane_busy_max: Option<f64>,
}

impl Report {
    /// Relay memory per logged-in idle terminal, KiB, where the relay was
    /// our own child.
    #[must_use]
    pub fn relay_kib_per_idle_terminal(&self) -> Option<f64> {
        let (start, logged_in) = (self.relay_rss_start_kib?, self.relay_rss_logged_in_kib?);
        let terminals = (self.listeners as f64).max(1.0);
        Some(logged_in.saturating_sub(start) as f64 / terminals)
    }

    /// The human-readable table printed at the end of a run.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ptt load against {}{}{}{}: {} terminals, {} groups ({} with talk, {} talkers), {:.0} s at {} fps",
            self.server,
            if self.own_relay { " (own pttd)" } else { "" },
            self.link
                .as_ref()
                .map_or(String::new(), |link| format!(" through a link of {link}")),
            if self.voice_streams {
                ", voice on streams"
            } else {
                ""
            },
            self.terminals,
            self.groups,
            self.talk_groups,
            self.talkers,
            self.duration_s,
            self.fps
        );
        let _ = writeln!(
            out,
            "bursts {}  floor failures {}  frames sent {}  expected {}  received {}  loss {:.4} %  duplicates {}  reordered {}  lagged {}",
            self.bursts,
            self.floor_failures,
            self.frames_sent,
            self.frames_expected,
            self.frames_received,
            self.loss_ratio * 100.0,
            self.duplicates,
            self.reordered,
            self.lagged_events
        );
        let _ = writeln!(
            out,
            "{:<28} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "samples", "p50", "p95", "p99", "max"
        );
        let rows: [(&str, &Option<Percentiles>); 8] = [
            ("access (press→grant)", &self.access_ms),
            ("one-way (relay path)", &self.one_way_ms),
            ("one-way at the socket", &self.one_way_socket_ms),
            ("relay forward (≤ bucket)", &self.relay_forward_ms),
            ("relay to wire (≤ bucket)", &self.relay_wire_ms),
            ("mouth-to-ear (probes)", &self.mouth_to_ear_ms),
            ("mouth-to-ear (≈ 1-way+jb)", &self.mouth_to_ear_approx_ms),
            ("late entry (login→voice)", &self.late_entry_ms),
        ];
        for (name, p) in rows {
            match p {
                Some(p) => {
                    let _ = writeln!(
                        out,
                        "{:<28} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                        name, p.count, p.p50, p.p95, p.p99, p.max
                    );
                }
                None => {
                    let _ = writeln!(out, "{name:<28} {:>8}", 0);
                }
            }
        }
        if self.frames_received > 0 {
            let stamped = self.one_way_socket_ms.map_or(0, |p| p.count);
            let _ = writeln!(
                out,
                "one-way: {:.1} % of frames stamped by the kernel at the listener's socket (\"at the socket\"), the rest when read",
                100.0 * stamped as f64 / self.frames_received as f64
            );
        }
        if self.relay_forward_ms.is_some() {
            let _ = writeln!(
                out,
                "relay forward / to wire: upper bounds of the relay's histogram buckets \
                 (25/50/100/250/500 µs, 1/2.5/5 ms …), not single measurements; \
                 forward ends where quinn has the frame, to wire where the kernel has the packets"
            );
        }
        if let (Some(queue), Some(handover), Some(refused)) = (
            self.relay_listener_queue_dropped,
            self.relay_handover_dropped,
            self.relay_send_failed,
        ) {
            let _ = writeln!(
                out,
                "frames the relay lost itself: {queue} in listeners' queues, {handover} between shards, {refused} refused by a connection"
            );
        }
        if self.listener_socket_drops > 0 {
            let _ = writeln!(
                out,
                "packets dropped at the listeners' own sockets (the generator read too late): {}",
                self.listener_socket_drops
            );
        }
        if self.login_retries > 0 {
            let _ = writeln!(
                out,
                "log-ins tried again after failing for now: {}",
                self.login_retries
            );
        }
        if self.late_entries > 0 {
            let _ = writeln!(
                out,
                "late entries {} ({} heard nothing)",
                self.late_entries, self.late_entry_failures
            );
        }
        if let Some(acks) = self.listener_acks_per_datagram {
            let _ = writeln!(
                out,
                "listeners sent {acks:.3} ACK frames per voice datagram received"
            );
        }
        if let Some(cpu) = self.relay_cpu_seconds {
            let _ = write!(
                out,
                "relay CPU {cpu:.2} s while talking ({:.0} % of one core)",
                100.0 * cpu / self.duration_s.max(0.001)
            );
            if let Some(total) = self.relay_cpu_seconds_total {
                let _ = write!(out, ", {total:.2} s in all");
            }
            out.push('\n');
        }
        if let Some(kib) = self.relay_peak_rss_kib {
            let _ = writeln!(out, "relay peak RSS {kib} KiB");
        }
        if let Some(per) = self.relay_kib_per_idle_terminal() {
            let _ = writeln!(
                out,
                "relay RSS per idle logged-in terminal {per:.1} KiB ({} → {} KiB)",
                self.relay_rss_start_kib.unwrap_or_default(),
                self.relay_rss_logged_in_kib.unwrap_or_default()
            );
        }
        if let Some(cpu) = self.load_cpu_seconds {
            let _ = writeln!(
                out,
                "load generator CPU {cpu:.2} s while talking ({:.0} % of one core)",
                100.0 * cpu / self.duration_s.max(0.001)
            );
        }
        if let (Some(talk), Some(receive), Some(busy)) = (
            self.load_talker_cpu_seconds,
            self.load_receive_cpu_seconds,
            self.receive_lane_busy_max,
        ) {
            let _ = writeln!(
                out,
                "  talker thread {talk:.2} s; {} receive lanes {receive:.2} s, the busiest at {:.0} % of its core (arrivals are stamped there)",
                self.receive_lanes,
                100.0 * busy
            );
        }
        out
    }
}

/// Receive-side bookkeeping of one burst at one listener: which sequence
/// numbers arrived, and the highest so far.
#[derive(Debug, Default)]
pub(crate) struct BurstRx {
    seen: Vec<u64>,
    highest: Option<u16>,
}

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    InOrder,
    Reordered,
    Duplicate,
}

impl BurstRx {
    pub(crate) fn arrive(&mut self, sequence: u16) -> Arrival {
        let word = usize::from(sequence / 64);
        let bit = 1u64 << (sequence % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & bit != 0 {
            return Arrival::Duplicate;
        }
        self.seen[word] |= bit;
        match self.highest {
            Some(high) if sequence < high => Arrival::Reordered,
            _ => {
                self.highest = Some(sequence);
                Arrival::InOrder
            }
        }
    }
}

/// Per-listener tracking of recent bursts, keyed by (group, burst).
#[derive(Debug, Default)]
pub(crate) struct ListenerRx {
    bursts: HashMap<(u32, u32), BurstRx>,
}

impl ListenerRx {
    /// Bursts remembered per listener before the oldest are forgotten.
    const KEEP: usize = 32;

    pub(crate) fn arrive(&mut self, group: u32, burst: u32, sequence: u16) -> Arrival {
        if self.bursts.len() >= Self::KEEP && !self.bursts.contains_key(&(group, burst)) {
            // Burst ids grow: forget the older half.
            let mut ids: Vec<_> = self.bursts.keys().map(|&(_, b)| b).collect();
            ids.sort_unstable();
            let cut = ids[ids.len() / 2];
            self.bursts.retain(|&(_, b), _| b >= cut);
        }
        self.bursts
            .entry((group, burst))
            .or_default()
            .arrive(sequence)
    }
}

#[cfg(test)]
mod tests {
    use crate::load::stats::*;

    #[test]
    fn the_json_report_carries_no_float_noise() {
        let p = Percentiles {
            count: 3,
            p50: 0.238_749_999_999_999_74,
            p95: 1.0,
            p99: 2.000_4,
            max: 5.0,
        };
        let json = serde_json::to_string(&p).expect("serializes");
        assert_eq!(
            json,
            r#"{"count":3,"p50":0.239,"p95":1.0,"p99":2.0,"max":5.0}"#
        );
    }

    #[test]
    fn burst_rx_classifies() {
        let mut rx = BurstRx::default();
        assert_eq!(rx.arrive(0), Arrival::InOrder);
        assert_eq!(rx.arrive(2), Arrival::InOrder);
        assert_eq!(rx.arrive(1), Arrival::Reordered);
        assert_eq!(rx.arrive(2), Arrival::Duplicate);
        assert_eq!(rx.arrive(1000), Arrival::InOrder);
    }

    /// The percentiles of known distributions, to the histogram's 0.1 %
    /// resolution (plus one sample's width).
    #[test]
    fn percentiles_match_known_distributions() {
        let close = |got: f64, want_ms: f64| (got - want_ms).abs() <= want_ms * 0.002 + 0.002;
        // Uniform over 1..=10,000 µs.
        let mut uniform = Latency::new();
        for us in 1..=10_000 {
            uniform.record_us(us);
        }
        let p = uniform.summary().expect("samples");
        assert_eq!(p.count, 10_000);
        assert!(
            close(p.p50, 5.0) && close(p.p95, 9.5) && close(p.p99, 9.9),
            "{p:?}"
        );
        assert!(close(p.max, 10.0), "{p:?}");
        // Exponential with a 2 ms mean, from its quantile function: the
        // q-quantile is −2 ms · ln(1 − q).
        let mut exponential = Latency::new();
        let n = 100_000;
        for i in 0..n {
            let q = (f64::from(i) + 0.5) / f64::from(n);
            exponential.record_us((-2_000.0 * (1.0 - q).ln()).round() as u64);
        }
        let p = exponential.summary().expect("samples");
        let quantile = |q: f64| -2.0 * (1.0_f64 - q).ln();
        assert!(close(p.p50, quantile(0.50)), "{p:?}");
        assert!(close(p.p95, quantile(0.95)), "{p:?}");
        assert!(close(p.p99, quantile(0.99)), "{p:?}");
    }

    #[test]
    fn percentiles_ordered() {
        let mut l = Latency::new();
        for us in 1..=1000 {
            l.record_us(us);
        }
        let p = l.summary().unwrap();
        assert!(p.p50 <= p.p95 && p.p95 <= p.p99 && p.p99 <= p.max);
        assert_eq!(p.count, 1000);
        assert!(Latency::new().summary().is_none());
    }
}
