//! Closing the session of a terminal an administrator disabled, and what such
//! a terminal is told.

use std::sync::Arc;
use std::time::Duration;

use ptt_proto::pb::{self, server_message::Body};

use crate::link::{self, Link};

/// What a disabled terminal is told, at login and when its session is closed.
pub(super) const DISABLED: &str = "terminal disabled by an administrator";

/// How long a disabled terminal's `GoingAway` has to reach it before its
/// connection is closed (well inside the second the issue allows).
const DISABLED_GRACE: Duration = Duration::from_millis(50);

/// Ends the session of a terminal an administrator disabled: `GoingAway`
/// with AUTH_REVOKED (the client must not reconnect), then, a moment later so
/// that message can leave, the connection is closed with
/// [`link::CLOSE_DISABLED`] and the reason. Returns at once.
pub fn disconnect_disabled(link: &Arc<Link>) {
    link.send(
        0,
        Body::GoingAway(pb::GoingAway {
            reason: pb::GoingAwayReason::AuthRevoked.into(),
            reconnect_after_ms: 0,
            detail: DISABLED.into(),
        }),
    );
    let link = link.clone();
    tokio::spawn(async move {
        tokio::time::sleep(DISABLED_GRACE).await;
        link.conn
            .close(link::CLOSE_DISABLED.into(), DISABLED.as_bytes());
    });
}
