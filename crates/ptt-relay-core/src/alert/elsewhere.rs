//! Other relays' alerts delivered here, and other relays' answers taken
//! into this relay's tallies (see [`super::share`]).

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ptt_proto::pb::{self, server_message::Body};

use super::delivery::{Alerting, parts, reach};
use super::registry::AlertState;
use super::share::AnswerElsewhere;
use super::tally::Answer;
use crate::link;

/// Relay `home`'s alert: registered (its answers are told by `home`) and
/// delivered to this relay's targets, once each. Its record is in the call
/// log already (`home` logged it before sending it; the cluster's call log
/// brings it here).
pub fn deliver_from_elsewhere(alerts: &Alerting, home: &str, alert: pb::Alert) {
    alerts.alerts.observe_id(alert.alert_id);
    if alerts.alerts.targets(alert.alert_id).is_some() {
        // Two relays made the same id in the same microsecond before either
        // heard the other's: this relay's own alert keeps its tally.
        tracing::warn!(
            alert = alert.alert_id,
            relay = home,
            "another relay's alert has the id of one kept here: not delivered here"
        );
        return;
    }
    let (recipients, targets) = reach(alerts, &alert);
    let parts = parts(alerts, &alert.target_group_ids, &targets);
    tracing::info!(
        alert = alert.alert_id,
        relay = home,
        online = recipients.len(),
        "alert of another relay delivered"
    );
    alerts.alerts.insert(
        alert.alert_id,
        AlertState {
            sender: alert.from_terminal_id,
            sent: Instant::now(),
            targets,
            parts,
            tally: Mutex::default(),
            home: Some(home.into()),
        },
    );
    let frame = link::frame(0, Body::Alert(alert));
    for recipient in recipients {
        recipient.send_frame(frame.clone());
    }
}

/// An answer another relay took (and logged): into this relay's copy of
/// the tally, as an answer here is; if the alert is this relay's, its
/// dispatcher and the control rooms are told. Ignored if the alert is not
/// known here (forgotten, or missed while NATS was away) or was not
/// addressed to that terminal.
pub fn answer_from_elsewhere(alerts: &Alerting, answer: AnswerElsewhere) {
    if alerts
        .alerts
        .check(answer.alert_id, answer.terminal)
        .is_err()
    {
        return;
    }
    let order = alerts.alerts.next_answer.fetch_add(1, Ordering::Relaxed);
    alerts.answer(
        answer.alert_id,
        answer.terminal,
        Answer {
            kind: answer.kind,
            status_code: answer.status_code,
            at_us: answer.at_us,
            order,
        },
    );
}
