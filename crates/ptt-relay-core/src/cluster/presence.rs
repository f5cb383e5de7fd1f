//! This relay's announcements to the cluster, and the other relays' heard.

use std::sync::Arc;
use std::time::Duration;

use ptt_cluster::PresenceNews;
use ptt_directory::Directory;

use super::link::ClusterLink;
use crate::fanout::ALL_CALL_GROUP;
use crate::group::Groups;
use crate::online::Online;
use crate::private_call::cross_relay_group_ids;

/// How often a relay announces its terminals and floors.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);

/// What a relay announces.
#[derive(Debug, Clone)]
pub struct PresenceSources {
    /// Its terminals.
    pub online: Arc<Online>,
    /// Its groups (which floors it decides).
    pub groups: Arc<Groups>,
    /// The directory, whose groups are announced (with the temporary
    /// groups of calls between relays; those of calls within a relay never
    /// are).
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
                        while let Some(news) = feed.next().await {
                            match news {
                                PresenceNews::Presence(presence) => {
                                    cluster.elsewhere.heard(presence);
                                }
                                PresenceNews::Hears { relay, group } => {
                                    cluster.elsewhere.hears_from_now(&relay, group);
                                }
                            }
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
            cluster.elsewhere.refresh();
            if !cluster.cluster.is_connected() {
                continue;
            }
            let mut terminals = sources.online.terminals();
            terminals.sort_unstable();
            let groups = || {
                let talkgroups = sources.directory.groups().iter().map(|group| group.id.0);
                talkgroups
                    .chain(cross_relay_group_ids())
                    .filter_map(|id| sources.groups.get(id))
            };
            let decides = groups()
                .filter(|g| g.decides_here())
                .map(|g| g.id)
                .collect();
            // All-calls (group 0) are heard by every relay (`hear_all_calls`).
            let hears = std::iter::once(ALL_CALL_GROUP)
                .chain(groups().filter(|g| g.hears_cluster()).map(|g| g.id))
                .collect();
            let announced = cluster.cluster.presence.announce(terminals, decides, hears);
            if let Err(error) = announced.await {
                tracing::debug!(%error, "this relay's announcement not sent");
            }
        }
    };
    tokio::join!(hear, announce);
}
