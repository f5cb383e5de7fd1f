//! The `max-connections` session slots: taken when a terminal is
//! authenticated, held until its connection ends. Unauthenticated
//! connections never hold one, so they cannot crowd terminals out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The sessions open now and how many may be.
#[derive(Debug)]
pub(super) struct SessionBudget {
    open: AtomicUsize,
    max: usize,
}

impl SessionBudget {
    /// A budget of `max` sessions.
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max,
        })
    }

    /// A session slot, if fewer than `max` sessions are open. A terminal
    /// `replacing` its own older session (a reconnect before the old
    /// connection timed out) gets one regardless: the older session is
    /// closed at once, so the count comes back down.
    pub(super) fn take(self: &Arc<Self>, replacing: bool) -> Option<SessionSlot> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max && !replacing {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(SessionSlot(self.clone()))
    }

    /// Sessions open now.
    #[cfg(test)]
    pub(super) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One authenticated session's place; given back when dropped.
#[derive(Debug)]
pub(super) struct SessionSlot(Arc<SessionBudget>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_capped_except_for_a_replacement_and_return_on_drop() {
        let budget = SessionBudget::new(2);
        let a = budget.take(false).unwrap();
        let b = budget.take(false).unwrap();
        assert!(budget.take(false).is_none());
        assert_eq!(budget.open(), 2);
        let replacement = budget.take(true).unwrap();
        assert_eq!(budget.open(), 3);
        drop((a, replacement));
        assert_eq!(budget.open(), 1);
        let c = budget.take(false).unwrap();
        drop((b, c));
        assert_eq!(budget.open(), 0);
    }
}
