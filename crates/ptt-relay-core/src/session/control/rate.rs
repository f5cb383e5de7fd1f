//! The per-session request limits: one token bucket per request family, with
//! rates no real terminal reaches, so only a broken or hostile one is ever
//! refused. A refused request is answered `Error{RATE_LIMITED}`; a terminal
//! that keeps on after its refusals (more than [`REFUSALS_TOLERATED`]) is cut
//! off, as one that keeps sending malformed messages is.
//!
//! Never limited: releasing the floor (refusing it would keep the floor held)
//! and everything about an emergency (declaring one, an emergency floor
//! request, clearing one): a radio's emergency button must always work.

use std::time::Instant;

use ptt_proto::pb::{self, client_message::Body as Request};

use super::limit::Bucket;
use crate::metrics::limits::RequestFamily;

/// A rate limit: requests a second on average, and at once (the bucket).
pub(super) type Rate = (f64, f64);

/// Floor requests: 10 a second, 20 at once. A press and release by hand
/// takes a few hundred milliseconds, so a person presses at most 2–3 times a
/// second; 20 at once leave room for a client retrying a refusal.
pub(super) const FLOOR_RATE: Rate = (10.0, 20.0);

/// Joins and leaves: 20 a second, 50 at once. A radio scanning by knob
/// leaves and joins once per detent (about 10 detents a second turned fast);
/// 50 at once cover joining a whole scan list by hand (the relay's own joins
/// at log-in and regrouping are not requests and are never counted).
pub(super) const MEMBERSHIP_RATE: Rate = (20.0, 50.0);

/// Position reports: 100 a second, 200 at once. GPS receivers fix at most
/// 10–20 times a second and a replay at 40 Hz must pass; only the control
/// room's share is thinned further (`LOCATION_RATE`, 50 a second).
pub(super) const LOCATION_RATE: Rate = (100.0, 200.0);

/// Status messages: 5 a second, 20 at once. Each reaches a person (or every
/// dispatcher); a user picks codes from a list, a few a minute.
pub(super) const STATUS_RATE: Rate = (5.0, 20.0);

/// A dispatcher's alerts: 1 a second, 5 at once. A roll call is a deliberate
/// act reaching many terminals and logged; 5 at once cover alerting a few
/// groups in a row.
pub(super) const ALERT_RATE: Rate = (1.0, 5.0);

/// Answers to alerts: 5 a second, 20 at once. One per alert received, and a
/// terminal may hear the alerts of several dispatchers each at their limit.
pub(super) const ALERT_ACK_RATE: Rate = (5.0, 20.0);

/// Private call setups, answers and hang-ups: 5 a second, 20 at once. A call
/// takes a setup and an end and rings a person; nobody dials 5 a second.
pub(super) const PRIVATE_CALL_RATE: Rate = (5.0, 20.0);

/// Receive-quality reports: 1 a second, 5 at once. Clients report every few
/// seconds (ptt.proto suggests 5 s).
pub(super) const QUALITY_RATE: Rate = (1.0, 5.0);

/// Requests the relay answers alone (ping, a repeated `Hello`, an empty
/// request): 10 a second, 20 at once. Clients ping every few seconds.
pub(super) const OTHER_RATE: Rate = (10.0, 20.0);

/// Refusals tolerated before the terminal is cut off: 50 at once, then 5 a
/// second on average. A client that slows down when told never gets near;
/// one that ignores `RATE_LIMITED` is cut off within a second or two.
pub(super) const REFUSALS_TOLERATED: Rate = (5.0, 50.0);

/// The limit of `family`.
pub(super) const fn rate_of(family: RequestFamily) -> Rate {
    match family {
        RequestFamily::Floor => FLOOR_RATE,
        RequestFamily::Membership => MEMBERSHIP_RATE,
        RequestFamily::Location => LOCATION_RATE,
        RequestFamily::Status => STATUS_RATE,
        RequestFamily::Alert => ALERT_RATE,
        RequestFamily::AlertAck => ALERT_ACK_RATE,
        RequestFamily::PrivateCall => PRIVATE_CALL_RATE,
        RequestFamily::Quality => QUALITY_RATE,
        RequestFamily::Other => OTHER_RATE,
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
    buckets: [Bucket; RequestFamily::ALL.len()],
    tolerance: Bucket,
    refused: u64,
}

impl RequestLimits {
    /// Full buckets, from the rates above.
    pub(super) fn new() -> Self {
        let bucket = |(per_second, burst): Rate| Bucket::new(per_second, burst);
        Self {
            buckets: RequestFamily::ALL.map(|family| bucket(rate_of(family))),
            tolerance: bucket(REFUSALS_TOLERATED),
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
}

/// The `Error` detail of a refusal: the family and its limit.
pub(super) fn refusal_detail(family: RequestFamily) -> String {
    let (per_second, burst) = rate_of(family);
    format!("rate limited: {family} requests beyond {per_second}/s ({burst} at once); slow down")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_family_is_refused_beyond_its_burst_and_others_are_not() {
        let now = Instant::now();
        let mut limits = RequestLimits::new();
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
        let mut limits = RequestLimits::new();
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
        let mut limits = RequestLimits::new();
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
