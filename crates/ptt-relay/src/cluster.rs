//! Joining the cluster at start (`cluster`, `relay-id`): the NATS ends, the
//! resumption key the relays share, and the tasks that hear the other
//! relays and make this one heard.

use std::sync::Arc;
use std::time::Duration;

use ptt_cluster::{Cluster, JoinError, LeaseConfig};
use ptt_directory::Directory;
use ptt_relay_core::alert::Alerting;
use ptt_relay_core::auth::resume::ResumeKey;
use ptt_relay_core::auth::resume_key;
use ptt_relay_core::cluster::ClusterLink;
use ptt_relay_core::cluster::admin_in::{AdminTargets, apply_other_relays_admin};
use ptt_relay_core::cluster::alerts_in::hear_alerts;
use ptt_relay_core::cluster::calllog_in::store_other_relays_records;
use ptt_relay_core::cluster::calls_in::take_private_calls;
use ptt_relay_core::cluster::control_in::hear_control_rooms;
use ptt_relay_core::cluster::presence::{PresenceSources, share_presence};
use ptt_relay_core::cluster::regroup_in::hear_regroups;
use ptt_relay_core::cluster::voice_in::hear_all_calls;
use ptt_relay_core::dispatch::Dispatch;
use ptt_relay_core::fanout::Fanout;
use ptt_relay_core::group::{GroupShared, Groups};
use ptt_relay_core::log_sink::LogSink;
use ptt_relay_core::metrics::Metrics;
use ptt_relay_core::online::Online;
use ptt_relay_core::private_call::{MAX_CLUSTER_RELAYS, PrivateCalls};
use ptt_relay_core::roster::Roster;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// How long a relay in a cluster waits for NATS at start before it gives up.
const JOIN_WITHIN: Duration = Duration::from_secs(5);

/// The cluster setting holding the resumption key every relay uses.
const RESUME_KEY_SETTING: &str = "resume-key";

/// Why the relay could not take its place in its cluster at start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS, JetStream or the relay id.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// The cluster's agreed resumption key is not one (written by another
    /// version?).
    #[error("the cluster's resumption key (NATS key-value {bucket}/{RESUME_KEY_SETTING}) is unreadable", bucket = ptt_cluster::SETTINGS_BUCKET)]
    ResumeKey,
}

/// Joins the cluster `config` names, if any.
pub(crate) async fn join(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Result<Option<Arc<ClusterLink>>, ClusterError> {
    let Some(join) = config.cluster_join() else {
        return Ok(None);
    };
    let cluster =
        Cluster::join(&join.url, &join.relay, LeaseConfig::default(), JOIN_WITHIN).await?;
    let number = cluster
        .claim_number(MAX_CLUSTER_RELAYS)
        .await
        .map_err(JoinError::Settings)?;
    if number.is_none() {
        tracing::warn!(
            "every relay number of the cluster is taken ({MAX_CLUSTER_RELAYS}, NATS key-value {}/relay-number-*): \
             this relay's terminals cannot call terminals of other relays; delete a retired relay's number to free it",
            ptt_cluster::SETTINGS_BUCKET
        );
    }
    tracing::info!(relay = %join.relay, ?number, url = %join.url, "joined the cluster");
    Ok(Some(ClusterLink::start(
        cluster,
        number,
        join.site_trunking,
        metrics.clone(),
    )))
}

/// The resumption key every relay of the cluster signs and checks
/// credentials with: the first relay's (this one's `local` if it is the
/// first), so a terminal resumes on any of them.
pub(crate) async fn shared_resume_key(
    link: &ClusterLink,
    local: ResumeKey,
) -> Result<ResumeKey, ClusterError> {
    let proposal = resume_key::to_text(&local).into_bytes().into();
    let agreed = link
        .cluster
        .agree(RESUME_KEY_SETTING, proposal)
        .await
        .map_err(JoinError::Settings)?;
    std::str::from_utf8(&agreed)
        .ok()
        .and_then(resume_key::parse)
        .ok_or(ClusterError::ResumeKey)
}

/// What the relay's cluster tasks work on.
pub(crate) struct Parts {
    pub(crate) roster: Arc<Roster>,
    pub(crate) online: Arc<Online>,
    pub(crate) groups: Arc<Groups>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) dispatch: Arc<Dispatch>,
    pub(crate) log: LogSink,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) fanout: Fanout,
    pub(crate) alerting: Arc<Alerting>,
    pub(crate) private_calls: Arc<PrivateCalls>,
    /// The temporary groups of private calls between relays.
    pub(crate) cross_relay_slots: Vec<Arc<GroupShared>>,
}

/// Shares this relay's control room, zone logic, alerts and call log with
/// the cluster, and runs, until `stop`, the tasks that apply the other relays'
/// admin actions and regroupings, store their call-log records, fan out
/// their all-calls, deliver and tally their alerts, hand their control-room messages to this relay's
/// dispatchers, take their private calls, and announce this relay.
pub(crate) fn serve(link: Arc<ClusterLink>, parts: Parts, stop: CancellationToken) {
    parts.groups.share_control_room_with(link.clone());
    parts.dispatch.share_regroups_with(link.clone());
    parts.log.share_with(link.clone());
    parts.alerting.alerts.share_with(link.clone());
    let slots = parts.cross_relay_slots;
    (parts.private_calls).reach_other_relays(link.clone(), link.number, slots);
    let calllog = parts.log.calllog().clone();
    let targets = AdminTargets {
        roster: parts.roster,
        online: parts.online.clone(),
        log: parts.log,
    };
    let sources = PresenceSources {
        online: parts.online,
        groups: parts.groups.clone(),
        directory: parts.directory,
    };
    tokio::spawn(async move {
        tokio::select! {
            () = apply_other_relays_admin(link.clone(), targets) => {}
            () = share_presence(link.clone(), sources) => {}
            () = hear_control_rooms(link.clone(), parts.groups) => {}
            () = hear_regroups(link.clone(), parts.dispatch) => {}
            () = store_other_relays_records(link.clone(), calllog, parts.metrics) => {}
            () = hear_all_calls(link.clone(), parts.fanout) => {}
            () = hear_alerts(link.clone(), parts.alerting) => {}
            () = take_private_calls(link, parts.private_calls) => {}
            () = stop.cancelled() => {}
        }
    });
}
