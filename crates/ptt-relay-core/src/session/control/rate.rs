//! The per-session request limits: one token bucket per request family, with
//! rates no real terminal reaches by default, so only a broken or hostile one
//! is ever refused. The rates are settings ([`RateLimits`], `rate-*` in
//! pttd's configuration) handed to every session through its context. A refused request is answered `Error{RATE_LIMITED}`; a terminal
//! that keeps on after its refusals (more than [`REFUSALS_TOLERATED`]) is cut
//! off, as one that keeps sending malformed messages is.
//!
//! Never limited: releasing the floor (refusing it would keep the floor held)
//! and everything about an emergency (declaring one, an emergency floor
//! request, clearing one): a radio's emergency button must always work.

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use ptt_proto::pb::{self, client_message::Body as Request};

use super::limit::Bucket;
use crate::metrics::limits::RequestFamily;

/// A rate limit: requests a second on average, and at once (the bucket).
/// Written `"10/20"` (10 a second, 20 at once) in the relay's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests a second on average: how fast the bucket refills.
    pub per_second: f64,
    /// Requests at once: the bucket's size.
    pub burst: f64,
}

impl Rate {
    /// `per_second` on average, `burst` at once.
    pub const fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second, burst }
    }

    fn bucket(self) -> Bucket {
        Bucket::new(self.per_second, self.burst)
    }
}

/// Why a rate setting was refused: the value must be `N/M`, N a second on
/// average (more than 0), M at once (at least 1, or nothing would pass).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid rate {0:?}: expected \"N/M\", N requests a second (> 0) and M at once (>= 1), e.g. \"10/20\""
)]
pub struct RateError(String);

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || RateError(s.to_owned());
        let (per_second, burst) = s.trim().split_once('/').ok_or_else(error)?;
        let number = |text: &str| text.trim().parse::<f64>().ok().filter(|n| n.is_finite());
        let per_second = number(per_second).filter(|n| *n > 0.0).ok_or_else(error)?;
        let burst = number(burst).filter(|n| *n >= 1.0).ok_or_else(error)?;
        Ok(Self { per_second, burst })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.per_second, self.burst)
    }
}

/// Floor requests: 10 a second, 20 at once. A press and release by hand
/// takes a few hundred milliseconds, so a person presses at most 2–3 times a
/// second; 20 at once leave room for a client retrying a refusal.
const FLOOR_RATE: Rate = Rate::new(10.0, 20.0);

/// Joins and leaves: 20 a second, 50 at once. A radio scanning by knob
/// leaves and joins once per detent (about 10 detents a second turned fast);
/// 50 at once cover joining a whole scan list by hand (the relay's own joins
/// at log-in and regrouping are not requests and are never counted).
const MEMBERSHIP_RATE: Rate = Rate::new(20.0, 50.0);

/// Position reports: 100 a second, 200 at once. GPS receivers fix at most
/// 10–20 times a second and a replay at 40 Hz must pass; only the control
/// room's share is thinned further ([`LOCATION_FORWARDED_RATE`]).
const LOCATION_RATE: Rate = Rate::new(100.0, 200.0);

/// Status messages: 5 a second, 20 at once. Each reaches a person (or every
/// dispatcher); a user picks codes from a list, a few a minute.
const STATUS_RATE: Rate = Rate::new(5.0, 20.0);

/// A dispatcher's alerts: 1 a second, 5 at once. A roll call is a deliberate
/// act reaching many terminals and logged; 5 at once cover alerting a few
/// groups in a row.
const ALERT_RATE: Rate = Rate::new(1.0, 5.0);

/// Answers to alerts: 5 a second, 20 at once. One per alert received, and a
/// terminal may hear the alerts of several dispatchers each at their limit.
const ALERT_ACK_RATE: Rate = Rate::new(5.0, 20.0);

/// Private call setups, answers and hang-ups: 5 a second, 20 at once. A call
/// takes a setup and an end and rings a person; nobody dials 5 a second.
const PRIVATE_CALL_RATE: Rate = Rate::new(5.0, 20.0);

/// Receive-quality reports: 1 a second, 5 at once. Clients report every few
/// seconds (ptt.proto suggests 5 s).
const QUALITY_RATE: Rate = Rate::new(1.0, 5.0);

/// Requests the relay answers alone (ping, a repeated `Hello`, an empty
/// request): 10 a second, 20 at once. Clients ping every few seconds.
const OTHER_RATE: Rate = Rate::new(10.0, 20.0);

/// Refusals tolerated before the terminal is cut off: 50 at once, then 5 a
/// second on average. A client that slows down when told never gets near;
/// one that ignores `RATE_LIMITED` is cut off within a second or two.
const REFUSALS_TOLERATED: Rate = Rate::new(5.0, 50.0);

/// Position reports of a terminal forwarded to the control room: 50 a second
/// on average, 100 at once (a GPS replay at 40 Hz passes). Zone logic sees
/// every report within [`LOCATION_RATE`]; only the consoles are spared a
/// flood.
const LOCATION_FORWARDED_RATE: Rate = Rate::new(50.0, 100.0);

/// The per-session request limits (proto/voice.md §2.7): one rate per
/// request family, the refusals tolerated before a cut-off, and the share of
/// positions the control room is sent. The relay's settings fill it; the
/// defaults are rates no real terminal reaches, so only a broken or hostile
/// one is ever refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// `FloorRequest` (not of kind EMERGENCY).
    pub floor: Rate,
    /// `JoinGroup`, `LeaveGroup`.
    pub membership: Rate,
    /// `LocationReport`.
    pub location: Rate,
    /// `StatusMessage`.
    pub status: Rate,
    /// `Alert` (a dispatcher's roll call).
    pub alert: Rate,
    /// `AlertAck`.
    pub alert_ack: Rate,
    /// `PrivateCallSetup`, `…Accept`, `…Reject`, `…End`.
    pub private_call: Rate,
    /// `QualityReport`.
    pub quality: Rate,
    /// `Ping`, a repeated `Hello`, an empty request.
    pub other: Rate,
    /// Refusals tolerated before the terminal is cut off (application close
    /// code 1).
    pub refusals_tolerated: Rate,
    /// Position reports of one terminal forwarded to the control room (the
    /// rest still reach zone logic).
    pub location_forwarded: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            floor: FLOOR_RATE,
            membership: MEMBERSHIP_RATE,
            location: LOCATION_RATE,
            status: STATUS_RATE,
            alert: ALERT_RATE,
            alert_ack: ALERT_ACK_RATE,
            private_call: PRIVATE_CALL_RATE,
            quality: QUALITY_RATE,
            other: OTHER_RATE,
            refusals_tolerated: REFUSALS_TOLERATED,
            location_forwarded: LOCATION_FORWARDED_RATE,
        }
    }
}

impl RateLimits {
    /// The limit of `family`.
    pub const fn of(&self, family: RequestFamily) -> Rate {
        match family {
            RequestFamily::Floor => self.floor,
            RequestFamily::Membership => self.membership,
            RequestFamily::Location => self.location,
            RequestFamily::Status => self.status,
            RequestFamily::Alert => self.alert,
            RequestFamily::AlertAck => self.alert_ack,
            RequestFamily::PrivateCall => self.private_call,
            RequestFamily::Quality => self.quality,
            RequestFamily::Other => self.other,
        }
    }

    /// The bucket of the positions forwarded to the control room, full.
    pub(super) fn location_forwarding(&self) -> Bucket {
        self.location_forwarded.bucket()
    }
}

/// The family whose limit `request` counts against, or `None` for the
/// requests never limited (a release, anything about an emergency).
pub(super) fn family_of(request: Option<&Request>) -> Option<RequestFamily> {
    let Some(request) = request else {
        return Some(RequestFamily::Other);
    };
    let family = match request {
        Request::FloorRequest(request) if request.kind == i32::from(pb::FloorKind::Emergency) => {
            return None;
        }
        Request::FloorRelease(_) | Request::EmergencyDeclare(_) | Request::EmergencyClear(_) => {
            return None;
        }
        Request::FloorRequest(_) => RequestFamily::Floor,
        Request::JoinGroup(_) | Request::LeaveGroup(_) => RequestFamily::Membership,
        Request::LocationReport(_) => RequestFamily::Location,
        Request::StatusMessage(_) => RequestFamily::Status,
        Request::Alert(_) => RequestFamily::Alert,
        Request::AlertAck(_) => RequestFamily::AlertAck,
        Request::PrivateCallSetup(_)
        | Request::PrivateCallAccept(_)
        | Request::PrivateCallReject(_)
        | Request::PrivateCallEnd(_) => RequestFamily::PrivateCall,
        Request::QualityReport(_) => RequestFamily::Quality,
        Request::Ping(_) | Request::Hello(_) => RequestFamily::Other,
    };
    Some(family)
}

/// What the limits say about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Within the limit: handle it.
    Admitted,
    /// Refused; `first` for the session's first refusal (logged).
    Refused {
        /// Whether this is the session's first refusal.
        first: bool,
    },
    /// Refused, and the terminal has gone on after too many refusals: cut
    /// it off.
    CutOff,
}

/// One session's request limits.
#[derive(Debug)]
pub(super) struct RequestLimits {
    rates: RateLimits,
    buckets: [Bucket; RequestFamily::ALL.len()],
    tolerance: Bucket,
    refused: u64,
}

impl RequestLimits {
    /// Full buckets, from `rates`.
    pub(super) fn new(rates: RateLimits) -> Self {
        Self {
            rates,
            buckets: RequestFamily::ALL.map(|family| rates.of(family).bucket()),
            tolerance: rates.refusals_tolerated.bucket(),
            refused: 0,
        }
    }

    /// Takes a token for one request of `family` at `now`.
    pub(super) fn check(&mut self, family: RequestFamily, now: Instant) -> Verdict {
        if self.buckets[family.index()].take(now) {
            return Verdict::Admitted;
        }
        self.refused += 1;
        if !self.tolerance.take(now) {
            return Verdict::CutOff;
        }
        Verdict::Refused {
            first: self.refused == 1,
        }
    }

    /// The `Error` detail of a refusal: the family and its limit.
    pub(super) fn refusal_detail(&self, family: RequestFamily) -> String {
        let Rate { per_second, burst } = self.rates.of(family);
        format!(
            "rate limited: {family} requests beyond {per_second}/s ({burst} at once); slow down"
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_family_is_refused_beyond_its_burst_and_others_are_not() {
        let now = Instant::now();
        let mut limits = RequestLimits::new(RateLimits::default());
        for _ in 0..20 {
            assert_eq!(limits.check(RequestFamily::Floor, now), Verdict::Admitted);
        }
        assert_eq!(
            limits.check(RequestFamily::Floor, now),
            Verdict::Refused { first: true }
        );
        assert_eq!(
            limits.check(RequestFamily::Floor, now),
            Verdict::Refused { first: false }
        );
        assert_eq!(
            limits.check(RequestFamily::Membership, now),
            Verdict::Admitted
        );
        // A tenth of a second later, one more floor request passes.
        let later = now + Duration::from_millis(100);
        assert_eq!(limits.check(RequestFamily::Floor, later), Verdict::Admitted);
    }

    #[test]
    fn going_on_after_the_tolerated_refusals_cuts_off() {
        let now = Instant::now();
        let mut limits = RequestLimits::new(RateLimits::default());
        let verdicts: Vec<Verdict> = (0..100)
            .map(|_| limits.check(RequestFamily::Quality, now))
            .collect();
        let refused = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Refused { .. }))
            .count();
        let first_cut = verdicts.iter().position(|v| *v == Verdict::CutOff);
        assert_eq!(refused, 50, "{verdicts:?}");
        assert_eq!(first_cut, Some(5 + 50), "the burst, then 50 refusals");
    }

    #[test]
    fn a_real_terminal_is_never_refused() {
        // An hour of a busy terminal: a press every 2 s, a position every
        // second, a status every minute, a quality report every 5 s, a
        // channel change every 10 s, a ping every 5 s.
        let start = Instant::now();
        let mut limits = RequestLimits::new(RateLimits::default());
        for second in 0..3600u64 {
            let now = start + Duration::from_secs(second);
            let mut sent = vec![RequestFamily::Location];
            if second % 2 == 0 {
                sent.push(RequestFamily::Floor);
            }
            if second % 60 == 0 {
                sent.push(RequestFamily::Status);
            }
            if second % 5 == 0 {
                sent.extend([RequestFamily::Quality, RequestFamily::Other]);
            }
            if second % 10 == 0 {
                sent.extend([RequestFamily::Membership, RequestFamily::Membership]);
            }
            for family in sent {
                assert_eq!(limits.check(family, now), Verdict::Admitted, "{family}");
            }
        }
    }

    #[test]
    fn rates_are_written_per_second_slash_burst() {
        assert_eq!("10/20".parse(), Ok(Rate::new(10.0, 20.0)));
        assert_eq!(" 0.5 / 5 ".parse(), Ok(Rate::new(0.5, 5.0)));
        assert_eq!(Rate::new(0.5, 5.0).to_string(), "0.5/5");
        for bad in [
            "", "10", "10/", "/20", "0/20", "10/0.5", "-1/5", "ten/20", "inf/5", "1/2/3",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
        let error = "10".parse::<Rate>().unwrap_err().to_string();
        assert!(error.contains("\"10\"") && error.contains("N/M"), "{error}");
    }

    #[test]
    fn the_limits_come_from_the_settings() {
        let now = Instant::now();
        let rates = RateLimits {
            status: Rate::new(1.0, 3.0),
            refusals_tolerated: Rate::new(1.0, 2.0),
            ..RateLimits::default()
        };
        let mut limits = RequestLimits::new(rates);
        let verdicts: Vec<Verdict> = (0..6)
            .map(|_| limits.check(RequestFamily::Status, now))
            .collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Admitted,
                Verdict::Admitted,
                Verdict::Admitted,
                Verdict::Refused { first: true },
                Verdict::Refused { first: false },
                Verdict::CutOff,
            ]
        );
        let detail = limits.refusal_detail(RequestFamily::Status);
        assert!(
            detail.contains("status requests beyond 1/s (3 at once)"),
            "{detail}"
        );
    }

    #[test]
    fn releases_and_emergencies_are_never_limited() {
        let release = Request::FloorRelease(pb::FloorRelease::default());
        let declare = Request::EmergencyDeclare(pb::EmergencyDeclare::default());
        let emergency_press = Request::FloorRequest(pb::FloorRequest {
            kind: pb::FloorKind::Emergency.into(),
            ..Default::default()
        });
        for request in [&release, &declare, &emergency_press] {
            assert_eq!(family_of(Some(request)), None, "{request:?}");
        }
        let press = Request::FloorRequest(pb::FloorRequest::default());
        assert_eq!(family_of(Some(&press)), Some(RequestFamily::Floor));
        assert_eq!(family_of(None), Some(RequestFamily::Other));
    }
}
