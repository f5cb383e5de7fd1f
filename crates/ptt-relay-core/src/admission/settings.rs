//! What admission is configured with (`hello-timeout`, `max-unauthenticated`,
//! `max-unauthenticated-per-address`, `max-connections`) and the limits
//! derived from it.

use std::time::Duration;

/// The admission settings, from the relay's configuration.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionSettings {
    /// How long a connection may take, from getting its unauthenticated
    /// slot, to finish the QUIC handshake, open its control stream and say
    /// `Hello`; also how long an attempt may wait for a slot.
    pub hello_timeout: Duration,
    /// Unauthenticated connections at once, in total.
    pub max_unauthenticated: usize,
    /// Unauthenticated connections at once from one source (an IPv4
    /// address or an IPv6 /64).
    pub max_unauthenticated_per_address: usize,
    /// Authenticated sessions at once (`max-connections`).
    pub max_sessions: usize,
}

impl AdmissionSettings {
    /// Connection attempts (with a proven address) that may wait for a slot
    /// at once; beyond it they are refused. A waiting attempt holds only
    /// the client's first packets (at most [`Self::INCOMING_BUFFER`]), no
    /// connection state.
    pub const WAITING_ROOM: usize = 4096;

    /// Bytes quinn may buffer for one attempt not yet accepted: a client's
    /// Initial and its retransmissions (the relay takes no 0-RTT data).
    pub const INCOMING_BUFFER: u64 = 16 * 1024;

    /// How long a refusal waits for the handshake lane before the attempt
    /// is dropped without an answer. The client retries its Initial and
    /// gives up on its own; the relay owes no prompt refusal to a burst.
    pub const REFUSAL_PATIENCE: Duration = Duration::from_millis(100);

    /// Whether the unauthenticated budget is under pressure (half of it or
    /// more in use): peers that have not proved their address are then
    /// sent a QUIC Retry first, which costs the relay no state.
    pub fn under_pressure(&self, in_use: usize) -> bool {
        in_use.saturating_mul(2) >= self.max_unauthenticated
    }

    /// Bounds quinn's queue of attempts not yet accepted to the waiting room
    /// (and a burst in flight to the accept loop), and what they may buffer.
    pub fn apply_to(&self, server: &mut quinn::ServerConfig) {
        server
            .max_incoming(2 * Self::WAITING_ROOM)
            .incoming_buffer_size(Self::INCOMING_BUFFER)
            .incoming_buffer_size_total(Self::WAITING_ROOM as u64 * Self::INCOMING_BUFFER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_starts_at_half_the_budget() {
        let settings = AdmissionSettings {
            hello_timeout: Duration::from_secs(5),
            max_unauthenticated: 64,
            max_unauthenticated_per_address: 8,
            max_sessions: 100,
        };
        assert!(!settings.under_pressure(31));
        assert!(settings.under_pressure(32));
    }
}
