//! Login: how much checking secrets may cost and how terminals log in again cheaply —
//! `auth-failures-per-minute`, `auth-global-failures-per-minute`, `auth-failure-delay`,
//! `auth-hash-workers`, `auth-hash-memory-mib`, `auth-hash-queue`, `auth-hash-max-wait` and
//! `resume-ttl` — the
//! rules these settings must meet, and [`Config::login_settings`] for the relay core.

use std::time::Duration;

use ptt_relay_core::auth::LoginSettings;

use super::error::{ConfigError, invalid};
use super::settings::Config;

/// Longest `auth-failure-delay` and `auth-hash-max-wait`: a login answered later than this
/// only holds a connection open for nothing.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(60);

/// Longest `resume-ttl`: a credential is a bearer token; a month bounds how long a stolen one
/// works once its terminal is no longer disabled or the key rotated.
const MAX_RESUME_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

impl Config {
    /// The login part of [`Config::validate`].
    pub(super) fn validate_login(&self) -> Result<(), ConfigError> {
        if self.auth_failure_delay > MAX_FAILURE_DELAY {
            return invalid("auth-failure-delay", "must be at most 1m");
        }
        if self.auth_hash_workers > 1024 {
            return invalid(
                "auth-hash-workers",
                "must be at most 1024 (0: one per core)",
            );
        }
        if self.auth_hash_memory_mib > 65_536 {
            return invalid(
                "auth-hash-memory-mib",
                "must be at most 65536 (0: workers times the largest hash's memory cost)",
            );
        }
        if self.auth_hash_queue > 100_000 {
            return invalid("auth-hash-queue", "must be at most 100000");
        }
        if self.auth_hash_max_wait > MAX_FAILURE_DELAY {
            return invalid("auth-hash-max-wait", "must be at most 1m");
        }
        if self.resume_ttl > MAX_RESUME_TTL {
            return invalid(
                "resume-ttl",
                "must be at most 30 days (720h); 0 turns it off",
            );
        }
        Ok(())
    }

    /// What the relay core's [`Authenticator`](ptt_relay_core::auth::Authenticator) is built
    /// from.
    pub fn login_settings(&self) -> LoginSettings {
        LoginSettings {
            failures_per_minute: self.auth_failures_per_minute,
            global_failures_per_minute: self.auth_global_failures_per_minute,
            failure_delay: self.auth_failure_delay,
            hash_workers: self.auth_hash_workers,
            hash_memory_kib: self.auth_hash_memory_mib.saturating_mul(1024),
            hash_queue: self.auth_hash_queue,
            hash_max_wait: self.auth_hash_max_wait,
            resume_lifetime: self.resume_ttl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_core_defaults_and_are_valid() {
        let config = Config::default();
        config.validate_login().unwrap();
        assert_eq!(config.login_settings(), LoginSettings::default());
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        type Breaks = fn(&mut Config);
        let cases: [(&str, Breaks); 6] = [
            ("auth-failure-delay", |c| {
                c.auth_failure_delay = Duration::from_secs(61)
            }),
            ("auth-hash-workers", |c| c.auth_hash_workers = 1025),
            ("auth-hash-memory-mib", |c| c.auth_hash_memory_mib = 65_537),
            ("auth-hash-queue", |c| c.auth_hash_queue = 100_001),
            ("auth-hash-max-wait", |c| {
                c.auth_hash_max_wait = Duration::from_secs(61)
            }),
            ("resume-ttl", |c| {
                c.resume_ttl = MAX_RESUME_TTL + Duration::from_secs(1)
            }),
        ];
        for (field, breaks) in cases {
            let mut config = Config::default();
            breaks(&mut config);
            match config.validate_login() {
                Err(ConfigError::Invalid { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn memory_is_given_to_the_core_in_kib_and_zero_ttl_turns_resumption_off() {
        let config = Config {
            auth_hash_memory_mib: 64,
            resume_ttl: Duration::ZERO,
            ..Config::default()
        };
        config.validate_login().unwrap();
        let settings = config.login_settings();
        assert_eq!(settings.hash_memory_kib, 64 * 1024);
        assert!(settings.resume_lifetime.is_zero());
    }
}
