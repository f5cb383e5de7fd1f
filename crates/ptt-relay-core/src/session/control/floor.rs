//! The floor: requests and releases in a group, emergencies declared and
//! cleared, and a dispatcher's all-call across every all-call group.

use std::sync::Arc;

use ptt_floor::{Priority, RequestKind};
use ptt_proto::pb::{self, server_message::Body};

use super::session::Session;
use crate::fanout::ALL_CALL_GROUP;
use crate::group::{Answer, Command, GroupShared, MAX_EMERGENCY_TEXT};
use crate::metrics::DenialReason;
use crate::wire;
use ptt_directory::TerminalId;

impl Session {
    /// A `FloorRequest`: the floor of a group (or an all-call, group 0).
    pub(super) async fn floor_request(&mut self, id: u64, request: pb::FloorRequest) {
        let kind = wire::kind_from_wire(request.kind);
        let priority = wire::priority_from_wire(request.priority);
        self.request_floor(
            id,
            request.group_id,
            priority,
            kind,
            Answer::Floor,
            String::new(),
        )
        .await;
    }

    /// An `EmergencyDeclare`: the floor at emergency priority.
    pub(super) async fn declare_emergency(&mut self, id: u64, declare: pb::EmergencyDeclare) {
        let text = bounded_text(declare.text, MAX_EMERGENCY_TEXT);
        self.request_floor(
            id,
            declare.group_id,
            Priority::Emergency,
            RequestKind::Emergency,
            Answer::Emergency,
            text,
        )
        .await;
    }

    /// A `FloorRelease`: ends the terminal's burst (or drops its queued
    /// request) in a group it hears, or ends its all-call (group 0).
    pub(super) async fn release_floor(&mut self, id: u64, release: pb::FloorRelease) {
        if release.group_id == ALL_CALL_GROUP {
            return self.end_all_call(id).await;
        }
        if let Some(group) = self.joined_group(id, release.group_id) {
            group
                .command(Command::Release {
                    from: self.link.clone(),
                    burst: release.burst_id,
                    last_sequence: release
                        .last_sequence
                        .and_then(|sequence| u16::try_from(sequence).ok()),
                    request_id: id,
                })
                .await;
        }
    }

    /// An `EmergencyClear` in a group the terminal hears.
    pub(super) async fn clear_emergency(&mut self, id: u64, clear: pb::EmergencyClear) {
        if let Some(group) = self.joined_group(id, clear.group_id) {
            group
                .command(Command::ClearEmergency {
                    from: self.link.clone(),
                    request_id: id,
                })
                .await;
        }
    }

    /// Asks the group's task for the floor, after the checks the session
    /// makes itself (the group exists, is heard, allows an emergency).
    async fn request_floor(
        &mut self,
        id: u64,
        group_id: u32,
        priority: Priority,
        kind: RequestKind,
        answer: Answer,
        text: String,
    ) {
        let deny = |reason: pb::FloorDenyReason| {
            self.shared.metrics.count_denial(wire_denial(reason));
            Body::FloorDenied(pb::FloorDenied {
                group_id,
                reason: reason.into(),
            })
        };
        if group_id == ALL_CALL_GROUP {
            return self.all_call(id, kind).await;
        }
        let Some(group) = self.shared.groups.get(group_id).cloned() else {
            return self.link.send(id, deny(pb::FloorDenyReason::UnknownGroup));
        };
        if !self.hears(group_id) {
            return self.link.send(id, deny(pb::FloorDenyReason::NotMember));
        }
        // An emergency belongs to a talkgroup the control room watches: a
        // private call's group outlives the call and nobody could clear it.
        let private = self.shared.private_calls.is_call_group(group_id);
        if kind == RequestKind::Emergency
            && (private || !self.terminal().is_some_and(|t| t.emergency))
        {
            return self
                .link
                .send(id, deny(pb::FloorDenyReason::PriorityNotAllowed));
        }
        group
            .command(Command::Request {
                answer,
                from: self.link.clone(),
                priority,
                kind,
                text,
                request_id: id,
            })
            .await;
    }

    /// The all-call groups this terminal has joined.
    fn all_call_groups(&self) -> Vec<Arc<GroupShared>> {
        self.shared
            .groups
            .all_call()
            .iter()
            .filter(|g| self.joined.contains(&g.id))
            .cloned()
            .collect()
    }

    /// A dispatcher's all-call: a broadcast request in every all-call group
    /// it has joined, at dispatcher priority (pre-empting routine talk).
    /// Answered at once with `FloorGranted{group 0}`; each group's own
    /// grant (or refusal, e.g. under an emergency) follows as an event.
    async fn all_call(&mut self, id: u64, kind: RequestKind) {
        let deny = |reason: pb::FloorDenyReason| {
            self.shared.metrics.count_denial(wire_denial(reason));
            Body::FloorDenied(pb::FloorDenied {
                group_id: ALL_CALL_GROUP,
                reason: reason.into(),
            })
        };
        let dispatcher = self
            .shared
            .directory
            .may_all_call(TerminalId(self.link.terminal));
        if kind != RequestKind::Broadcast || !dispatcher {
            return self
                .link
                .send(id, deny(pb::FloorDenyReason::PriorityNotAllowed));
        }
        let groups = self.all_call_groups();
        if groups.is_empty() {
            return self.link.send(id, deny(pb::FloorDenyReason::NotMember));
        }
        self.link.send(
            id,
            Body::FloorGranted(pb::FloorGranted {
                group_id: ALL_CALL_GROUP,
                burst_id: 0,
                talk_limit_ms: 0,
                priority: pb::Priority::Dispatcher.into(),
                kind: pb::FloorKind::Broadcast.into(),
            }),
        );
        for group in &groups {
            group
                .command(Command::Request {
                    answer: Answer::Floor,
                    from: self.link.clone(),
                    priority: Priority::Dispatcher,
                    kind: RequestKind::Broadcast,
                    text: String::new(),
                    request_id: 0,
                })
                .await;
        }
    }

    /// Ends an all-call: releases the floor (or the queued request) in every
    /// all-call group.
    async fn end_all_call(&mut self, id: u64) {
        for group in self.all_call_groups() {
            group
                .command(Command::Release {
                    from: self.link.clone(),
                    burst: 0,
                    // An all-call's frames trail its end as any burst's do,
                    // within the tail window.
                    last_sequence: None,
                    request_id: 0,
                })
                .await;
        }
        self.ack(id);
    }

    /// The joined group `group_id`, or `None` after answering the request
    /// with the reason it cannot be used.
    fn joined_group(&self, id: u64, group_id: u32) -> Option<Arc<GroupShared>> {
        match self.shared.groups.get(group_id) {
            None => {
                self.error(id, pb::ErrorReason::UnknownGroup, "no such group");
                None
            }
            Some(_) if !self.hears(group_id) => {
                self.error(id, pb::ErrorReason::NotMember, "not joined to this group");
                None
            }
            Some(group) => Some(group.clone()),
        }
    }
}

/// The metrics label of a refusal the session itself sends.
fn wire_denial(reason: pb::FloorDenyReason) -> DenialReason {
    match reason {
        pb::FloorDenyReason::UnknownGroup => DenialReason::UnknownGroup,
        pb::FloorDenyReason::PriorityNotAllowed => DenialReason::PriorityNotAllowed,
        _ => DenialReason::NotMember,
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn bounded_text(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::bounded_text;

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary() {
        assert_eq!(bounded_text("gate 2".into(), 1024), "gate 2");
        // "é" is two bytes: a cut at 3 would split the second one.
        assert_eq!(bounded_text("éé".into(), 3), "é");
        assert_eq!(bounded_text("x".repeat(2000), 1024).len(), 1024);
    }
}
