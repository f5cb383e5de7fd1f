//! Transport: how terminals reach the relay over QUIC — `listen`, `max-connections`,
//! admission before login (`hello-timeout`, `max-unauthenticated`,
//! `max-unauthenticated-per-address`), `idle-timeout`, `keep-alive`, `datagram-queue-ms`,
//! `shards`, `pin-shards`, `cert` and `key` — and the rules these settings must meet (logins and their limits are
//! `login.rs`'s).

use std::time::Duration;

use ptt_relay_core::shard::MAX_SHARDS;

use super::error::{ConfigError, invalid};
use super::settings::Config;

/// The longest `hello-timeout`: beyond a minute a terminal is not slow but gone, and every
/// second of it is a second a silent peer holds its place.
const MAX_HELLO_TIMEOUT: Duration = Duration::from_secs(60);

impl Config {
    /// The transport's part of [`Config::validate`].
    pub(super) fn validate_transport(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return invalid("max-connections", "must be at least 1");
        }
        if self.hello_timeout.is_zero() || self.hello_timeout > MAX_HELLO_TIMEOUT {
            return invalid("hello-timeout", "must be more than zero and at most 1m");
        }
        if self.max_unauthenticated == 0 {
            return invalid("max-unauthenticated", "must be at least 1");
        }
        if !(1..=self.max_unauthenticated).contains(&self.max_unauthenticated_per_address) {
            return invalid(
                "max-unauthenticated-per-address",
                "must be at least 1 and at most max-unauthenticated",
            );
        }
        if !(1..=10_000).contains(&self.datagram_queue_ms) {
            return invalid("datagram-queue-ms", "must be between 1 and 10000");
        }
        if self.idle_timeout.is_zero() {
            return invalid("idle-timeout", "must be more than zero");
        }
        if self.keep_alive.is_zero() || self.keep_alive >= self.idle_timeout {
            return invalid(
                "keep-alive",
                "must be more than zero and less than idle-timeout",
            );
        }
        if self.shards > MAX_SHARDS {
            return invalid("shards", "must be at most 64 (0: one per core)");
        }
        if self.cert.is_some() != self.key.is_some() {
            return invalid("cert", "cert and key must be given together");
        }
        Ok(())
    }

    /// How many shards to run: `shards`, or one per core this process may
    /// run on when it is 0.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(MAX_SHARDS),
            n => n,
        }
    }
}
