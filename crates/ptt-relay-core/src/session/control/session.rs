//! One terminal's control session: its state — the groups it hears, the
//! memberships last told to it, its rate limits, its presence updates
//! waiting for the control room — and the few helpers every
//! request family answers with. The families add their own `impl Session`
//! blocks in files of their own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ptt_proto::pb::{self, server_message::Body};

use super::limit::Bucket;
use super::presence::PresenceBatch;
use super::rate::RequestLimits;
use crate::link::Link;
use crate::roster::DynamicGrant;
use crate::session::context::SessionContext;
use crate::wire;
use ptt_directory::{Membership, Terminal, TerminalId};

/// One terminal's control session.
pub(in crate::session) struct Session {
    /// The subsystems a request can reach.
    pub(super) shared: Arc<SessionContext>,
    /// The terminal's connection.
    pub(super) link: Arc<Link>,
    /// Groups this terminal hears now.
    pub(super) joined: HashSet<u32>,
    /// The terminal's groups and rights as last told to it, to see what an
    /// administrator changed (`regroup`).
    pub(super) known: HashMap<u32, Held>,
    /// Malformed control messages so far.
    pub(super) malformed: u32,
    /// Position reports forwarded to the control room (within
    /// [`RateLimits::location_forwarded`](super::rate::RateLimits::location_forwarded)).
    pub(super) locations: Bucket,
    /// The request limits of every family (`rate`).
    pub(super) limits: RequestLimits,
    /// Set once the terminal was cut off for its request rate: the session
    /// stops reading.
    pub(super) cut_off: bool,
    /// Presence updates for the control room, coalesced per group.
    pub(super) presence: PresenceBatch,
}

/// A membership as the session last saw it: the rights, and zone logic's
/// grant if that is how the terminal is a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Held {
    /// What the terminal may do in the group.
    pub(super) rights: Membership,
    /// Zone logic's grant, if that is how the terminal is a member.
    pub(super) grant: Option<DynamicGrant>,
}

impl Session {
    /// A session for the authenticated terminal of `link`; nothing is sent
    /// until [`Session::start`].
    pub(in crate::session) fn new(shared: Arc<SessionContext>, link: Arc<Link>) -> Self {
        let rates = shared.rate_limits;
        Self {
            shared,
            link,
            joined: HashSet::new(),
            known: HashMap::new(),
            malformed: 0,
            locations: rates.location_forwarding(),
            limits: RequestLimits::new(rates),
            cut_off: false,
            presence: PresenceBatch::default(),
        }
    }

    /// The terminal's directory entry.
    pub(super) fn terminal(&self) -> Option<&Terminal> {
        self.shared
            .directory
            .terminal(TerminalId(self.link.terminal))
    }

    /// Whether this terminal hears `group_id`: joined to it, or a party of the
    /// private call using it.
    pub(super) fn hears(&self, group_id: u32) -> bool {
        self.joined.contains(&group_id)
            || self
                .shared
                .private_calls
                .is_party(group_id, self.link.terminal)
    }

    /// Answers request `id` with `Ack`.
    pub(super) fn ack(&self, id: u64) {
        self.link.send(id, Body::Ack(pb::Ack {}));
    }

    /// Answers request `id` with an `Error`.
    pub(super) fn error(&self, id: u64, reason: pb::ErrorReason, detail: &str) {
        self.link.send(id, wire::error(reason, detail));
    }
}
