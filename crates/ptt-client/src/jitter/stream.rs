//! The playout state of one burst: slots from the next frame to play on,
//! and the memory of what was played.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::FRAME_DURATION;

/// The playout state of the current burst.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) burst_id: u32,
    /// Sequence of `slots[0]`: the next frame to play.
    pub(super) next_seq: u16,
    /// Frames from `next_seq` on; the back is always `Some` (never trailing
    /// gaps), so "a later frame is here" is `slots.len() > 1`.
    pub(super) slots: VecDeque<Option<Bytes>>,
    /// When `slots[0]` is due.
    pub(super) next_due: Instant,
    /// Something has been played or declared lost in this stream.
    pub(super) started: bool,
    /// Playout is held because the buffer ran dry at a due time.
    pub(super) stalled: bool,
    /// Current playout delay: the initial target plus every stretch.
    pub(super) delay: Duration,
    /// Ticks still to hold to reach the delay the network calls for.
    pub(super) owed_ticks: u32,
    /// Bit i: sequence `next_seq - 1 - i` was played (not lost).
    played: u64,
    /// How many bits of `played` are meaningful (≤ 64).
    history: u32,
}

impl Stream {
    pub(super) fn new(
        burst_id: u32,
        seq: u16,
        payload: Bytes,
        now: Instant,
        delay: Duration,
        capacity: usize,
    ) -> Self {
        let mut slots = VecDeque::with_capacity(capacity);
        slots.push_back(Some(payload));
        Self {
            burst_id,
            next_seq: seq,
            slots,
            next_due: now + delay,
            started: false,
            stalled: false,
            delay,
            owed_ticks: 0,
            played: 0,
            history: 0,
        }
    }

    /// Was sequence `next_seq - 1 - back` played? `None` if beyond memory.
    pub(super) fn was_played(&self, back: u32) -> Option<bool> {
        (back < self.history).then(|| self.played >> back & 1 == 1)
    }

    /// Owes up to `ticks` held ticks, never past `max_delay` in total.
    pub(super) fn owe(&mut self, ticks: u32, max_delay: Duration) {
        let room = max_delay.saturating_sub(self.delay).as_micros() / FRAME_DURATION.as_micros();
        let ticks = ticks.min(u32::try_from(room).unwrap_or(u32::MAX));
        self.owed_ticks = self.owed_ticks.max(ticks);
    }

    pub(super) fn advance(&mut self, played: bool) {
        self.played = self.played << 1 | u64::from(played);
        self.history = (self.history + 1).min(64);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_due += FRAME_DURATION;
        self.started = true;
    }
}
