//! The other relays' admin actions, applied here: a terminal disabled on
//! one relay is refused and cut off on every relay, a member added on one
//! is a member on all.

use std::sync::Arc;
use std::time::Duration;

use ptt_calllog::{AdminAction, AdminActionRecord, Record};
use ptt_cluster::{AdminFeed, PendingAdmin};

use super::link::ClusterLink;
use crate::log_sink::LogSink;
use crate::online::Online;
use crate::roster::Roster;
use crate::session::disconnect_disabled;

/// Pause before following the admin actions again when NATS would not.
const FOLLOW_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// What applying another relay's action needs.
#[derive(Debug, Clone)]
pub struct AdminTargets {
    /// Memberships and disabled terminals.
    pub roster: Arc<Roster>,
    /// Sessions to cut off or wake.
    pub online: Arc<Online>,
    /// Where each action is stored before it takes effect.
    pub log: LogSink,
}

/// Applies the other relays' admin actions for as long as the relay runs:
/// each is stored in this relay's call log first (as the admin API does),
/// then applied, then acknowledged, so one that did not make it is handed
/// over again.
pub async fn apply_other_relays_admin(cluster: Arc<ClusterLink>, targets: AdminTargets) {
    loop {
        match cluster.cluster.admin.follow().await {
            Ok(feed) => follow(feed, &targets).await,
            Err(error) => tracing::warn!(%error, "cannot follow the cluster's admin actions"),
        }
        tokio::time::sleep(FOLLOW_AGAIN_AFTER).await;
    }
}

async fn follow(mut feed: AdminFeed, targets: &AdminTargets) {
    while let Some(pending) = feed.next().await {
        if apply(&pending, targets).await
            && let Err(error) = pending.done().await
        {
            tracing::warn!(%error, "admin action applied but not acknowledged");
        }
    }
}

/// Stores and applies one action; false if it could not be stored.
async fn apply(pending: &PendingAdmin, targets: &AdminTargets) -> bool {
    let entry = &pending.entry;
    {
        let _turn = targets.roster.writing().await;
        let record = Record::Admin(AdminActionRecord {
            action: entry.action.clone(),
            by: format!("{} (relay {})", entry.by, entry.relay),
            at_ms: entry.at_ms,
        });
        let (done, written) = tokio::sync::oneshot::channel();
        targets.log.log_durable(record, move |result| {
            let _ = done.send(result);
        });
        match written.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "another relay's admin action not stored; not applied");
                return false;
            }
            Err(_) => return false,
        }
        if let Err(error) = targets.roster.apply(&entry.action) {
            // In effect already, or about a terminal this directory lacks.
            tracing::debug!(%error, "another relay's admin action changed nothing here");
        }
    }
    match entry.action {
        AdminAction::Disable { terminal } => {
            if let Some(link) = targets.online.get(terminal.0) {
                disconnect_disabled(&link);
            }
        }
        AdminAction::SetMember { terminal, .. } | AdminAction::RemoveMember { terminal, .. } => {
            if let Some(link) = targets.online.get(terminal.0) {
                link.membership_changed.notify_one();
            }
        }
        // The floor's owner clears its emergency through its own admin API.
        AdminAction::Enable { .. } | AdminAction::ClearEmergency { .. } => {}
    }
    tracing::warn!(
        relay = entry.relay,
        by = entry.by,
        action = entry.action.as_str(),
        "admin action of another relay applied"
    );
    true
}
