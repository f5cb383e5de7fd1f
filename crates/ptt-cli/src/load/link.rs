//! `ptt load --link`: a field-like network between the generator and the
//! relay, made by the `ptt-link` proxy on loopback (the kernel's `netem`
//! is not everywhere). Every terminal's packets go through it both ways.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ptt_link::{Impairment, LossyProxy};

/// A link's round-trip delay, jitter and loss, each way alike: every packet
/// waits half the RTT plus a uniform random `0..=jitter` (so packets
/// overtake each other when the jitter exceeds their spacing, as on a
/// radio link), and is lost with probability `loss`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkProfile {
    /// Round-trip delay without jitter.
    pub rtt: Duration,
    /// Largest extra random delay of a packet, each way.
    pub jitter: Duration,
    /// Probability that a packet is lost, each way, 0.0..=1.0.
    pub loss: f64,
}

impl LinkProfile {
    /// A good wired or Wi-Fi path across a city: 30 ms RTT, 5 ms of jitter,
    /// 1 % loss.
    pub const FIELD: LinkProfile = LinkProfile {
        rtt: Duration::from_millis(30),
        jitter: Duration::from_millis(5),
        loss: 0.01,
    };

    /// A handset on a cellular network: 100 ms RTT, 20 ms of jitter, 1 %
    /// loss.
    pub const CELLULAR: LinkProfile = LinkProfile {
        rtt: Duration::from_millis(100),
        jitter: Duration::from_millis(20),
        loss: 0.01,
    };

    /// What the proxy does to each direction.
    fn impairment(self) -> Impairment {
        Impairment::loss(self.loss)
            .with_delay(self.rtt / 2)
            .with_jitter(self.jitter)
    }

    /// Starts a proxy in front of `relay` that impairs both directions so;
    /// terminals connect to its address instead. It runs on the calling
    /// runtime until dropped.
    pub(crate) async fn start(
        self,
        relay: std::net::SocketAddr,
        seed: u64,
    ) -> std::io::Result<LossyProxy> {
        let proxy = LossyProxy::start(relay, seed).await?;
        proxy.set_both(self.impairment());
        Ok(proxy)
    }
}

impl fmt::Display for LinkProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rtt={}ms,jitter={}ms,loss={}%",
            self.rtt.as_millis(),
            self.jitter.as_millis(),
            self.loss * 100.0
        )
    }
}

/// Why a `--link` value was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LinkError {
    /// Not `field`, `cellular` or `key=value` pairs.
    #[error("`{0}` is not a link: give field, cellular, or rtt=30ms,jitter=5ms,loss=1%")]
    Form(String),
    /// A key other than rtt, jitter and loss.
    #[error("unknown link setting `{0}` (rtt, jitter, loss)")]
    Key(String),
    /// A value that does not parse or is out of range.
    #[error("bad {key} `{value}`: {why}")]
    Value {
        /// The setting.
        key: &'static str,
        /// What was given.
        value: String,
        /// What is expected.
        why: &'static str,
    },
}

/// Longest RTT a link may have: past it no voice call works anyway.
const MAX_RTT: Duration = Duration::from_secs(2);

impl FromStr for LinkProfile {
    type Err = LinkError;

    /// `field`, `cellular`, or comma-separated `rtt=<ms>ms`,
    /// `jitter=<ms>ms`, `loss=<percent>%` (each optional, default 0).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "field" => return Ok(Self::FIELD),
            "cellular" => return Ok(Self::CELLULAR),
            _ => {}
        }
        let mut link = LinkProfile {
            rtt: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
        };
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(LinkError::Form(text.to_owned()));
            };
            match key.trim() {
                "rtt" => link.rtt = millis("rtt", value)?,
                "jitter" => link.jitter = millis("jitter", value)?,
                "loss" => link.loss = percent(value)?,
                other => return Err(LinkError::Key(other.to_owned())),
            }
        }
        if link.rtt > MAX_RTT || link.jitter > MAX_RTT {
            return Err(LinkError::Value {
                key: "rtt",
                value: text.to_owned(),
                why: "rtt and jitter are at most 2000ms",
            });
        }
        Ok(link)
    }
}

/// `30ms` (or `30`) as a duration.
fn millis(key: &'static str, value: &str) -> Result<Duration, LinkError> {
    let number = value.trim().trim_end_matches("ms");
    number
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| LinkError::Value {
            key,
            value: value.to_owned(),
            why: "whole milliseconds, like 30ms",
        })
}

/// `1%` (or `1`) as a probability.
fn percent(value: &str) -> Result<f64, LinkError> {
    let number = value.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        _ => Err(LinkError::Value {
            key: "loss",
            value: value.to_owned(),
            why: "a percentage from 0 to 100, like 1%",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_settings_parse() {
        assert_eq!("field".parse(), Ok(LinkProfile::FIELD));
        assert_eq!("cellular".parse(), Ok(LinkProfile::CELLULAR));
        assert_eq!(
            "rtt=40ms, loss=2.5%".parse(),
            Ok(LinkProfile {
                rtt: Duration::from_millis(40),
                jitter: Duration::ZERO,
                loss: 0.025,
            })
        );
        assert_eq!(
            "jitter=7".parse::<LinkProfile>().unwrap().jitter,
            Duration::from_millis(7)
        );
        let round = LinkProfile::FIELD.to_string().parse::<LinkProfile>();
        assert_eq!(round, Ok(LinkProfile::FIELD), "Display parses back");
    }

    #[test]
    fn bad_links_say_what_is_wrong() {
        assert_eq!(
            "fast".parse::<LinkProfile>(),
            Err(LinkError::Form("fast".to_owned()))
        );
        assert_eq!(
            "delay=3ms".parse::<LinkProfile>(),
            Err(LinkError::Key("delay".to_owned()))
        );
        for bad in ["rtt=3s", "rtt=-1ms", "loss=101%", "loss=x", "rtt=5000ms"] {
            let error = bad.parse::<LinkProfile>().unwrap_err();
            assert!(matches!(error, LinkError::Value { .. }), "{bad}: {error}");
        }
    }

    #[test]
    fn each_direction_gets_half_the_rtt() {
        let impairment = LinkProfile::FIELD.impairment();
        assert_eq!(impairment.delay, Duration::from_millis(15));
        assert_eq!(impairment.jitter, Duration::from_millis(5));
        assert!((impairment.loss - 0.01).abs() < 1e-12);
    }
}
