//! Admission before authentication: which connection attempts the relay
//! spends a QUIC handshake on, how long a connection may take to say
//! `Hello`, and the session slots only authenticated terminals take.
//!
//! Anyone who reaches the UDP port can start a connection, so nothing an
//! unauthenticated peer holds may crowd out the terminals:
//!
//! - unauthenticated connections (from their first packet until the
//!   terminal is authenticated or the connection ends) have their own
//!   budget, in total and per source address (`budget`), separate from the
//!   `max-connections` sessions of authenticated terminals (`sessions`);
//! - an attempt that finds its budget full waits for a slot, briefly and in
//!   a bounded waiting room, so a burst of logins from one address (a depot
//!   behind NAT, the load generator) is served in turn instead of refused;
//! - a peer that has not proved its address gets a stateless QUIC Retry
//!   when the budget is under pressure or full, so a spoofed flood costs
//!   the relay no connection state (`gate`);
//! - a connection has `hello-timeout` from taking its slot to finish the
//!   QUIC handshake and say `Hello` (`ticket`);
//! - attempts are accepted, and refused after waiting, one at a time, so a
//!   burst of handshakes takes one worker at most and never holds the
//!   voice of running calls behind it (`lane`);
//! - every refusal is counted by reason and logged at most once per reason
//!   every few seconds (`report`, `throttle`).
//!
//! The relay's accept loop hands each `quinn::Incoming` to [`Gate::admit`];
//! the session carries the [`Ticket`] that holds its slot.

mod address;
mod admitted;
mod budget;
mod gate;
mod lane;
mod report;
mod sessions;
mod settings;
mod throttle;
mod ticket;

pub use admitted::{Admitted, Unfinished};
pub use gate::{Entry, Gate};
pub use settings::AdmissionSettings;
pub use ticket::Ticket;
