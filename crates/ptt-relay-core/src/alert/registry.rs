//! The alerts of the last hour, each with its targets and tally: ids that never repeat,
//! bounded memory, and who may answer what. Nothing here sends; delivery does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ptt_proto::pb;

use super::share::AlertShare;
use super::tally::{Answer, Part, Tally};

/// How long an alert's tally is kept after it was sent.
pub const ALERT_TTL: Duration = Duration::from_secs(60 * 60);

/// Most alerts kept at once; beyond it the oldest are forgotten.
pub const MAX_ALERTS: usize = 1024;

/// The alerts of the last hour and their tallies; shared by every session.
#[derive(Debug)]
pub struct Alerts {
    alerts: DashMap<u64, AlertState>,
    /// The last alert id handed out (see the module docs).
    last_id: AtomicU64,
    /// Arrival order of answers, so a slower commit never overwrites a
    /// later answer of the same terminal.
    pub(super) next_answer: AtomicU64,
    /// The other relays of the cluster, if any.
    share: OnceLock<Arc<dyn AlertShare>>,
}

/// One registered alert.
#[derive(Debug)]
pub(super) struct AlertState {
    pub(super) sender: u32,
    pub(super) sent: Instant,
    /// Every terminal the alert was addressed to, sorted, without the sender.
    pub(super) targets: Vec<u32>,
    /// The targets by group and by organisation, for the tally's breakdown.
    pub(super) parts: Vec<Part>,
    pub(super) tally: Mutex<Tally>,
    /// The relay keeping the tally, for another relay's alert; `None` for
    /// this relay's own.
    pub(super) home: Option<Arc<str>>,
}

impl Alerts {
    /// An empty registry; `last_logged` is the largest alert id in the call
    /// log (see [`ptt_calllog::last_alert_id`]).
    pub fn new(last_logged: u64) -> Self {
        Self {
            alerts: DashMap::new(),
            last_id: AtomicU64::new(last_logged),
            next_answer: AtomicU64::new(0),
            share: OnceLock::new(),
        }
    }

    /// Sends this relay's alerts, and its terminals' answers to other
    /// relays' alerts, through `share` (set once, by the cluster).
    pub fn share_with(&self, share: Arc<dyn AlertShare>) {
        let _ = self.share.set(share);
    }

    /// The other relays of the cluster, if any.
    pub(super) fn share(&self) -> Option<&Arc<dyn AlertShare>> {
        self.share.get()
    }

    /// Takes note of another relay's alert id: ids handed out here from now
    /// on are larger, so the relays' ids do not meet (a hybrid logical
    /// clock across the cluster).
    pub(super) fn observe_id(&self, id: u64) {
        self.last_id.fetch_max(id, Ordering::Relaxed);
    }

    /// The relay keeping alert `id`'s tally, if another relay does.
    pub(super) fn home_of(&self, id: u64) -> Option<Arc<str>> {
        self.alerts.get(&id).and_then(|alert| alert.home.clone())
    }

    /// A new alert id, unique across restarts (see the module docs).
    pub fn next_id(&self, now_us: u64) -> u64 {
        let mut last = self.last_id.load(Ordering::Relaxed);
        loop {
            let id = now_us.max(last + 1);
            match self
                .last_id
                .compare_exchange_weak(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return id,
                Err(current) => last = current,
            }
        }
    }

    /// Alerts currently kept.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Whether no alert is kept.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// How many terminals alert `id` was addressed to, while it is kept (the
    /// dashboard's roll call: "42 / 90 seen").
    pub fn targets(&self, id: u64) -> Option<usize> {
        self.alerts.get(&id).map(|alert| alert.targets.len())
    }

    /// Alert `id`'s roll call by organisation, while it is kept: (name,
    /// targets not reached yet, targets), the most missing first. The
    /// dashboard shows where answers are missing.
    pub fn not_reached(&self, id: u64) -> Option<Vec<(String, u32, u32)>> {
        let alert = self.alerts.get(&id)?;
        let tally = alert.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<(String, u32, u32)> = alert
            .parts
            .iter()
            .filter(|part| part.group_id == 0)
            .map(|part| tally.part(part))
            .filter(|part| part.delivered < part.targets)
            .map(|part| (part.name, part.targets - part.delivered, part.targets))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Some(out)
    }

    /// The targets of alert `id` that have not answered at all, in id order,
    /// at most `max`, and how many there are in all; while it is kept. The
    /// dashboard names who is still missing.
    pub fn silent(&self, id: u64, max: usize) -> Option<(Vec<u32>, usize)> {
        let alert = self.alerts.get(&id)?;
        let tally = alert.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let silent = alert
            .targets
            .iter()
            .filter(|terminal| !tally.answers.contains_key(terminal));
        let count = silent.clone().count();
        Some((silent.take(max).copied().collect(), count))
    }

    /// Registers a committed alert, forgetting expired and surplus ones.
    pub(super) fn insert(&self, id: u64, state: AlertState) {
        let now = Instant::now();
        self.alerts
            .retain(|_, alert| now.saturating_duration_since(alert.sent) < ALERT_TTL);
        while self.alerts.len() >= MAX_ALERTS {
            // Ids rise with time: the smallest is the oldest.
            let Some(oldest) = self.alerts.iter().map(|a| *a.key()).min() else {
                break;
            };
            self.alerts.remove(&oldest);
        }
        self.alerts.insert(id, state);
    }

    /// Whether `terminal` may answer alert `id`.
    pub(super) fn check(&self, id: u64, terminal: u32) -> Result<(), pb::ErrorReason> {
        let alert = self.alerts.get(&id).ok_or(pb::ErrorReason::UnknownAlert)?;
        if alert.targets.binary_search(&terminal).is_err() {
            return Err(pb::ErrorReason::Forbidden);
        }
        Ok(())
    }

    /// Takes a committed answer into alert `id`'s tally and, if it changed anything, calls
    /// `tell` with the sender and the new tally (with just `entry`), still under the
    /// tally's lock, so every watcher sees the tallies in order.
    pub(super) fn take_answer(
        &self,
        id: u64,
        terminal: u32,
        answer: Answer,
        entry: pb::AlertAckEntry,
        tell: impl FnOnce(u32, pb::AlertTally),
    ) {
        let Some(alert) = self.alerts.get(&id) else {
            return; // forgotten meanwhile; the answer is logged all the same
        };
        let mut tally = alert.tally.lock().unwrap_or_else(PoisonError::into_inner);
        if !tally.apply(terminal, answer) {
            return;
        }
        tell(
            alert.sender,
            tally.to_wire(id, &alert.targets, &alert.parts, vec![entry]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_rise_and_never_repeat_even_when_the_clock_goes_back() {
        let alerts = Alerts::new(5_000);
        let first = alerts.next_id(1_000);
        assert_eq!(
            first, 5_001,
            "seeded from the log: no reuse after a clock step back"
        );
        assert_eq!(alerts.next_id(1_000), 5_002);
        assert_eq!(alerts.next_id(9_000), 9_000, "follows the clock when ahead");
        assert_eq!(alerts.next_id(9_000), 9_001);
    }

    #[test]
    fn registry_stays_bounded() {
        let alerts = Alerts::new(0);
        for id in 1..=(MAX_ALERTS as u64 + 10) {
            alerts.insert(
                id,
                AlertState {
                    sender: 1,
                    sent: Instant::now(),
                    targets: vec![2],
                    parts: Vec::new(),
                    tally: Mutex::default(),
                    home: None,
                },
            );
        }
        assert_eq!(alerts.len(), MAX_ALERTS);
        assert_eq!(
            alerts.check(1, 2),
            Err(pb::ErrorReason::UnknownAlert),
            "oldest gone"
        );
        assert_eq!(alerts.check(MAX_ALERTS as u64 + 10, 2), Ok(()));
        assert_eq!(
            alerts.check(MAX_ALERTS as u64 + 10, 3),
            Err(pb::ErrorReason::Forbidden)
        );
    }
}
