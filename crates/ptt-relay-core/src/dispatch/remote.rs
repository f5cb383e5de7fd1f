//! Another relay's zone logic changes applied here: a backup call decided on
//! one relay of a cluster brings in the neighbouring guards logged in to any
//! relay.

use ptt_calllog::RegroupRecord;

use super::{Dispatch, follow};
use crate::roster::DynamicGrant;

/// Applies another relay's zone logic changes to this relay's roster: the
/// session of a terminal concerned is woken (it
/// joins or leaves the group and tells its terminal), and the group's
/// listeners here are told. The control rooms were told, and the change
/// logged, by the deciding relay (its record reaches this relay's call log
/// through the cluster's).
pub fn apply_shared(dispatch: &Dispatch, changes: &[RegroupRecord]) {
    for change in changes {
        let applied = if change.added {
            let grant = DynamicGrant {
                reason: change.reason,
                zone: change.zone,
            };
            if dispatch
                .roster
                .dynamic_grant(change.terminal, change.group)
                .is_some()
            {
                // A member already: its grant changes reason (a patrol's guard
                // kept for an emergency, or handed back), nothing else.
                dispatch
                    .roster
                    .regrant(change.group, change.terminal, grant);
                continue;
            }
            dispatch
                .roster
                .add_dynamic(change.group, change.terminal, grant)
        } else {
            dispatch
                .roster
                .remove_dynamic(change.group, change.terminal)
                .is_some()
        };
        if !applied {
            // In effect already (a member anyway, or gone already).
            continue;
        }
        tracing::info!(
            group = change.group.0,
            terminal = change.terminal.0,
            added = change.added,
            reason = change.reason.as_str(),
            "regrouped by another relay's zone logic"
        );
        follow(dispatch, change);
    }
}
