//! A terminal or group as the history API shows it: its id with its display name.

use serde::Serialize;

use crate::state::OpsState;
use ptt_directory::GroupId;

/// The name shown for the temporary group of a private call.
const PRIVATE_CALL: &str = "private call";

/// A terminal or group by id, with its display name (empty if unknown).
#[derive(Debug, Serialize)]
pub(super) struct Named {
    pub(super) id: u32,
    pub(super) name: String,
}

impl Named {
    /// The terminal `id` with its name.
    pub(super) fn terminal(shared: &OpsState, id: u32) -> Self {
        Self {
            id,
            name: shared.relay.terminal_name(id),
        }
    }

    /// The group `id` with its name ("private call" for a private call's
    /// temporary group).
    pub(super) fn group(shared: &OpsState, id: u32) -> Self {
        Self {
            id,
            name: shared
                .relay
                .directory
                .group(GroupId(id))
                .map(|g| g.name.clone())
                .unwrap_or_else(|| {
                    // A private call's temporary group is in no directory.
                    if id >= ptt_directory::FIRST_RESERVED_GROUP_ID {
                        PRIVATE_CALL.to_owned()
                    } else {
                        String::new()
                    }
                }),
        }
    }
}
