//! Dispatch: who talks to whom — the `directory` of terminals, groups and ACLs, the
//! `backup-radius-m` of emergencies, the number of `private-calls` and how long one rings
//! (`private-call-answer-timeout`) — and the rules these settings must meet.

use std::time::Duration;

use super::error::{ConfigError, invalid};
use super::settings::Config;

impl Config {
    /// The dispatch part of [`Config::validate`].
    pub(super) fn validate_dispatch(&self) -> Result<(), ConfigError> {
        if !(1..=20_000).contains(&self.backup_radius_m) {
            return invalid("backup-radius-m", "must be between 1 and 20000");
        }
        if !(1..=4096).contains(&self.private_calls) {
            return invalid("private-calls", "must be between 1 and 4096");
        }
        let ringing = Duration::from_secs(1)..=Duration::from_secs(300);
        if !ringing.contains(&self.private_call_answer_timeout) {
            return invalid("private-call-answer-timeout", "must be between 1s and 5m");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_timeout_defaults_to_the_core_default_and_is_bounded() {
        let config = Config::default();
        assert_eq!(
            config.private_call_answer_timeout,
            ptt_relay_core::private_call::DEFAULT_ANSWER_TIMEOUT
        );
        config.validate_dispatch().unwrap();
        for bad in [Duration::from_millis(999), Duration::from_secs(301)] {
            let config = Config {
                private_call_answer_timeout: bad,
                ..Config::default()
            };
            match config.validate_dispatch() {
                Err(ConfigError::Invalid { field, .. }) => {
                    assert_eq!(field, "private-call-answer-timeout");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let text = "private-call-answer-timeout = \"soon\"\n";
        let err = Config::from_toml_str(text, "pttd.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("pttd.toml:1:"), "{err}");
        assert!(err.contains("private-call-answer-timeout"), "{err}");
    }
}
