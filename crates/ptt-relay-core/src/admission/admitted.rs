//! A connection attempt let in: its QUIC handshake, started through the
//! handshake lane and finished by the ticket's deadline.

use std::net::SocketAddr;
use std::sync::Arc;

use super::lane::HandshakeLane;
use super::ticket::Ticket;

/// A connection attempt let in, with the ticket holding its place: what
/// the relay's accept loop hands to a session.
#[derive(Debug)]
pub struct Admitted {
    incoming: quinn::Incoming,
    ticket: Ticket,
    lane: Arc<HandshakeLane>,
}

/// Why an admitted attempt did not become a connection.
#[derive(Debug)]
pub enum Unfinished {
    /// The handshake did not finish by the ticket's deadline (the lane was
    /// busy, or the peer too slow or silent).
    TimedOut,
    /// The handshake failed.
    Failed(quinn::ConnectionError),
}

impl Admitted {
    pub(super) fn new(incoming: quinn::Incoming, ticket: Ticket, lane: Arc<HandshakeLane>) -> Self {
        Self {
            incoming,
            ticket,
            lane,
        }
    }

    /// The address the attempt came from.
    pub fn remote_address(&self) -> SocketAddr {
        self.incoming.remote_address()
    }

    /// Accepts the attempt when the handshake lane is free and waits for its
    /// QUIC handshake to finish, all by the ticket's deadline. The ticket
    /// comes back either way: it holds the connection's place while it is
    /// served, and counts a missed deadline.
    pub async fn handshake(self) -> (Ticket, Result<quinn::Connection, Unfinished>) {
        let Self {
            incoming,
            ticket,
            lane,
        } = self;
        let deadline = ticket.deadline();
        let connecting = match lane.run(deadline, || incoming.accept()).await {
            Some(Ok(connecting)) => connecting,
            Some(Err(error)) => return (ticket, Err(Unfinished::Failed(error))),
            None => return (ticket, Err(Unfinished::TimedOut)),
        };
        let finished = match tokio::time::timeout_at(deadline, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(Unfinished::Failed(error)),
            Err(_) => Err(Unfinished::TimedOut),
        };
        (ticket, finished)
    }
}
