//! What this relay knows of the other relays of its cluster from their
//! announcements: which terminals each serves, which floors it decides,
//! whose voice it takes, and which relays are still there.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ptt_cluster::RelayPresence;

/// A relay that has not announced itself for this long is taken for gone
/// (three missed announcements).
pub const GONE_AFTER: Duration = Duration::from_secs(3);

/// How long a group a relay said it hears counts even if an announcement
/// lacks it: that announcement may have been made before the relay started
/// hearing it (two announcement periods).
const NEWLY_HEARD_FOR: Duration = Duration::from_secs(2);

/// The other relays as last heard; read by the ops API, and by the voice
/// path only through [`Elsewhere::hears`] (one lock-free load).
#[derive(Debug, Default)]
pub struct Elsewhere {
    relays: Mutex<HashMap<String, Heard>>,
    /// The groups some other live relay takes the voice of.
    heard: ArcSwap<HeardGroups>,
}

/// The groups the other live relays take the voice of.
#[derive(Debug, Default)]
struct HeardGroups {
    /// A relay that does not say (an older version) hears every group.
    all: bool,
    groups: HashSet<u32>,
}

#[derive(Debug)]
struct Heard {
    at: Instant,
    presence: Arc<RelayPresence>,
    /// Its announcement's `hears` (`None`: every group).
    hears: Option<HashSet<u32>>,
    /// The groups it said it hears since, and when.
    newly: HashMap<u32, Instant>,
}

/// Another relay as the ops API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherRelay {
    /// Its id.
    pub relay: String,
    /// How many terminals it serves.
    pub terminals: usize,
    /// The groups whose floors it decides.
    pub decides: Vec<u32>,
}

impl Elsewhere {
    /// Notes an announcement.
    pub fn heard(&self, presence: RelayPresence) {
        let hears = presence
            .hears
            .as_ref()
            .map(|groups| groups.iter().copied().collect());
        let mut relays = self.lock();
        let mut newly = relays
            .remove(&presence.relay)
            .map(|heard| heard.newly)
            .unwrap_or_default();
        newly.retain(|_, at| at.elapsed() < NEWLY_HEARD_FOR);
        relays.insert(
            presence.relay.clone(),
            Heard {
                at: Instant::now(),
                presence: Arc::new(presence),
                hears,
                newly,
            },
        );
        drop(relays);
        self.refresh();
    }

    /// Notes that `relay` takes `group`'s voice from now on.
    pub fn hears_from_now(&self, relay: &str, group: u32) {
        let mut relays = self.lock();
        let heard = relays.entry(relay.to_owned()).or_insert_with(|| Heard {
            at: Instant::now(),
            presence: Arc::new(RelayPresence {
                relay: relay.to_owned(),
                terminals: Vec::new(),
                decides: Vec::new(),
                hears: Some(Vec::new()),
            }),
            hears: Some(HashSet::new()),
            newly: HashMap::new(),
        });
        heard.newly.insert(group, Instant::now());
        drop(relays);
        self.refresh();
    }

    /// Whether some other relay takes `group`'s voice now: a frame of a
    /// talker here is published only then. Lock-free.
    #[inline]
    pub fn hears(&self, group: u32) -> bool {
        let heard = self.heard.load();
        heard.all || heard.groups.contains(&group)
    }

    /// Recomputes which groups the live relays hear (a relay gone stops
    /// counting).
    pub fn refresh(&self) {
        let mut heard = HeardGroups::default();
        for relay in self.lock().values() {
            if relay.at.elapsed() >= GONE_AFTER {
                continue;
            }
            match &relay.hears {
                Some(groups) => heard.groups.extend(groups),
                None => heard.all = true,
            }
            heard.groups.extend(
                relay
                    .newly
                    .iter()
                    .filter(|(_, at)| at.elapsed() < NEWLY_HEARD_FOR)
                    .map(|(group, _)| *group),
            );
        }
        self.heard.store(Arc::new(heard));
    }

    /// The relays heard within [`GONE_AFTER`], by id.
    pub fn relays(&self) -> Vec<OtherRelay> {
        let mut out: Vec<OtherRelay> = self
            .live()
            .into_iter()
            .map(|presence| OtherRelay {
                relay: presence.relay.clone(),
                terminals: presence.terminals.len(),
                decides: presence.decides.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.relay.cmp(&b.relay));
        out
    }

    /// The terminals logged in to the other relays, with the relay of each.
    pub fn terminals(&self) -> HashMap<u32, String> {
        let mut out = HashMap::new();
        for presence in self.live() {
            for &terminal in &presence.terminals {
                out.insert(terminal, presence.relay.clone());
            }
        }
        out
    }

    /// The other relay `terminal` is logged in to, if any.
    pub fn relay_of(&self, terminal: u32) -> Option<String> {
        self.live()
            .into_iter()
            .find(|presence| presence.terminals.contains(&terminal))
            .map(|presence| presence.relay.clone())
    }

    /// The relay deciding each group's floor, among the other relays.
    pub fn deciders(&self) -> HashMap<u32, String> {
        let mut out = HashMap::new();
        for presence in self.live() {
            for &group in &presence.decides {
                out.insert(group, presence.relay.clone());
            }
        }
        out
    }

    /// Whether `relay` announced itself before and has been silent for
    /// [`GONE_AFTER`] since: killed, or cut off from NATS. A relay never
    /// heard is not gone (it may just have started).
    pub fn gone(&self, relay: &str) -> bool {
        self.lock()
            .get(relay)
            .is_some_and(|heard| heard.at.elapsed() >= GONE_AFTER)
    }

    fn live(&self) -> Vec<Arc<RelayPresence>> {
        self.lock()
            .values()
            .filter(|heard| heard.at.elapsed() < GONE_AFTER)
            .map(|heard| heard.presence.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Heard>> {
        self.relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(relay: &str, hears: Option<Vec<u32>>) -> RelayPresence {
        RelayPresence {
            relay: relay.to_owned(),
            terminals: vec![7],
            decides: Vec::new(),
            hears,
        }
    }

    #[test]
    fn a_group_just_heard_outlives_an_announcement_made_before() {
        let elsewhere = Elsewhere::default();
        assert!(!elsewhere.hears(11));
        elsewhere.heard(presence("relay-b", Some(vec![10])));
        assert!(elsewhere.hears(10) && !elsewhere.hears(11));
        elsewhere.hears_from_now("relay-b", 11);
        assert!(elsewhere.hears(11));
        // B's next announcement was made before it subscribed to group 11.
        elsewhere.heard(presence("relay-b", Some(vec![10])));
        assert!(elsewhere.hears(11), "dropped by a stale announcement");
        elsewhere.heard(presence("relay-b", Some(Vec::new())));
        assert!(!elsewhere.hears(10));
        assert_eq!(elsewhere.relay_of(7).as_deref(), Some("relay-b"));
    }

    #[test]
    fn a_relay_that_does_not_say_what_it_hears_hears_everything() {
        let elsewhere = Elsewhere::default();
        elsewhere.heard(presence("relay-old", None));
        assert!(elsewhere.hears(10) && elsewhere.hears(4242));
    }
}
