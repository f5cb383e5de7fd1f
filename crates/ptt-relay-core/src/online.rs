//! Who is online: the live session of each authenticated terminal, by terminal id.
//!
//! One session per terminal: a newer login replaces the older one. Sessions insert
//! themselves after authentication and remove themselves when they end; everything else
//! (alerts, private calls, zone logic, the admin API) only looks a terminal up to reach it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use crate::link::Link;

/// The terminals online now, each with the link to its session.
#[derive(Debug, Default)]
pub struct Online {
    links: DashMap<u32, Arc<Link>>,
    next_session: AtomicU64,
}

impl Online {
    /// The session of `terminal`, if it is online.
    pub fn get(&self, terminal: u32) -> Option<Arc<Link>> {
        self.links.get(&terminal).map(|link| link.clone())
    }

    /// Whether `terminal` is online.
    pub fn contains(&self, terminal: u32) -> bool {
        self.links.contains_key(&terminal)
    }

    /// The terminal ids online now (a snapshot; terminals may come and go meanwhile).
    pub fn terminals(&self) -> Vec<u32> {
        self.links.iter().map(|entry| *entry.key()).collect()
    }

    /// How many terminals are online.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether nobody is online.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Registers `link` as its terminal's session, returning the session it replaced.
    pub fn insert(&self, link: Arc<Link>) -> Option<Arc<Link>> {
        self.links.insert(link.terminal, link)
    }

    /// Removes `link` if it is still its terminal's session (a newer login may have
    /// replaced it); returns whether it was.
    pub fn remove_if_current(&self, link: &Link) -> bool {
        self.links
            .remove_if(&link.terminal, |_, current| current.session == link.session)
            .is_some()
    }

    /// A new relay-unique session id.
    pub fn next_session(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed) + 1
    }
}
