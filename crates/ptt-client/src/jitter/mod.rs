//! Adaptive jitter buffer for one talker stream, sans-IO.
//!
//! Voice datagrams arrive late, early, twice, out of order or never
//! (`proto/voice.md` §3.3). The buffer turns them back into one Opus packet
//! every 20 ms, in sequence order, and says which frames are missing so the
//! decoder can conceal them, preferring the FEC copy the next packet carries.
//! It reads no clock and does no I/O: time comes in as `now: Instant`, so
//! tests drive it over a simulated network, deterministically.
//!
//! # Driving it
//!
//! - [`JitterBuffer::push`] every received voice frame of the group.
//! - At each audio tick (or at [`JitterBuffer::poll_timeout`]), call
//!   [`JitterBuffer::pop`] until it returns `None`, and decode each
//!   [`Playout`] in order ([`Playout::decode`]).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use ptt_client::jitter::{JitterBuffer, JitterConfig, Playout};
//!
//! let t0 = Instant::now();
//! let mut jb = JitterBuffer::new(JitterConfig::default());
//! jb.push(t0, 0, 42, 0, Bytes::from_static(&[0x48, 1]));
//! jb.push(t0 + Duration::from_millis(21), 2, 42, 40_000, Bytes::from_static(&[0x48, 3]));
//! // Nothing plays before the initial target delay.
//! assert_eq!(jb.pop(t0), None);
//! let due = jb.poll_timeout().unwrap();
//! assert!(matches!(jb.pop(due), Some(Playout::Frame(_))));
//! // Frame 1 never came; frame 2 is here, so its FEC copy of frame 1 is offered.
//! let due = jb.poll_timeout().unwrap();
//! assert!(matches!(jb.pop(due), Some(Playout::Lost { fec_from: Some(_) })));
//! ```
//!
//! # Timing policy
//!
//! - **Start.** A stream starts with the first frame of a new burst id; it is
//!   played one *target delay* after it arrived, and then one frame every
//!   20 ms (sequence order, not arrival order). Any first sequence is
//!   accepted (late entry mid-burst); a frame of the same burst with an
//!   earlier sequence that arrives before playout has begun becomes the new
//!   head, so a reordered start is not lost.
//! - **Target delay** = clamp(k × jitter + 20 ms, min, max), with `jitter`
//!   the RFC 3550 §6.4.1 interarrival jitter estimate (from sender
//!   timestamps and arrival times) and k = [`JitterConfig::jitter_factor`]
//!   (3 by default: for uniformly spread delays the estimate is a third of
//!   the spread, so 3 × covers it). The estimate carries across bursts (same
//!   network path).
//! - **Adapting.** Each burst starts with the current target: a PTT burst
//!   starts from silence, so a new delay costs no glitch there; this is how
//!   the delay *shrinks* after the jitter falls. Within a burst the delay
//!   only *grows* (stretching), never shrinks (which would mean dropping
//!   audio): when the target rises above the burst's delay, or a recent
//!   frame arrives late by some amount, the buffer holds playout for that
//!   many 20 ms ticks, up to `max_delay`. A held tick is a `pop` that returns
//!   `None` while a frame was due; the caller renders 20 ms of concealment
//!   (`decode(None)`) or silence, as for any tick without a frame.
//! - **Underrun.** When the next frame is due and nothing at all is
//!   buffered for it or after it, the buffer cannot tell a stalled network
//!   from a talker who stopped, so it holds too: no frame is reported lost,
//!   and playout resumes when frames come again, with the delay grown by the
//!   stall. Frames lost at the very end of a burst are therefore not counted
//!   (nothing follows them).
//! - **Loss.** When the next frame is due, missing, and a later frame is
//!   already buffered, it is declared lost ([`Playout::Lost`]), with the
//!   next frame's payload for FEC when that one is present.
//! - **Late and duplicate.** A frame for a sequence already played or
//!   declared lost is dropped: counted as duplicate if that sequence was
//!   played (or is buffered), else as late. Frames of the previous few
//!   bursts are late, never a reason to restart a stream.
//! - **Jump.** A frame more than [`JitterConfig::capacity`] frames ahead
//!   restarts the stream at it (the frames skipped are counted lost, the
//!   frames buffered before it late): the memory stays bounded whatever the
//!   sender does.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ptt_proto::voice::seq_cmp;

use crate::codec::{CodecError, FRAME_DURATION, VoiceDecoder};

mod config;
mod estimator;
mod stream;

pub use config::JitterConfig;
use estimator::{JitterEstimator, target};
use stream::Stream;

/// How many previous burst ids are remembered so that their stragglers are
/// dropped as late instead of restarting the stream.
const RETIRED_BURSTS: usize = 4;

/// What to play for the next 20 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The frame arrived in time: decode this Opus packet.
    Frame(Bytes),
    /// The frame is missing. With `fec_from`, the next frame's packet is
    /// already here: decode its FEC copy of this frame
    /// (`decode(Some(next), fec = true)`); without, conceal (`decode(None)`).
    Lost {
        /// The packet that follows the lost frame, when buffered.
        fec_from: Option<Bytes>,
    },
}

impl Playout {
    /// Decodes this playout with `decoder` the way the variant says, into
    /// `out` (at least 320 samples). When a [`Playout::Frame`] fails to
    /// decode, the caller should conceal it with `decoder.decode(None, …)`.
    pub fn decode(
        &self,
        decoder: &mut dyn VoiceDecoder,
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        match self {
            Playout::Frame(packet) => decoder.decode(Some(&packet[..]), false, out),
            Playout::Lost {
                fec_from: Some(next),
            } => decoder.decode(Some(&next[..]), true, out),
            Playout::Lost { fec_from: None } => decoder.decode(None, false, out),
        }
    }
}

/// What [`JitterBuffer::push`] did with a frame, for logs and tests; the
/// counters in [`JitterStats`] already account for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Buffered for playout.
    Buffered,
    /// The first frame of a new burst: the stream restarted at it.
    NewBurst,
    /// Already buffered or played: dropped.
    Duplicate,
    /// Its playout time has passed (or it belongs to an ended burst): dropped.
    Late,
}

/// Counters since the buffer was created, for the client's `QualityReport`
/// (`GroupQuality.frames_concealed` = `concealed + recovered_fec`). Take the
/// difference of two snapshots for an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    /// Unique frames received, in time or late (duplicates excluded).
    pub received: u64,
    /// Frames never received by their playout time (gaps), including frames
    /// skipped by a jump.
    pub lost: u64,
    /// Frames dropped because they came after their playout time.
    pub late: u64,
    /// Lost frames handed to packet loss concealment (no next packet).
    pub concealed: u64,
    /// Lost frames for which the next packet was offered for FEC decoding.
    pub recovered_fec: u64,
    /// Duplicate frames dropped.
    pub duplicates: u64,
    /// Current RFC 3550 interarrival jitter estimate, µs.
    pub jitter_us: u32,
    /// Current target delay (applied from the next burst on), µs.
    pub target_delay_us: u32,
}

/// The jitter buffer of one group's voice: one talker burst at a time.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    stream: Option<Stream>,
    retired: [Option<u32>; RETIRED_BURSTS],
    retired_next: usize,
    estimator: JitterEstimator,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer; `config` is normalised as documented on its fields.
    #[must_use]
    pub fn new(config: JitterConfig) -> Self {
        let config = config.normalised();
        let mut jb = Self {
            config,
            stream: None,
            retired: [None; RETIRED_BURSTS],
            retired_next: 0,
            estimator: JitterEstimator::default(),
            stats: JitterStats::default(),
        };
        jb.stats.target_delay_us = duration_us(jb.target_delay());
        jb
    }

    /// Feeds one received voice frame: its header's `sequence`, `burst_id`
    /// and `sender_timestamp_us`, and its Opus `payload`. Never panics,
    /// whatever the values or the order of `now`.
    pub fn push(
        &mut self,
        now: Instant,
        sequence: u16,
        burst_id: u32,
        sender_timestamp_us: u64,
        payload: Bytes,
    ) -> Arrival {
        let capacity = self.config.capacity;
        let current = self.stream.as_ref().map(|s| s.burst_id);
        if current != Some(burst_id) {
            if self.retired.contains(&Some(burst_id)) {
                self.stats.received += 1;
                self.stats.late += 1;
                return Arrival::Late;
            }
            if let Some(old) = current {
                self.retire(old);
            }
            self.stats.received += 1;
            self.estimator.last = None;
            self.estimator.on_arrival(now, sender_timestamp_us);
            self.update_target();
            let delay = self.target_delay();
            self.stream = Some(Stream::new(
                burst_id, sequence, payload, now, delay, capacity,
            ));
            return Arrival::NewBurst;
        }
        let Some(stream) = self.stream.as_mut() else {
            return Arrival::Late; // Unreachable: `current` was `Some`.
        };
        let d = seq_cmp(sequence, stream.next_seq);
        let arrival = if d >= 0 {
            // `d` is in 0..=32767.
            let index = d as usize;
            if index >= capacity {
                let buffered = stream.slots.iter().filter(|s| s.is_some()).count();
                self.stats.late += buffered as u64;
                self.stats.lost += (index - buffered) as u64;
                let delay = target(&self.config, self.estimator.jitter_us);
                *stream = Stream::new(burst_id, sequence, payload, now, delay, capacity);
                Arrival::Buffered
            } else if stream.slots.get(index).is_some_and(Option::is_some) {
                Arrival::Duplicate
            } else {
                if stream.slots.len() <= index {
                    stream.slots.resize(index + 1, None);
                }
                stream.slots[index] = Some(payload);
                Arrival::Buffered
            }
        } else {
            // Older than the next frame to play: `back` frames before it.
            let back = u32::from(d.unsigned_abs()) - 1;
            if !stream.started && stream.slots.len() + (back as usize) < capacity {
                // A reordered start: the earlier frame becomes the head; the
                // first playout instant stays.
                for _ in 0..back {
                    stream.slots.push_front(None);
                }
                stream.slots.push_front(Some(payload));
                stream.next_seq = sequence;
                Arrival::Buffered
            } else if stream.was_played(back) == Some(true) {
                Arrival::Duplicate
            } else {
                if stream.was_played(back).is_some() {
                    // A recent frame missed its slot by `lateness`: stretch
                    // by that much (bounded by `max_delay`).
                    let due = stream
                        .next_due
                        .checked_sub(FRAME_DURATION * (back + 1))
                        .unwrap_or(stream.next_due);
                    let lateness = now.saturating_duration_since(due);
                    let ticks = lateness.as_micros().div_ceil(FRAME_DURATION.as_micros());
                    stream.owe(
                        u32::try_from(ticks).unwrap_or(u32::MAX),
                        self.config.max_delay,
                    );
                }
                Arrival::Late
            }
        };
        match arrival {
            Arrival::Duplicate => self.stats.duplicates += 1,
            Arrival::Late => {
                self.stats.received += 1;
                self.stats.late += 1;
            }
            Arrival::Buffered | Arrival::NewBurst => self.stats.received += 1,
        }
        if arrival != Arrival::Duplicate {
            self.estimator.on_arrival(now, sender_timestamp_us);
            self.update_target();
            let target = self.target_delay();
            if let Some(stream) = self.stream.as_mut() {
                // The jitter rose past the delay this burst plays with:
                // stretch to the new target.
                let behind = target.saturating_sub(stream.delay);
                let ticks = behind.as_micros() / FRAME_DURATION.as_micros();
                stream.owe(
                    u32::try_from(ticks).unwrap_or(u32::MAX),
                    self.config.max_delay,
                );
            }
        }
        arrival
    }

    /// The next thing to play, if its time has come (`now` ≥ its due time).
    /// Call repeatedly until `None`: after a late call several frames may be
    /// due. `None` also means "nothing buffered" (no burst, or a stall; see
    /// the module docs).
    #[must_use]
    pub fn pop(&mut self, now: Instant) -> Option<Playout> {
        let stream = self.stream.as_mut()?;
        if now < stream.next_due {
            return None;
        }
        let Some(front) = stream.slots.pop_front() else {
            // Dry at a due time: hold until frames come again.
            stream.stalled = true;
            return None;
        };
        if stream.stalled {
            // Resume from now rather than rushing through the backlog.
            stream.stalled = false;
            let stall = now.saturating_duration_since(stream.next_due);
            stream.delay += stall;
            stream.next_due = now;
            // The stall already stretched the delay.
            let ticks = stall.as_micros() / FRAME_DURATION.as_micros();
            stream.owed_ticks = stream
                .owed_ticks
                .saturating_sub(u32::try_from(ticks).unwrap_or(u32::MAX));
        }
        if stream.owed_ticks > 0 {
            // Stretch: hold one tick; the frame waits 20 ms longer (and a
            // missing one gets 20 ms more to arrive).
            stream.slots.push_front(front);
            stream.owed_ticks -= 1;
            stream.delay += FRAME_DURATION;
            stream.next_due += FRAME_DURATION;
            return None;
        }
        match front {
            Some(packet) => {
                stream.advance(true);
                Some(Playout::Frame(packet))
            }
            None => {
                // The back of `slots` is always a frame, so one follows.
                let fec_from = stream.slots.front().cloned().flatten();
                self.stats.lost += 1;
                if fec_from.is_some() {
                    self.stats.recovered_fec += 1;
                } else {
                    self.stats.concealed += 1;
                }
                stream.advance(false);
                Some(Playout::Lost { fec_from })
            }
        }
    }

    /// When to call [`pop`](Self::pop) next; `None` when nothing is
    /// buffered (the next [`push`](Self::push) may change that). Can be in
    /// the past: then pop now.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.stream
            .as_ref()
            .filter(|s| !s.slots.is_empty())
            .map(|s| s.next_due)
    }

    /// Ends the current burst (the `last` flag, `FloorIdle`, a new
    /// `FloorTaken`): buffered frames are dropped unplayed and stragglers of
    /// the burst will count as late. Counters and the jitter estimate stay.
    pub fn end_burst(&mut self) {
        if let Some(stream) = self.stream.take() {
            self.retire(stream.burst_id);
        }
    }

    /// Burst id of the stream being played, if any.
    #[must_use]
    pub fn burst_id(&self) -> Option<u32> {
        self.stream.as_ref().map(|s| s.burst_id)
    }

    /// The playout delay of the current burst (initial target plus every
    /// stretch), for monitoring; `None` between bursts.
    #[must_use]
    pub fn playout_delay(&self) -> Option<Duration> {
        self.stream.as_ref().map(|s| s.delay)
    }

    /// Frames held (including gaps waiting for their frame), for monitoring.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.stream.as_ref().map_or(0, |s| s.slots.len())
    }

    /// Counters since creation, with the current jitter and target delay.
    #[must_use]
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The delay the next burst will start with.
    #[must_use]
    pub fn target_delay(&self) -> Duration {
        target(&self.config, self.estimator.jitter_us)
    }

    fn retire(&mut self, burst_id: u32) {
        self.retired[self.retired_next] = Some(burst_id);
        self.retired_next = (self.retired_next + 1) % RETIRED_BURSTS;
    }

    fn update_target(&mut self) {
        // The estimate is capped at 1 s, so it fits u32 µs.
        self.stats.jitter_us = self.estimator.jitter_us.round() as u32;
        self.stats.target_delay_us = duration_us(self.target_delay());
    }
}

fn duration_us(d: Duration) -> u32 {
    d.as_micros().try_into().unwrap_or(u32::MAX)
}
