//! The other relays' zone logic changes, applied here (see
//! `dispatch::remote`).

use std::sync::Arc;
use std::time::Duration;

use super::link::ClusterLink;
use crate::dispatch::Dispatch;
use crate::dispatch::remote::apply_shared;

/// Pause before listening again when NATS would not.
const LISTEN_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// Applies the other relays' regroupings for as long as the relay runs.
pub async fn hear_regroups(cluster: Arc<ClusterLink>, dispatch: Arc<Dispatch>) {
    loop {
        match cluster.cluster.regroup.subscribe().await {
            Ok(mut feed) => {
                while let Some(changes) = feed.next().await {
                    apply_shared(&dispatch, &changes);
                }
            }
            Err(error) => tracing::warn!(%error, "cannot hear the other relays' regroupings"),
        }
        tokio::time::sleep(LISTEN_AGAIN_AFTER).await;
    }
}
