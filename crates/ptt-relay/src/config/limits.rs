//! Session limits: how fast one terminal may send each family of requests — `rate-floor`,
//! `rate-membership`, `rate-location`, `rate-status`, `rate-alert`, `rate-alert-ack`,
//! `rate-private-call`, `rate-quality`, `rate-other` — how many refusals it may ignore
//! before it is cut off (`rate-refusals-tolerated`), and how many of its positions the
//! control room is sent (`rate-location-forwarded`), with [`Config::rate_limits`] for the
//! relay core.
//!
//! One key per limit, each written `"N/M"`: N requests a second on average, M at once (a
//! token bucket). Two numbers in one value keep the eleven limits to eleven keys, and read
//! the way proto/voice.md §2.7 tables them. A bad value names its line and key.

use ptt_relay_core::session::RateLimits;

use super::settings::Config;

impl Config {
    /// What every session's request limits are built from.
    pub fn rate_limits(&self) -> RateLimits {
        RateLimits {
            floor: self.rate_floor,
            membership: self.rate_membership,
            location: self.rate_location,
            status: self.rate_status,
            alert: self.rate_alert,
            alert_ack: self.rate_alert_ack,
            private_call: self.rate_private_call,
            quality: self.rate_quality,
            other: self.rate_other,
            refusals_tolerated: self.rate_refusals_tolerated,
            location_forwarded: self.rate_location_forwarded,
        }
    }
}

#[cfg(test)]
mod tests {
    use ptt_relay_core::session::Rate;

    use super::super::error::ConfigError;
    use super::super::settings::Cli;
    use super::*;

    #[test]
    fn defaults_match_the_core_defaults() {
        assert_eq!(Config::default().rate_limits(), RateLimits::default());
    }

    #[test]
    fn a_rate_is_read_from_the_file_and_the_command_line() {
        let text = "rate-status = \"2/4\"\nrate-location-forwarded = \"0.5/1\"\n";
        let config = Config::from_toml_str(text, "pttd.toml").unwrap();
        let limits = config.rate_limits();
        assert_eq!(limits.status, Rate::new(2.0, 4.0));
        assert_eq!(limits.location_forwarded, Rate::new(0.5, 1.0));
        assert_eq!(limits.floor, RateLimits::default().floor);

        let cli = Cli::try_load_from(["pttd", "--rate-floor", "3/6"]).unwrap();
        assert_eq!(cli.config.rate_limits().floor, Rate::new(3.0, 6.0));
        assert!(matches!(
            Cli::try_load_from(["pttd", "--rate-floor", "fast"]),
            Err(ConfigError::Cli(_))
        ));
    }

    #[test]
    fn a_bad_rate_names_line_and_key() {
        let text = "# limits\n\nrate-alert-ack = \"5 a second\"\n";
        let err = Config::from_toml_str(text, "pttd.toml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("pttd.toml:3:"), "{shown}");
        assert!(shown.contains("rate-alert-ack"), "{shown}");
        assert!(shown.contains("5 a second"), "{shown}");
        for bad in ["\"0/10\"", "\"10/0\"", "10"] {
            let text = format!("rate-floor = {bad}\n");
            let err = Config::from_toml_str(&text, "f.toml").unwrap_err();
            assert!(err.to_string().contains("rate-floor"), "{bad}: {err}");
        }
    }
}
