//! Alerts across the relays of a cluster: the relay of the dispatcher who
//! sends an alert tells the dispatcher and the control rooms of its tally;
//! the other relays deliver it to their own targets, and every relay
//! hands its targets' answers to all, so every relay's copy of the tally
//! (its dashboard's roll call) is whole (see `ptt_cluster::AlertBus`).

use ptt_proto::pb;

/// Where a relay of a cluster sends its alerts and the answers its
/// terminals give (set by the cluster; none when the relay runs alone).
pub trait AlertShare: Send + Sync + std::fmt::Debug {
    /// Sends one of this relay's alerts, logged, registered and delivered
    /// here, to the other relays' targets.
    fn share_alert(&self, alert: &pb::Alert);

    /// Sends a logged answer of one of this relay's terminals to the other
    /// relays.
    fn share_answer(&self, answer: AnswerElsewhere);
}

/// A target's answer to an alert, as the relays hand it to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerElsewhere {
    /// The alert answered.
    pub alert_id: u64,
    /// Who answered.
    pub terminal: u32,
    /// Delivered, responding or unable.
    pub kind: pb::AlertAckKind,
    /// The status code sent with it.
    pub status_code: Option<u16>,
    /// When the answering terminal's relay took it (Unix µs).
    pub at_us: u64,
}
