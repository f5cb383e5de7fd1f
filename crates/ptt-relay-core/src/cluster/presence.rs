//! This relay's announcements to the cluster, and the other relays' heard.

use std::sync::Arc;
use std::time::Duration;

use ptt_directory::Directory;

use super::link::ClusterLink;
use crate::group::Groups;
use crate::online::Online;

/// How often a relay announces its terminals and floors.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);

/// What a relay announces.
#[derive(Debug, Clone)]
pub struct PresenceSources {
    /// Its terminals.
    pub online: Arc<Online>,
    /// Its groups (which floors it decides).
    pub groups: Arc<Groups>,
    /// The directory's groups (private calls' slots are not announced).
    pub directory: Arc<Directory>,
}

/// Announces this relay every [`ANNOUNCE_EVERY`] and notes the other
/// relays' announcements in [`ClusterLink::elsewhere`], for as long as the
/// relay runs.
pub async fn share_presence(cluster: Arc<ClusterLink>, sources: PresenceSources) {
    let hear = {
        let cluster = cluster.clone();
        async move {
            loop {
                match cluster.cluster.presence.subscribe().await {
                    Ok(mut feed) => {
                        while let Some(presence) = feed.next().await {
                            cluster.elsewhere.heard(presence);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot hear the other relays"),
                }
                tokio::time::sleep(ANNOUNCE_EVERY).await;
            }
        }
    };
    let announce = async move {
        let mut ticks = tokio::time::interval(ANNOUNCE_EVERY);
        loop {
            ticks.tick().await;
            if !cluster.cluster.is_connected() {
                continue;
            }
            let mut terminals = sources.online.terminals();
            terminals.sort_unstable();
            let decides = sources
                .directory
                .groups()
                .iter()
                .map(|group| group.id.0)
                .filter(|id| sources.groups.get(*id).is_some_and(|g| g.decides_here()))
                .collect();
            if let Err(error) = cluster.cluster.presence.announce(terminals, decides).await {
                tracing::debug!(%error, "this relay's announcement not sent");
            }
        }
    };
    tokio::join!(hear, announce);
}
