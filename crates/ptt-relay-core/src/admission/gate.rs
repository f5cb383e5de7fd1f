//! The gate every connection attempt passes before the relay spends a QUIC
//! handshake on it: let in with a slot, sent a Retry to prove its address,
//! asked to wait for a slot, or refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

use super::address::SourceKey;
use super::admitted::Admitted;
use super::budget::{PreAuthBudget, PreAuthSlot};
use super::lane::HandshakeLane;
use super::report::Reporter;
use super::sessions::SessionBudget;
use super::settings::AdmissionSettings;
use super::ticket::Ticket;
use crate::metrics::Metrics;

/// Admission of one relay: its budgets and what it reports.
#[derive(Debug)]
pub struct Gate {
    settings: AdmissionSettings,
    pre_auth: Arc<PreAuthBudget>,
    sessions: Arc<SessionBudget>,
    report: Arc<Reporter>,
    /// Attempts waiting for a slot now.
    waiting: AtomicUsize,
    /// Where attempts are accepted, and refused after waiting, one at a time.
    lane: Arc<HandshakeLane>,
}

/// An attempt the gate let through, at once or once a slot is free.
#[derive(Debug)]
pub struct Entry(Kind);

#[derive(Debug)]
enum Kind {
    /// It got its slot.
    Ready(Admitted),
    /// It waits for one until `until`.
    Waiting {
        place: WaitingPlace,
        incoming: quinn::Incoming,
        key: SourceKey,
        until: Instant,
    },
}

impl Gate {
    /// The gate of a relay with `settings`, counting into `metrics`.
    pub fn new(settings: AdmissionSettings, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            pre_auth: PreAuthBudget::new(
                settings.max_unauthenticated,
                settings.max_unauthenticated_per_address,
                metrics.clone(),
            ),
            sessions: SessionBudget::new(settings.max_sessions),
            report: Reporter::new(metrics),
            settings,
            waiting: AtomicUsize::new(0),
            lane: Arc::new(HandshakeLane::new()),
        })
    }

    /// Decides what becomes of `incoming`. `None`: it was sent a Retry or
    /// refused (counted, and logged within limits); otherwise the entry
    /// resolves to the admitted attempt, or to `None` if its wait ran out.
    ///
    /// A peer that has not proved its address is sent a Retry when the
    /// unauthenticated budget is under pressure, or when no slot is free
    /// for it; only proven addresses wait, so a spoofed source fills
    /// neither the budget nor the waiting room.
    pub fn admit(self: &Arc<Self>, incoming: quinn::Incoming) -> Option<Entry> {
        let remote = incoming.remote_address();
        let key = SourceKey::of(remote.ip());
        let incoming = if self.settings.under_pressure(self.pre_auth.in_use()) {
            self.retry_unproven(incoming)?
        } else {
            incoming
        };
        let shortage = match self.pre_auth.try_take(key) {
            Ok(slot) => {
                let ticket = self.ticket(slot, remote);
                return Some(Entry(Kind::Ready(self.admitted(incoming, ticket))));
            }
            Err(shortage) => shortage,
        };
        let incoming = self.retry_unproven(incoming)?;
        let Some(place) = WaitingPlace::take(self) else {
            self.report.refused(shortage.refusal(), remote);
            incoming.refuse();
            return None;
        };
        Some(Entry(Kind::Waiting {
            place,
            incoming,
            key,
            until: Instant::now() + self.settings.hello_timeout,
        }))
    }

    /// Sends `incoming` a Retry if its address is unproven (`None`), else
    /// hands it back.
    fn retry_unproven(&self, incoming: quinn::Incoming) -> Option<quinn::Incoming> {
        if incoming.remote_address_validated() || !incoming.may_retry() {
            return Some(incoming);
        }
        match incoming.retry() {
            Ok(()) => {
                self.report.retried();
                None
            }
            Err(error) => Some(error.into_incoming()),
        }
    }

    fn admitted(&self, incoming: quinn::Incoming, ticket: Ticket) -> Admitted {
        Admitted::new(incoming, ticket, self.lane.clone())
    }

    /// Refuses `incoming` (a `CONNECTION_CLOSE` built under the endpoint's
    /// lock) through the lane. When a burst of waits runs out together the
    /// lane may stay busy: an attempt it cannot take within
    /// [`AdmissionSettings::REFUSAL_PATIENCE`] is ignored instead, without
    /// an answer, as a full endpoint would.
    async fn refuse(&self, incoming: quinn::Incoming) {
        let mut incoming = Some(incoming);
        let patience = Instant::now() + AdmissionSettings::REFUSAL_PATIENCE;
        self.lane
            .run(patience, || incoming.take().map(quinn::Incoming::refuse))
            .await;
        if let Some(unanswered) = incoming {
            unanswered.ignore();
        }
    }

    fn ticket(&self, slot: PreAuthSlot, remote: SocketAddr) -> Ticket {
        Ticket::new(
            slot,
            remote,
            self.settings.hello_timeout,
            self.sessions.clone(),
            self.report.clone(),
        )
    }
}

impl Entry {
    /// The admitted attempt once it has a slot; `None` (refused, counted)
    /// if none came free in time.
    pub async fn admitted(self) -> Option<Admitted> {
        let (place, incoming, key, until) = match self.0 {
            Kind::Ready(admitted) => return Some(admitted),
            Kind::Waiting {
                place,
                incoming,
                key,
                until,
            } => (place, incoming, key, until),
        };
        let gate = place.0.clone();
        let remote = incoming.remote_address();
        let taken = gate.pre_auth.take_until(key, until).await;
        drop(place);
        match taken {
            Ok(slot) => Some(gate.admitted(incoming, gate.ticket(slot, remote))),
            Err(shortage) => {
                gate.report.refused(shortage.refusal(), remote);
                gate.refuse(incoming).await;
                None
            }
        }
    }
}

/// A place in the waiting room, given back when dropped.
#[derive(Debug)]
struct WaitingPlace(Arc<Gate>);

impl WaitingPlace {
    fn take(gate: &Arc<Gate>) -> Option<Self> {
        if gate.waiting.fetch_add(1, Ordering::AcqRel) >= AdmissionSettings::WAITING_ROOM {
            gate.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        gate.report.metrics().admission.waiting.inc();
        Some(Self(gate.clone()))
    }
}

impl Drop for WaitingPlace {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        self.0.report.metrics().admission.waiting.dec();
    }
}
