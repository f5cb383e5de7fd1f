//! The floor's timers: one closed enum and a table of deadlines, the earliest
//! of which is what `poll_timeout` reports.

use std::time::Instant;

/// Every timer a floor can arm.
///
/// The declaration order is the firing order for equal deadlines: burst timers
/// come before queue expiry, so a queued request due to expire at the very
/// instant the floor frees up is granted rather than dropped; media inactivity
/// comes before the talk limit, so a silent holder is released outright rather
/// than given a grace period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// End of the revoke grace period (MCPTT T8).
    RevokeGrace = 0,
    /// The holder has been silent too long (MCPTT T1).
    MediaInactivity = 1,
    /// The burst reached its talk limit (MCPTT T2).
    TalkLimit = 2,
    /// The earliest queued request is due to expire.
    QueueExpiry = 3,
}

impl Timer {
    const ALL: [Timer; 4] = [
        Timer::RevokeGrace,
        Timer::MediaInactivity,
        Timer::TalkLimit,
        Timer::QueueExpiry,
    ];
}

/// Deadline per [`Timer`], `None` when disarmed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; 4],
}

impl TimerTable {
    /// Arms (or with `None` disarms) `timer`.
    pub(crate) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.deadlines[timer as usize] = at;
    }

    /// Disarms `timer`.
    pub(crate) fn clear(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    /// The earliest armed timer, ties broken by declaration order.
    pub(crate) fn earliest(&self) -> Option<(Timer, Instant)> {
        let mut best: Option<(Timer, Instant)> = None;
        for timer in Timer::ALL {
            if let Some(at) = self.deadlines[timer as usize]
                && best.is_none_or(|(_, b)| at < b)
            {
                best = Some((timer, at));
            }
        }
        best
    }

    /// Disarms every burst timer (all but queue expiry).
    pub(crate) fn clear_burst(&mut self) {
        self.clear(Timer::RevokeGrace);
        self.clear(Timer::MediaInactivity);
        self.clear(Timer::TalkLimit);
    }
}
