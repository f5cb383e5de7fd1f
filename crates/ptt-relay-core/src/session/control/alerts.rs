//! Alerts (roll calls): a dispatcher's alert and a recipient's answer, both
//! handed to the alerting subsystem.

use ptt_proto::pb;

use super::session::Session;

impl Session {
    /// A dispatcher's alert; answered with the first `AlertTally` once the
    /// alert is logged, without holding up this session's requests.
    pub(super) fn send_alert(&self, id: u64, alert: pb::Alert) {
        crate::alert::send(&self.shared.alerts, &self.link, id, alert);
    }

    /// A recipient's answer to an alert; answered with `Ack` once logged.
    pub(super) fn acknowledge_alert(&self, id: u64, ack: pb::AlertAck) {
        crate::alert::acknowledge(&self.shared.alerts, &self.link, id, ack);
    }
}
