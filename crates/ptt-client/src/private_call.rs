//! Private calls: one terminal calls another; once the callee accepts, the
//! relay joins both to a temporary group and they talk in it with ordinary
//! floor control ([`Client::press`] with the call's group).
//!
//! The exchange (ptt.proto, "Private calls"):
//! - caller: [`Client::call`] → the relay's `PrivateCallSetup` with the
//!   call id and group; later [`Event::CallAccepted`](crate::Event) or
//!   [`Event::CallRejected`](crate::Event).
//! - callee: [`Event::CallIncoming`](crate::Event) → [`Client::accept_call`]
//!   or [`Client::reject_call`].
//! - after acceptance both get an unsolicited `JoinOk` for the group (the
//!   client marks it joined, never rejoins it after a reconnect).
//! - either side: [`Client::end_call`]; the other gets
//!   [`Event::CallEnded`](crate::Event). The group is forgotten on both.
//!
//! The call state itself is kept by the control reader (see
//! [`crate::membership`]), in stream order, so an event right behind an
//! answer never finds the call unknown.

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};

use crate::client::Client;
use crate::error::ClientError;
use crate::shared::lock;

impl Client {
    /// Calls terminal `callee` privately; `emergency` pre-empts the callee's
    /// other calls. The answer carries the call id and the call's group;
    /// whether the callee accepts arrives later as an event. Refused with
    /// `UNKNOWN_TERMINAL` or `FORBIDDEN` ([`ClientError::Refused`]).
    pub async fn call(
        &self,
        callee: u32,
        emergency: bool,
    ) -> Result<pb::PrivateCallSetup, ClientError> {
        let setup = pb::PrivateCallSetup {
            callee_terminal_id: callee,
            emergency,
            ..Default::default()
        };
        match self
            .shared
            .request(Request::PrivateCallSetup(setup))
            .await?
        {
            Body::PrivateCallSetup(setup) => Ok(setup),
            other => Err(call_error(other)),
        }
    }

    /// Accepts incoming call `call_id`: the relay joins both parties to the
    /// call's group (an unsolicited `JoinOk` follows).
    pub async fn accept_call(&self, call_id: u64) -> Result<(), ClientError> {
        let group_id = lock(&self.shared.groups).call_group(call_id).unwrap_or(0);
        let answer = self
            .shared
            .request(Request::PrivateCallAccept(pb::PrivateCallAccept {
                call_id,
                group_id,
            }))
            .await?;
        expect_call_ack(answer)
    }

    /// Rejects incoming call `call_id`, telling the caller why (normally
    /// [`pb::PrivateCallRejectReason::Declined`]).
    pub async fn reject_call(
        &self,
        call_id: u64,
        reason: pb::PrivateCallRejectReason,
    ) -> Result<(), ClientError> {
        let answer = self
            .shared
            .request(Request::PrivateCallReject(pb::PrivateCallReject {
                call_id,
                reason: reason.into(),
            }))
            .await;
        self.shared.call_over(call_id);
        expect_call_ack(answer?)
    }

    /// Hangs up call `call_id` (as caller or callee, before or after it was
    /// answered); the other party is told. The call's group is forgotten
    /// even if the relay had already ended the call (`UNKNOWN_CALL`).
    pub async fn end_call(&self, call_id: u64) -> Result<(), ClientError> {
        let answer = self
            .shared
            .request(Request::PrivateCallEnd(pb::PrivateCallEnd {
                call_id,
                reason: pb::PrivateCallEndReason::Hangup.into(),
            }))
            .await;
        self.shared.call_over(call_id);
        expect_call_ack(answer?)
    }

    /// The group of private call `call_id` while it is in progress.
    #[must_use]
    pub fn call_group(&self, call_id: u64) -> Option<u32> {
        lock(&self.shared.groups).call_group(call_id)
    }
}

fn expect_call_ack(answer: Body) -> Result<(), ClientError> {
    match answer {
        Body::Ack(_) => Ok(()),
        other => Err(call_error(other)),
    }
}

/// A refusal of a call request. Not about a group, so every reason but a
/// rate limit is [`ClientError::Refused`] with the relay's detail.
fn call_error(answer: Body) -> ClientError {
    match answer {
        Body::Error(error) => match pb::ErrorReason::try_from(error.reason).unwrap_or_default() {
            pb::ErrorReason::RateLimited => ClientError::RateLimited,
            reason => ClientError::Refused {
                reason,
                detail: error.detail,
            },
        },
        other => ClientError::Protocol(format!("unexpected answer to a call request: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_refusals_name_the_reason_not_a_group() {
        let forbidden = call_error(Body::Error(pb::Error {
            reason: pb::ErrorReason::Forbidden.into(),
            detail: "may not call 102".into(),
        }));
        assert_eq!(
            forbidden,
            ClientError::Refused {
                reason: pb::ErrorReason::Forbidden,
                detail: "may not call 102".into()
            }
        );
        let unknown = call_error(Body::Error(pb::Error {
            reason: pb::ErrorReason::UnknownCall.into(),
            detail: String::new(),
        }));
        assert!(matches!(
            unknown,
            ClientError::Refused {
                reason: pb::ErrorReason::UnknownCall,
                ..
            }
        ));
        assert!(matches!(
            expect_call_ack(Body::Pong(pb::Pong::default())),
            Err(ClientError::Protocol(_))
        ));
        assert_eq!(expect_call_ack(Body::Ack(pb::Ack {})), Ok(()));
    }
}
