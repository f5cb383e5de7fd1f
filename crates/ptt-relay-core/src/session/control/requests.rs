//! Routes each control request to the handler of its family (floor,
//! membership, private calls, alerts, reports), once its family's rate
//! limit let it through.

use std::time::Instant;

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};

use super::rate::{self, Verdict};
use super::session::Session;
use crate::link;

impl Session {
    /// Handles one control request.
    pub(super) async fn handle(&mut self, message: pb::ClientMessage) {
        let id = message.request_id;
        if !self.admit(id, message.body.as_ref()) {
            return;
        }
        let Some(body) = message.body else {
            return self.error(id, pb::ErrorReason::UnsupportedRequest, "empty request");
        };
        match body {
            Request::Hello(_) => self.error(
                id,
                pb::ErrorReason::AlreadyAuthenticated,
                "already logged in",
            ),
            Request::JoinGroup(join) => self.join(id, join.group_id).await,
            Request::LeaveGroup(leave) => self.leave(id, leave.group_id).await,
            Request::FloorRequest(request) => self.floor_request(id, request).await,
            Request::EmergencyDeclare(declare) => self.declare_emergency(id, declare).await,
            Request::FloorRelease(release) => self.release_floor(id, release).await,
            Request::EmergencyClear(clear) => self.clear_emergency(id, clear).await,
            Request::Ping(ping) => self.link.send(
                id,
                Body::Pong(pb::Pong {
                    client_send_time_us: ping.client_send_time_us,
                    server_time_us: self.shared.clock.unix_us_now(),
                }),
            ),
            Request::LocationReport(report) => self.location(id, report),
            Request::StatusMessage(status) => self.status(id, status),
            Request::QualityReport(report) => self.quality(id, &report),
            Request::Alert(alert) => self.send_alert(id, alert),
            Request::AlertAck(ack) => self.acknowledge_alert(id, ack),
            Request::PrivateCallSetup(setup) => self.setup_call(id, setup).await,
            Request::PrivateCallAccept(accept) => self.accept_call(id, accept).await,
            Request::PrivateCallReject(reject) => self.reject_call(id, reject).await,
            Request::PrivateCallEnd(end) => self.end_call(id, end).await,
        }
    }

    /// Checks `request` against its family's rate limit: false after
    /// answering it `Error{RATE_LIMITED}` (and cutting the terminal off if
    /// it has gone on after too many refusals).
    fn admit(&mut self, id: u64, request: Option<&Request>) -> bool {
        let Some(family) = rate::family_of(request) else {
            return true;
        };
        let verdict = self.limits.check(family, Instant::now());
        if verdict == Verdict::Admitted {
            return true;
        }
        self.shared.metrics.rate.count_refusal(family);
        self.error(
            id,
            pb::ErrorReason::RateLimited,
            &self.limits.refusal_detail(family),
        );
        match verdict {
            Verdict::Refused { first: true } => tracing::warn!(
                terminal = self.link.terminal,
                session = self.link.session,
                family = family.as_str(),
                "terminal rate limited: requests refused until it slows down"
            ),
            Verdict::CutOff if !self.cut_off => {
                self.cut_off = true;
                self.shared.metrics.rate.count_cut_off();
                self.link.cut_off(
                    link::CLOSE_PROTOCOL,
                    "too many requests refused for their rate",
                );
            }
            _ => {}
        }
        false
    }
}
