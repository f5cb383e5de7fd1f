//! How a rate (`rate-*` settings) is written: `"N/M"`, N requests a second on average and M
//! at once, read from the config file and from flags and `PTTD_RATE_*` variables alike.

use ptt_relay_core::session::{Rate, RateError};

/// How the `rate-*` keys of the config file are read: a string `"N/M"` (see [`Rate`]).
pub(super) mod rate_serde {
    use ptt_relay_core::session::Rate;
    use serde::{Deserialize, Deserializer};

    /// Reads `"10/20"`; anything else is an error naming the value.
    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Rate, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How the `--rate-*` flags and `PTTD_RATE_*` variables are read.
pub(super) fn parse_rate_arg(s: &str) -> Result<Rate, RateError> {
    s.parse()
}
