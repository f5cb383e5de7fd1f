//! The other relays' messages for their dispatchers, handed to this
//! relay's: an emergency declared on one relay shows on every control
//! room's console, and so do the positions and status lines of every
//! relay's terminals.

use std::sync::Arc;
use std::time::Duration;

use super::link::ClusterLink;
use crate::group::Groups;

/// Pause before listening again when NATS would not.
const LISTEN_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// Hands the other relays' control-room messages to this relay's
/// dispatchers for as long as the relay runs.
pub async fn hear_control_rooms(cluster: Arc<ClusterLink>, groups: Arc<Groups>) {
    loop {
        match cluster.cluster.control.subscribe().await {
            Ok(mut feed) => {
                while let Some(message) = feed.next().await {
                    groups.notify_control_room_here(message.about_group, &message.frame);
                }
            }
            Err(error) => tracing::warn!(%error, "cannot hear the other control rooms"),
        }
        tokio::time::sleep(LISTEN_AGAIN_AFTER).await;
    }
}
