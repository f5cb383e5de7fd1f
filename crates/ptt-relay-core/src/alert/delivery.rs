//! Delivery of alerts and answers: checked on the sender's control task, logged durably,
//! and only then registered, delivered and tallied (see the module docs of `alert`).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ptt_calllog::{AckKind, AlertAckRecord, AlertSentRecord};
use ptt_directory::{Directory, GroupId, TerminalId};
use ptt_proto::pb::{self, server_message::Body};

use super::registry::{AlertState, Alerts};
use super::tally::{Answer, Part, Tally};
use crate::clock::Clock;
use crate::group::Groups;
use crate::link::{self, Link};
use crate::log_sink::LogSink;
use crate::metrics::Metrics;
use crate::online::Online;
use crate::roster::Roster;
use crate::wire;

/// Longest alert text accepted, in bytes.
pub const MAX_TEXT: usize = 4096;

/// The alert registry with what delivery needs, handed in by the relay at start.
#[derive(Debug)]
pub struct Alerting {
    /// The alerts of the last hour.
    pub alerts: Arc<Alerts>,
    /// The groups alerts go to, and the control room whose dispatchers watch every tally.
    pub groups: Arc<Groups>,
    /// Who may send alerts; names and organisations for the tally.
    pub directory: Arc<Directory>,
    /// Each target group's members now.
    pub roster: Arc<Roster>,
    /// To tell a sender of answers.
    pub online: Arc<Online>,
    /// Alerts and answers are logged durably before they take effect.
    pub log: LogSink,
    /// The relay's clock.
    pub clock: Clock,
    /// Counts alerts sent.
    pub metrics: Arc<Metrics>,
}

impl Alerting {
    /// Takes a committed answer into the tally and, for this relay's own alert, tells
    /// the sender and the control rooms of the change (another relay's alert: its relay
    /// tells them).
    pub(super) fn answer(&self, id: u64, terminal: u32, answer: Answer) {
        let entry = entry(&self.directory, terminal, &answer);
        let own = self.alerts.home_of(id).is_none();
        self.alerts
            .take_answer(id, terminal, answer, entry, |sender, tally| {
                if !own {
                    return;
                }
                let frame = link::frame(0, Body::AlertTally(tally));
                if let Some(sender) = self.online.get(sender) {
                    sender.send_frame(frame.clone());
                }
                self.groups.notify_control_room_but(0, sender, &frame);
            });
    }
}

/// A dispatcher's `Alert` request: checked here, then logged durably; the
/// rest happens once the record is committed (see the module docs).
pub fn send(alerts: &Arc<Alerting>, link: &Arc<Link>, request_id: u64, alert: pb::Alert) {
    let refuse = |reason, detail| link.send(request_id, wire::error(reason, detail));
    if !alerts.directory.may_all_call(TerminalId(link.terminal)) {
        return refuse(pb::ErrorReason::Forbidden, "only dispatchers send alerts");
    }
    if alert.text.len() > MAX_TEXT {
        return refuse(
            pb::ErrorReason::Malformed,
            "alert text longer than 4096 bytes",
        );
    }
    let groups: Vec<u32> = if alert.target_group_ids.is_empty() {
        alerts.groups.all_call().iter().map(|g| g.id).collect()
    } else {
        let mut seen = HashSet::new();
        alert
            .target_group_ids
            .iter()
            .copied()
            .filter(|id| seen.insert(*id))
            .collect()
    };
    if groups.is_empty() {
        return refuse(pb::ErrorReason::UnknownGroup, "no all-call groups to alert");
    }
    if groups.iter().any(|id| alerts.groups.get(*id).is_none()) {
        return refuse(pb::ErrorReason::UnknownGroup, "no such group");
    }

    let sent_at_us = alerts.clock.unix_us_now();
    let alert = pb::Alert {
        alert_id: alerts.alerts.next_id(sent_at_us),
        from_terminal_id: link.terminal,
        from_name: link.name.to_string(),
        text: alert.text,
        target_group_ids: groups,
        requires_ack: alert.requires_ack,
        sent_at_us,
    };
    let record = AlertSentRecord {
        alert_id: alert.alert_id,
        from: TerminalId(link.terminal),
        text: alert.text.clone(),
        groups: alert.target_group_ids.iter().map(|g| GroupId(*g)).collect(),
        at_ms: unix_ms(sent_at_us),
    };
    let (owned, link) = (alerts.clone(), link.clone());
    alerts
        .log
        .log_durable(record.into(), move |committed| match committed {
            Ok(_) => open(&owned, &link, request_id, alert),
            Err(error) => {
                tracing::error!(%error, alert = alert.alert_id, "alert not logged; not sent");
                link.send(
                    request_id,
                    wire::error(pb::ErrorReason::Internal, "the alert could not be logged"),
                );
            }
        });
}

/// Bytes of the first tally's target list: well under the 64 KiB a control
/// message may have, beside the tally's counts and parts.
const NAMED_TARGETS_BYTES: usize = 40 * 1024;

/// Registers a committed alert, answers the sender and delivers it to every
/// joined member of its groups, once each, except the sender (on every
/// relay of a cluster).
fn open(alerts: &Alerting, link: &Link, request_id: u64, alert: pb::Alert) {
    alerts.metrics.alerts_sent.inc();
    let sender = link.terminal;
    let (recipients, targets) = reach(alerts, &alert);
    let parts = parts(alerts, &alert.target_group_ids, &targets);
    // Every target, not answered yet: the sender's console can name who
    // never answers (later tallies carry only what changed). As many as fit
    // a control message with room to spare; a larger roll call's console
    // names the first ones and counts the rest.
    let mut budget = NAMED_TARGETS_BYTES;
    let unanswered = targets
        .iter()
        .map(|&terminal| pb::AlertAckEntry {
            terminal_id: terminal,
            name: alerts.directory.name_of(TerminalId(terminal)).to_owned(),
            ..Default::default()
        })
        .take_while(|entry| {
            // Each entry: its name and about 12 bytes of fields and framing.
            budget = budget.saturating_sub(entry.name.len() + 12);
            budget > 0
        })
        .collect();
    let first = Tally::default().to_wire(alert.alert_id, &targets, &parts, unanswered);
    tracing::info!(
        alert = alert.alert_id,
        targets = targets.len(),
        online = recipients.len(),
        "alert sent"
    );
    alerts.alerts.insert(
        alert.alert_id,
        AlertState {
            sender,
            sent: Instant::now(),
            targets,
            parts,
            tally: Mutex::new(Tally::default()),
            home: None,
        },
    );
    link.send(request_id, Body::AlertTally(first.clone()));
    let frame = link::frame(0, Body::AlertTally(first));
    alerts.groups.notify_control_room_but(0, sender, &frame);
    if let Some(share) = alerts.alerts.share() {
        share.share_alert(&alert);
    }
    let frame = link::frame(0, Body::Alert(alert));
    for recipient in recipients {
        recipient.send_frame(frame.clone());
    }
}

/// Who alert `alert` reaches on this relay (every joined member of its
/// groups, once each, except the sender), and every terminal it is
/// addressed to (every member now, as the directory and the admin API made
/// it, online or not, plus anyone hearing a group without a membership),
/// sorted, without the sender.
pub(super) fn reach(alerts: &Alerting, alert: &pb::Alert) -> (Vec<Arc<Link>>, Vec<u32>) {
    let sender = alert.from_terminal_id;
    let mut reached = HashSet::from([sender]);
    let mut recipients = Vec::new();
    for group in alert
        .target_group_ids
        .iter()
        .filter_map(|id| alerts.groups.get(*id))
    {
        for listener in group.listeners().iter() {
            if reached.insert(listener.terminal) {
                recipients.push(listener.clone());
            }
        }
    }
    let mut targets: Vec<u32> = alert
        .target_group_ids
        .iter()
        .flat_map(|id| alerts.roster.members(GroupId(*id)))
        .map(|member| member.terminal.0)
        .chain(recipients.iter().map(|r| r.terminal))
        .filter(|terminal| *terminal != sender)
        .collect();
    targets.sort_unstable();
    targets.dedup();
    (recipients, targets)
}

/// The targets of an alert by target group (members now, as `targets` was
/// built) and by organisation (from the directory), for the tally's breakdown.
pub(super) fn parts(alerts: &Alerting, groups: &[u32], targets: &[u32]) -> Vec<Part> {
    let mut out: Vec<Part> = groups
        .iter()
        .map(|&group_id| {
            let mut members: Vec<u32> = alerts
                .roster
                .members(GroupId(group_id))
                .iter()
                .map(|member| member.terminal.0)
                .filter(|terminal| targets.binary_search(terminal).is_ok())
                .collect();
            members.sort_unstable();
            members.dedup();
            Part {
                group_id,
                name: alerts
                    .groups
                    .get(group_id)
                    .map(|group| group.name.to_string())
                    .unwrap_or_default(),
                targets: members,
            }
        })
        .collect();
    let mut organisations: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
    for &terminal in targets {
        let organisation = alerts
            .directory
            .terminal(TerminalId(terminal))
            .map_or("", |t| t.organisation.as_str());
        organisations
            .entry(organisation)
            .or_default()
            .push(terminal);
    }
    out.extend(organisations.into_iter().map(|(name, targets)| Part {
        group_id: 0,
        name: name.to_owned(),
        targets,
    }));
    out
}

/// A recipient's `AlertAck`: checked here, logged durably, then taken into
/// the tally and answered with `Ack`.
pub fn acknowledge(alerts: &Arc<Alerting>, link: &Arc<Link>, request_id: u64, ack: pb::AlertAck) {
    let refuse = |reason, detail| link.send(request_id, wire::error(reason, detail));
    let kind = match pb::AlertAckKind::try_from(ack.kind) {
        Ok(
            kind @ (pb::AlertAckKind::Delivered
            | pb::AlertAckKind::Responding
            | pb::AlertAckKind::Unable),
        ) => kind,
        _ => return refuse(pb::ErrorReason::Malformed, "unknown acknowledgement kind"),
    };
    let Ok(status_code) = ack.status_code.map(u16::try_from).transpose() else {
        return refuse(pb::ErrorReason::Malformed, "status code above 65535");
    };
    match alerts.alerts.check(ack.alert_id, link.terminal) {
        Ok(()) => {}
        Err(pb::ErrorReason::UnknownAlert) => {
            return refuse(pb::ErrorReason::UnknownAlert, "no such alert (or expired)");
        }
        Err(reason) => return refuse(reason, "the alert was not addressed to you"),
    }
    let at_us = alerts.clock.unix_us_now();
    let answer = Answer {
        kind,
        status_code,
        at_us,
        order: alerts.alerts.next_answer.fetch_add(1, Ordering::Relaxed),
    };
    let record = AlertAckRecord {
        alert_id: ack.alert_id,
        terminal: TerminalId(link.terminal),
        kind: ack_kind(kind),
        status_code,
        at_ms: unix_ms(at_us),
    };
    let (owned, link) = (alerts.clone(), link.clone());
    alerts
        .log
        .log_durable(record.into(), move |committed| match committed {
            Ok(_) => {
                owned.answer(ack.alert_id, link.terminal, answer);
                if let Some(share) = owned.alerts.share() {
                    share.share_answer(answer.elsewhere(ack.alert_id, link.terminal));
                }
                link.send(request_id, Body::Ack(pb::Ack {}));
            }
            Err(error) => {
                tracing::error!(%error, alert = ack.alert_id, "alert answer not logged");
                link.send(
                    request_id,
                    wire::error(pb::ErrorReason::Internal, "the answer could not be logged"),
                );
            }
        });
}

/// The call log's kind of an answer.
fn ack_kind(kind: pb::AlertAckKind) -> AckKind {
    match kind {
        pb::AlertAckKind::Responding => AckKind::Responding,
        pb::AlertAckKind::Unable => AckKind::Unable,
        _ => AckKind::Delivered,
    }
}

fn entry(directory: &Directory, terminal: u32, answer: &Answer) -> pb::AlertAckEntry {
    pb::AlertAckEntry {
        terminal_id: terminal,
        name: directory.name_of(TerminalId(terminal)).to_owned(),
        kind: answer.kind.into(),
        status_code: answer.status_code.map(u32::from),
        at_us: answer.at_us,
    }
}

fn unix_ms(us: u64) -> i64 {
    i64::try_from(us / 1000).unwrap_or(i64::MAX)
}
