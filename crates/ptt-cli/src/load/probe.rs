//! Mouth-to-ear at a probe listener: one terminal per talk group plays the
//! group's voice out for real — ptt-client's jitter buffer driven by a
//! timer, each frame decoded with the Opus decoder — and times each frame
//! from the talker's capture timestamp to the end of its decoding.
//!
//! The talkers replay packets encoded once at start-up, so "capture" is the
//! moment a packet is handed to the talk (its voice-header timestamp), which
//! stands for the end of encoding on a real terminal.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ptt_client::VoiceFrame;
use ptt_client::codec::{Backend, MAX_DECODE_SAMPLES, VoiceDecoder};
use ptt_client::jitter::{Arrival, JitterBuffer, JitterConfig, Playout};

use super::stamp::unix_us;

/// Frames whose capture time is remembered while they wait for playout;
/// past it the oldest are forgotten (a stalled stream must not grow it).
const MAX_PENDING: usize = 4096;

/// The playout side of one group at one listener.
pub(crate) struct Probe {
    group: u32,
    jitter: JitterBuffer,
    decoder: Box<dyn VoiceDecoder>,
    /// Capture time (Unix µs) and burst of each buffered packet, keyed by
    /// the address of its bytes (the jitter buffer hands the same bytes
    /// back at playout).
    pending: HashMap<usize, (u32, u64)>,
    pcm: Vec<i16>,
    /// Frames decode errors concealed.
    pub(crate) decode_errors: u64,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("group", &self.group)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Probe {
    /// A probe of `group`; fails only if the decoder cannot be created.
    pub(crate) fn new(group: u32) -> anyhow::Result<Self> {
        Ok(Self {
            group,
            jitter: JitterBuffer::new(JitterConfig::default()),
            decoder: Backend::default().decoder()?,
            pending: HashMap::new(),
            pcm: vec![0; MAX_DECODE_SAMPLES],
            decode_errors: 0,
        })
    }

    /// The group played out.
    pub(crate) fn group(&self) -> u32 {
        self.group
    }

    /// Buffers an arrived frame of the probe's group.
    pub(crate) fn arrive(&mut self, frame: &VoiceFrame) {
        if frame.payload.is_empty() {
            return;
        }
        let arrival = self.jitter.push(
            frame.received_at,
            frame.sequence,
            frame.burst,
            frame.sender_timestamp_us,
            frame.payload.clone(),
        );
        match arrival {
            Arrival::NewBurst => {
                let burst = frame.burst;
                self.pending.retain(|_, (b, _)| *b == burst);
            }
            Arrival::Buffered => {}
            Arrival::Duplicate | Arrival::Late => return,
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending.clear();
        }
        self.pending.insert(
            frame.payload.as_ptr() as usize,
            (frame.burst, frame.sender_timestamp_us),
        );
    }

    /// When to call [`Probe::play`] next.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.jitter.poll_timeout()
    }

    /// Plays out every frame due at `now`; returns the mouth-to-ear time
    /// (µs) of each frame that was decoded from its own packet.
    pub(crate) fn play(&mut self, now: Instant, out: &mut Vec<u64>) {
        // Bounded: a call plays at most the frames buffered.
        for _ in 0..=self.jitter.buffered() {
            let Some(playout) = self.jitter.pop(now) else {
                break;
            };
            let decoded = playout.decode(self.decoder.as_mut(), &mut self.pcm);
            if decoded.is_err() {
                self.decode_errors += 1;
                let _ = self.decoder.decode(None, false, &mut self.pcm);
            }
            if let Playout::Frame(packet) = playout
                && let Some((_, captured_us)) = self.pending.remove(&(packet.as_ptr() as usize))
                && decoded.is_ok()
            {
                out.push(unix_us().saturating_sub(captured_us));
            }
        }
    }

    /// A far-future instant for `select!` when nothing is due.
    pub(crate) fn idle() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }
}
