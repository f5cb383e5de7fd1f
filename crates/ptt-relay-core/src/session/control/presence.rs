//! Coalescing a terminal's group presence (joined, left) as the control room
//! is told it: at most one update per group per [`PRESENCE_WINDOW`], the
//! latest state winning. The first change after a quiet window goes out at
//! once, so normal use is never delayed; a join/leave loop becomes a few
//! updates a second instead of thousands. Floor and emergency events never
//! pass through here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ptt_proto::pb::PresenceState;

/// The shortest time between two presence updates about one terminal in one
/// group.
pub(super) const PRESENCE_WINDOW: Duration = Duration::from_millis(250);

/// What the control room was last told about one group, and what waits.
#[derive(Debug, Clone, Copy)]
struct Slot {
    sent_at: Instant,
    sent: PresenceState,
    pending: Option<PresenceState>,
}

/// One terminal's presence updates per group, coalesced.
#[derive(Debug, Default)]
pub(super) struct PresenceBatch {
    slots: HashMap<u32, Slot>,
}

impl PresenceBatch {
    /// Offers `state` in `group` at `now`: true if it is to be sent now,
    /// false if it waits (replacing whatever waited) for [`Self::take_due`].
    pub(super) fn offer(&mut self, group: u32, state: PresenceState, now: Instant) -> bool {
        match self.slots.get_mut(&group) {
            Some(slot) if slot.pending.is_some() || now < slot.sent_at + PRESENCE_WINDOW => {
                slot.pending = Some(state);
                false
            }
            Some(slot) => {
                *slot = Slot {
                    sent_at: now,
                    sent: state,
                    pending: None,
                };
                true
            }
            None => {
                self.slots.insert(
                    group,
                    Slot {
                        sent_at: now,
                        sent: state,
                        pending: None,
                    },
                );
                true
            }
        }
    }

    /// When the earliest waiting update is due, if any waits.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter(|slot| slot.pending.is_some())
            .map(|slot| slot.sent_at + PRESENCE_WINDOW)
            .min()
    }

    /// The waiting updates due at `now` that change what the control room
    /// was told, by group; those that change nothing are dropped.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<(u32, PresenceState)> {
        self.take(|slot| now >= slot.sent_at + PRESENCE_WINDOW, now)
    }

    /// Every waiting update that changes what the control room was told
    /// (when the session ends).
    pub(super) fn take_all(&mut self, now: Instant) -> Vec<(u32, PresenceState)> {
        self.take(|_| true, now)
    }

    fn take(&mut self, due: impl Fn(&Slot) -> bool, now: Instant) -> Vec<(u32, PresenceState)> {
        let mut out = Vec::new();
        for (&group, slot) in &mut self.slots {
            let Some(state) = slot.pending.filter(|_| due(slot)) else {
                continue;
            };
            // The window restarts even when nothing changed, so the group
            // never gets two updates closer than the window.
            slot.pending = None;
            slot.sent_at = now;
            if state != slot.sent {
                slot.sent = state;
                out.push((group, state));
            }
        }
        out.sort_unstable_by_key(|(group, _)| *group);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOINED: PresenceState = PresenceState::Joined;
    const LEFT: PresenceState = PresenceState::Left;

    #[test]
    fn a_quiet_group_is_told_at_once() {
        let start = Instant::now();
        let mut batch = PresenceBatch::default();
        assert!(batch.offer(10, JOINED, start));
        assert!(batch.offer(11, JOINED, start), "another group");
        let later = start + PRESENCE_WINDOW;
        assert!(batch.offer(10, LEFT, later));
        assert_eq!(batch.deadline(), None);
    }

    #[test]
    fn a_flood_becomes_one_update_per_window_with_the_latest_state() {
        let start = Instant::now();
        let mut batch = PresenceBatch::default();
        assert!(batch.offer(10, JOINED, start));
        let mut sent = 1;
        let mut at = start;
        // Join/leave a thousand times a second for two seconds.
        for i in 1..2000u32 {
            at = start + Duration::from_millis(u64::from(i));
            let state = if i % 2 == 0 { JOINED } else { LEFT };
            if batch.offer(10, state, at) {
                sent += 1;
            }
            if batch.deadline().is_some_and(|due| due <= at) {
                sent += batch.take_due(at).len();
            }
        }
        assert!(sent <= 9, "{sent} updates in 2 s");
        // The last state (LEFT, i = 1999) is told at the end of its window.
        let due = batch.deadline().expect("waiting");
        assert!(due <= at + PRESENCE_WINDOW);
        assert_eq!(batch.take_due(due), [(10, LEFT)]);
        assert_eq!(batch.deadline(), None);
    }

    #[test]
    fn a_change_undone_within_the_window_is_not_told() {
        let start = Instant::now();
        let mut batch = PresenceBatch::default();
        assert!(batch.offer(10, JOINED, start));
        let soon = start + Duration::from_millis(10);
        assert!(!batch.offer(10, LEFT, soon));
        assert!(!batch.offer(10, JOINED, soon));
        assert_eq!(batch.take_due(start + PRESENCE_WINDOW), []);
        assert_eq!(batch.deadline(), None);
    }

    #[test]
    fn the_end_of_the_session_takes_whatever_waits() {
        let start = Instant::now();
        let mut batch = PresenceBatch::default();
        assert!(batch.offer(10, JOINED, start));
        assert!(!batch.offer(10, LEFT, start));
        assert_eq!(batch.take_due(start), []);
        assert_eq!(batch.take_all(start), [(10, LEFT)]);
    }
}
