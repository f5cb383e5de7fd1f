//! The queue of pending floor requests and the member table.
//!
//! Both are sorted `Vec`s preallocated at construction: a group has at most a
//! few hundred members and the queue is bounded, so binary search and a short
//! `memmove` beat hashing, keep the order deterministic and never allocate in
//! steady state.

use std::time::{Duration, Instant};

use crate::types::{MemberRights, ParticipantId, Priority, RequestKind};

/// A queued request as seen from outside, in queue order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedRequest {
    /// The requester.
    pub who: ParticipantId,
    /// 1-based place in the queue (1 = next to be granted).
    pub position: u32,
    /// The effective priority it is ranked by.
    pub priority: Priority,
    /// What was requested.
    pub kind: RequestKind,
    /// When the request was queued.
    pub since: Instant,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) who: ParticipantId,
    pub(crate) priority: Priority,
    pub(crate) kind: RequestKind,
    pub(crate) since: Instant,
    /// When it expires unless it moves up first.
    pub(crate) expires: Option<Instant>,
    /// The position last reported to the requester.
    pub(crate) reported: u32,
}

/// Pending requests ordered by priority (highest first), then arrival.
#[derive(Debug)]
pub(crate) struct RequestQueue {
    entries: Vec<Entry>,
}

impl RequestQueue {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        RequestQueue {
            entries: Vec::with_capacity(cap),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn last(&self) -> Option<&Entry> {
        self.entries.last()
    }

    pub(crate) fn get(&self, who: ParticipantId) -> Option<&Entry> {
        self.entries.iter().find(|e| e.who == who)
    }

    /// Inserts behind every entry of the same or higher priority; returns its
    /// 1-based position, which counts as reported.
    pub(crate) fn insert(&mut self, mut entry: Entry) -> u32 {
        let idx = self
            .entries
            .partition_point(|e| e.priority >= entry.priority);
        entry.reported = position(idx);
        self.entries.insert(idx, entry);
        entry.reported
    }

    pub(crate) fn remove(&mut self, who: ParticipantId) -> Option<Entry> {
        let idx = self.entries.iter().position(|e| e.who == who)?;
        Some(self.entries.remove(idx))
    }

    pub(crate) fn pop_front(&mut self) -> Option<Entry> {
        if self.entries.is_empty() {
            None
        } else {
            Some(self.entries.remove(0))
        }
    }

    pub(crate) fn pop_back(&mut self) -> Option<Entry> {
        self.entries.pop()
    }

    /// Keeps the entries for which `keep` is true, in order.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&Entry) -> bool) {
        self.entries.retain(keep);
    }

    /// Reports position changes: calls `moved(who, position)` for every entry
    /// whose place differs from the one last reported, restarting the expiry
    /// of those that moved up. Returns the earliest expiry.
    pub(crate) fn sync_positions(
        &mut self,
        now: Instant,
        expiry: Option<Duration>,
        mut moved: impl FnMut(ParticipantId, u32),
    ) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for (idx, e) in self.entries.iter_mut().enumerate() {
            let position = position(idx);
            if e.reported != position {
                if position < e.reported {
                    e.expires = expiry.and_then(|d| now.checked_add(d));
                }
                e.reported = position;
                moved(e.who, position);
            }
            if let Some(at) = e.expires {
                earliest = Some(earliest.map_or(at, |b| b.min(at)));
            }
        }
        earliest
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = QueuedRequest> + '_ {
        self.entries
            .iter()
            .enumerate()
            .map(|(idx, e)| QueuedRequest {
                who: e.who,
                position: position(idx),
                priority: e.priority,
                kind: e.kind,
                since: e.since,
            })
    }
}

/// 1-based position of a 0-based index; the queue is far below `u32::MAX`.
pub(crate) fn position(idx: usize) -> u32 {
    u32::try_from(idx + 1).unwrap_or(u32::MAX)
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Member {
    pub(crate) id: ParticipantId,
    pub(crate) rights: MemberRights,
    /// Has an entry in the queue (saves a queue scan on every request).
    pub(crate) queued: bool,
}

/// Members sorted by id.
#[derive(Debug)]
pub(crate) struct Members {
    list: Vec<Member>,
}

impl Members {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Members {
            list: Vec::with_capacity(cap),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn get(&self, id: ParticipantId) -> Option<&Member> {
        let idx = self.list.binary_search_by_key(&id, |m| m.id).ok()?;
        Some(&self.list[idx])
    }

    /// Adds a member or replaces an existing member's rights.
    pub(crate) fn upsert(&mut self, id: ParticipantId, rights: MemberRights) {
        match self.list.binary_search_by_key(&id, |m| m.id) {
            Ok(idx) => self.list[idx].rights = rights,
            Err(idx) => self.list.insert(
                idx,
                Member {
                    id,
                    rights,
                    queued: false,
                },
            ),
        }
    }

    pub(crate) fn remove(&mut self, id: ParticipantId) -> Option<Member> {
        let idx = self.list.binary_search_by_key(&id, |m| m.id).ok()?;
        Some(self.list.remove(idx))
    }

    pub(crate) fn set_queued(&mut self, id: ParticipantId, queued: bool) {
        if let Ok(idx) = self.list.binary_search_by_key(&id, |m| m.id) {
            self.list[idx].queued = queued;
        }
    }
}
