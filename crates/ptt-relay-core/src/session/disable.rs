//! Closing the session of a terminal an administrator disabled, and what such
//! a terminal is told.

use std::sync::Arc;

use ptt_proto::pb;

use crate::link::{self, Link};

/// What a disabled terminal is told, at login and when its session is closed.
pub(super) const DISABLED: &str = "terminal disabled by an administrator";

/// Ends the session of a terminal an administrator disabled: `GoingAway`
/// with AUTH_REVOKED (the client must not reconnect), then, once it has
/// arrived, the connection is closed with [`link::CLOSE_DISABLED`] and the
/// reason ([`Link::farewell`]). Returns at once.
pub fn disconnect_disabled(link: &Arc<Link>) {
    link.farewell(
        pb::GoingAway {
            reason: pb::GoingAwayReason::AuthRevoked.into(),
            reconnect_after_ms: 0,
            detail: DISABLED.into(),
        },
        link::CLOSE_DISABLED,
        DISABLED,
    );
}
