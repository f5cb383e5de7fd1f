//! What the recorder counts, for the relay's metrics: files written, frames it had no
//! room for, and errors (I/O, a panicked thread). Relaxed atomics, readable at any time.

use std::sync::atomic::{AtomicU64, Ordering};

/// The recorder's counters; the relay exports them with its own.
#[derive(Debug, Default)]
pub struct Counters {
    written: AtomicU64,
    frames_dropped: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    /// Burst recordings (Ogg Opus files) completed.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Frames not recorded because the recorder's queue was full.
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped.load(Ordering::Relaxed)
    }

    /// Recording errors: a file that could not be written, renamed or deleted, or a
    /// recording thread that panicked.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub(crate) fn count_written(&self) {
        self.written.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_frame_dropped(&self) {
        self.frames_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_errors(&self, n: u64) {
        self.errors.fetch_add(n, Ordering::Relaxed);
    }
}
