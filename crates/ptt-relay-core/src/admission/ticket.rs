//! A connection's admission ticket: the unauthenticated slot it holds from
//! its first packet, the deadline to say `Hello`, and the session slot it
//! trades the first for once its terminal is authenticated.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::budget::PreAuthSlot;
use super::report::Reporter;
use super::sessions::{SessionBudget, SessionSlot};
use crate::metrics::admission::AdmissionRefusal;

/// The place one connection holds; dropping it gives the place back.
#[derive(Debug)]
pub struct Ticket {
    remote: SocketAddr,
    deadline: Instant,
    pre_auth: Option<PreAuthSlot>,
    session: Option<SessionSlot>,
    sessions: Arc<SessionBudget>,
    report: Arc<Reporter>,
    timed_out: bool,
}

impl Ticket {
    /// The ticket of a connection from `remote` that got `slot` now.
    pub(super) fn new(
        slot: PreAuthSlot,
        remote: SocketAddr,
        hello_timeout: Duration,
        sessions: Arc<SessionBudget>,
        report: Arc<Reporter>,
    ) -> Self {
        Self {
            remote,
            deadline: Instant::now() + hello_timeout,
            pre_auth: Some(slot),
            session: None,
            sessions,
            report,
            timed_out: false,
        }
    }

    /// When the connection must have finished its QUIC handshake and said
    /// `Hello` (`hello-timeout` after it got its slot).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Counts (and perhaps logs) that the connection missed its deadline;
    /// the caller closes it.
    pub fn hello_timed_out(&mut self) {
        if !self.timed_out {
            self.timed_out = true;
            self.report
                .refused(AdmissionRefusal::HelloTimeout, self.remote);
        }
    }

    /// Whether the connection missed its deadline (already logged, so the
    /// session need not log the closing again).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The terminal was authenticated: trades the unauthenticated slot for
    /// a session slot. `false` (counted and logged) if `max-connections`
    /// sessions are open; a terminal `replacing` its own older session is
    /// let in regardless.
    pub fn authenticate(&mut self, replacing: bool) -> bool {
        if self.session.is_some() {
            return true;
        }
        let Some(slot) = self.sessions.take(replacing) else {
            self.report
                .refused(AdmissionRefusal::MaxConnections, self.remote);
            return false;
        };
        self.session = Some(slot);
        self.pre_auth = None;
        true
    }

    /// Whether the connection holds a session slot.
    pub fn is_authenticated(&self) -> bool {
        self.session.is_some()
    }
}
