//! What the client answers by itself, without its user.
//!
//! - Delivery receipts: a roll call counts who was reached, and a terminal
//!   is reached when its client has the alert, not when its user gets
//!   round to answering. So the client sends `AlertAck{DELIVERED}` the
//!   moment an alert that asks for it arrives
//!   ([`crate::ClientConfig::auto_ack_alerts`] turns this off); the user's
//!   "responding" or "unable" follows with [`crate::Client::ack_alert`].
//! - Orphaned call setups: the answer to a `PrivateCallSetup` whose request
//!   already timed out names a call nobody on this side knows about; it is
//!   hung up, or the callee would be rung by a caller who gave up.
//!
//! Each runs in a task of its own: the control reader that noticed must go
//! on reading (the answer to the receipt comes through it).

use std::sync::Arc;

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};

use crate::link::Link;

/// Sends the delivery receipt of `alert_id` on `link`.
pub(crate) fn deliver_receipt(link: &Arc<Link>, alert_id: u64) {
    let link = link.clone();
    tokio::spawn(async move {
        let receipt = Request::AlertAck(pb::AlertAck {
            alert_id,
            kind: pb::AlertAckKind::Delivered.into(),
            status_code: None,
        });
        match link.request(receipt).await {
            Ok(Body::Ack(_)) => tracing::debug!(alert_id, "alert delivery acknowledged"),
            Ok(other) => tracing::warn!(alert_id, answer = ?other, "delivery receipt refused"),
            Err(error) => tracing::debug!(alert_id, %error, "delivery receipt not sent"),
        }
    });
}

/// Hangs up call `call_id`, whose setup answer came too late.
pub(crate) fn hang_up_orphan(link: &Arc<Link>, call_id: u64) {
    let link = link.clone();
    tokio::spawn(async move {
        let end = Request::PrivateCallEnd(pb::PrivateCallEnd {
            call_id,
            reason: pb::PrivateCallEndReason::Hangup.into(),
        });
        if let Err(error) = link.request(end).await {
            tracing::debug!(call_id, %error, "orphaned call not hung up");
        }
    });
}
