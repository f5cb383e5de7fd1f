//! Private calls: setup, accept, reject and end, handed to the private call
//! subsystem with this terminal's link.

use ptt_proto::pb;

use super::session::Session;
use crate::private_call;

impl Session {
    /// A `PrivateCallSetup`: this terminal calls another.
    pub(super) async fn setup_call(&self, id: u64, setup: pb::PrivateCallSetup) {
        private_call::setup(&self.shared.private_calls, &self.link, id, setup).await;
    }

    /// A `PrivateCallAccept`: this terminal answers a call.
    pub(super) async fn accept_call(&self, id: u64, accept: pb::PrivateCallAccept) {
        private_call::accept(&self.shared.private_calls, &self.link, id, accept.call_id).await;
    }

    /// A `PrivateCallReject`: this terminal turns a call down.
    pub(super) async fn reject_call(&self, id: u64, reject: pb::PrivateCallReject) {
        private_call::reject(&self.shared.private_calls, &self.link, id, reject).await;
    }

    /// A `PrivateCallEnd`: this terminal hangs up.
    pub(super) async fn end_call(&self, id: u64, end: pb::PrivateCallEnd) {
        private_call::end(&self.shared.private_calls, &self.link, id, end.call_id).await;
    }
}
