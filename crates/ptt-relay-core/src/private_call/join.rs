//! Joining a party to its call's temporary group, with the rights of a private call.

use std::sync::Arc;

use ptt_directory::{Membership, Role, TerminalId};
use ptt_proto::pb::{self, server_message::Body};

use super::pool::PrivateCalls;
use crate::group::{Command, GroupShared};
use crate::link::Link;
use crate::{policy, wire};

/// Joins one party to the call's group with its own priority cap.
pub(super) async fn join(
    calls: &PrivateCalls,
    group: &Arc<GroupShared>,
    link: &Arc<Link>,
    name: &str,
) {
    let Some(terminal) = calls.directory.terminal(TerminalId(link.terminal)) else {
        return;
    };
    let membership = Membership {
        terminal: terminal.id,
        listen: true,
        talk: true,
        max_priority: terminal.max_priority,
    };
    let rights = policy::member_rights(terminal, &membership);
    let info = pb::GroupInfo {
        group_id: group.id,
        name: name.to_owned(),
        rights: Some(pb::GroupRights {
            listen: true,
            talk: true,
            max_priority: wire::priority(rights.max_priority).into(),
            preempt: rights.preemptive,
            broadcast: false,
            dispatch: terminal.role == Role::Dispatcher,
        }),
        joined: true,
        dynamic: true,
    };
    group
        .command(Command::Join {
            link: link.clone(),
            rights,
            info: info.clone(),
            request_id: 0,
        })
        .await;
    // Told after the join is queued, so the party's first floor request
    // reaches the group's task after it.
    link.send(
        0,
        Body::JoinOk(pb::JoinOk {
            group: Some(info),
            floor: None,
            emergency: None,
        }),
    );
}
