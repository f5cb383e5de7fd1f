//! The other relays' alerts delivered here and their answers tallied here,
//! and this relay's handed to them (see `alert::share`).

use std::sync::Arc;
use std::time::Duration;

use ptt_cluster::{AlertNews, SharedAlert, SharedAnswer};
use ptt_proto::pb;

use super::link::ClusterLink;
use crate::alert::delivery::Alerting;
use crate::alert::elsewhere::{answer_from_elsewhere, deliver_from_elsewhere};
use crate::alert::share::{AlertShare, AnswerElsewhere};

/// Pause before listening again when NATS would not.
const LISTEN_AGAIN_AFTER: Duration = Duration::from_secs(1);

impl AlertShare for ClusterLink {
    fn share_alert(&self, alert: &pb::Alert) {
        self.alerts_out.push_alert(SharedAlert {
            alert_id: alert.alert_id,
            from: alert.from_terminal_id,
            from_name: alert.from_name.clone(),
            text: alert.text.clone(),
            groups: alert.target_group_ids.clone(),
            requires_ack: alert.requires_ack,
            sent_at_us: alert.sent_at_us,
        });
    }

    fn share_answer(&self, answer: AnswerElsewhere) {
        self.alerts_out.push_answer(SharedAnswer {
            alert_id: answer.alert_id,
            terminal: answer.terminal,
            kind: answer.kind.into(),
            status_code: answer.status_code,
            at_us: answer.at_us,
        });
    }
}

/// Delivers the other relays' alerts to this relay's targets and takes
/// their answers into this relay's tallies, for as long as the relay runs.
pub async fn hear_alerts(cluster: Arc<ClusterLink>, alerting: Arc<Alerting>) {
    loop {
        match cluster.cluster.alerts.subscribe().await {
            Ok(mut feed) => {
                while let Some(news) = feed.next().await {
                    hear(&alerting, news);
                }
            }
            Err(error) => tracing::warn!(%error, "cannot hear the other relays' alerts"),
        }
        tokio::time::sleep(LISTEN_AGAIN_AFTER).await;
    }
}

fn hear(alerting: &Alerting, news: AlertNews) {
    match news {
        AlertNews::Alert { relay, alert } => {
            let alert = pb::Alert {
                alert_id: alert.alert_id,
                from_terminal_id: alert.from,
                from_name: alert.from_name,
                text: alert.text,
                target_group_ids: alert.groups,
                requires_ack: alert.requires_ack,
                sent_at_us: alert.sent_at_us,
            };
            deliver_from_elsewhere(alerting, &relay, alert);
        }
        AlertNews::Answer(answer) => {
            let Ok(kind) = pb::AlertAckKind::try_from(answer.kind) else {
                return;
            };
            answer_from_elsewhere(
                alerting,
                AnswerElsewhere {
                    alert_id: answer.alert_id,
                    terminal: answer.terminal,
                    kind,
                    status_code: answer.status_code,
                    at_us: answer.at_us,
                },
            );
        }
    }
}
