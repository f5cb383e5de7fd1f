//! One terminal's connection: handshake and authentication, then three
//! tasks — control requests in, control messages out, voice datagrams in —
//! until the connection ends, when the terminal leaves its groups.
//!
//! [`serve`] runs a connection from end to end (`connection`), after its
//! handshake (`handshake`); `control` answers the terminal's requests, read
//! off the control stream by `read`; [`disconnect_disabled`] closes the
//! session of a terminal an administrator disabled. [`RateLimits`] are the
//! per-session request limits the relay's settings give every session.

mod connection;
pub mod context;
mod control;
mod disable;
mod handshake;
mod read;
mod voice_in;

pub use connection::{Door, serve};
pub use control::rate::{Rate, RateError, RateLimits};
pub use disable::disconnect_disabled;
