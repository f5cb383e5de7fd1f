//! The relay's handle on its cluster and the queues to NATS.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use ptt_calllog::{AdminAction, Record, RegroupRecord};
use ptt_cluster::{AdminEntry, Cluster, FloorNews};
use tokio::sync::mpsc;

use super::alerts_out::AlertsOut;
use super::calllog_out::CallLogOut;
use super::elsewhere::Elsewhere;
use crate::dispatch::share::RegroupShare;
use crate::group::registry::ControlRoomShare;
use crate::log_sink::LogShare;
use crate::metrics::Metrics;

/// Frames waiting to be published; beyond it the newest is dropped and
/// counted (NATS is not taking them fast enough).
pub const VOICE_OUT_QUEUE: usize = 4096;

/// News waiting to be published.
pub const NEWS_OUT_QUEUE: usize = 4096;

/// Frames or news published before one flush.
const PUBLISH_BATCH: usize = 64;

/// The relay's handle on its cluster: the NATS ends and the outgoing queues.
#[derive(Debug)]
pub struct ClusterLink {
    /// The relay's ends of the leases, calls, news and voice.
    pub cluster: Cluster,
    /// The other relays, as they announce themselves.
    pub elsewhere: Elsewhere,
    /// This relay's number in the cluster (below
    /// `private_call::MAX_CLUSTER_RELAYS`): its share of the temporary
    /// groups of private calls between relays, and of their call ids. None
    /// when every number was taken: its terminals cannot call the other
    /// relays' (they can still be called).
    pub number: Option<u16>,
    /// Whether the relay serves its own terminals with a local floor while
    /// NATS is away (site trunking), rather than refusing their presses.
    pub site_trunking: bool,
    voice_out: mpsc::Sender<(u32, Bytes)>,
    news_out: mpsc::Sender<(u32, FloorNews)>,
    control_out: mpsc::Sender<(u32, Bytes)>,
    regroup_out: mpsc::Sender<Vec<RegroupRecord>>,
    calllog_out: CallLogOut,
    pub(super) alerts_out: AlertsOut,
    metrics: Arc<Metrics>,
}

impl ClusterLink {
    /// Starts the publisher tasks on the current runtime; they end when the
    /// link is dropped. `number` and `site_trunking`: see
    /// [`ClusterLink::number`] and [`ClusterLink::site_trunking`].
    pub fn start(
        cluster: Cluster,
        number: Option<u16>,
        site_trunking: bool,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let (voice_out, voice_rx) = mpsc::channel(VOICE_OUT_QUEUE);
        let (news_out, news_rx) = mpsc::channel(NEWS_OUT_QUEUE);
        let (control_out, control_rx) = mpsc::channel(NEWS_OUT_QUEUE);
        let (regroup_out, regroup_rx) = mpsc::channel(NEWS_OUT_QUEUE);
        tokio::spawn(publish_voice(cluster.clone(), voice_rx, metrics.clone()));
        tokio::spawn(publish_news(cluster.clone(), news_rx));
        tokio::spawn(publish_control(cluster.clone(), control_rx));
        tokio::spawn(publish_regroups(cluster.clone(), regroup_rx));
        let calllog_out = CallLogOut::start(cluster.clone(), metrics.clone());
        let alerts_out = AlertsOut::start(cluster.clone());
        Arc::new(Self {
            cluster,
            elsewhere: Elsewhere::default(),
            number,
            site_trunking,
            voice_out,
            news_out,
            control_out,
            regroup_out,
            calllog_out,
            alerts_out,
            metrics,
        })
    }

    /// This relay's id in the cluster.
    pub fn relay(&self) -> &str {
        &self.cluster.relay
    }

    /// Queues a talker's stamped frame of `group` for the other relays.
    /// Never waits: a full queue drops the frame, counted.
    /// Nothing is queued while no other relay takes the group's voice
    /// (every relay takes all-calls', group 0).
    #[inline]
    pub fn offer_voice(&self, group: u32, frame: &Bytes) {
        if !self.elsewhere.hears(group) {
            return;
        }
        if self.voice_out.try_send((group, frame.clone())).is_err() {
            self.metrics.cluster_voice_dropped.inc();
        }
    }

    /// Shares an admin action this relay has stored and applied (`by` whom,
    /// at Unix ms `at_ms`) with the other relays (see
    /// [`ptt_cluster::AdminLog`]); returns at once.
    pub fn share_admin(&self, action: AdminAction, by: &str, at_ms: i64) {
        let entry = AdminEntry {
            relay: self.relay().to_owned(),
            by: by.to_owned(),
            at_ms,
            action,
        };
        let admin = self.cluster.admin.clone();
        tokio::spawn(async move {
            if let Err(error) = admin.publish(&entry).await {
                tracing::error!(
                    %error,
                    action = entry.action.as_str(),
                    "admin action not shared with the cluster: the other relays do not apply it"
                );
            }
        });
    }

    /// Queues a group owner's news for the relays with members.
    pub fn offer_news(&self, group: u32, news: FloorNews) {
        if self.news_out.try_send((group, news)).is_err() {
            tracing::warn!(group, "floor news dropped: NATS is not taking it");
        }
    }
}

/// Publishes queued frames, one flush per batch, until the link is gone.
async fn publish_voice(
    cluster: Cluster,
    mut frames: mpsc::Receiver<(u32, Bytes)>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    // Each group's subject, made once (groups are the directory's and the
    // private-call pool's, a bounded set).
    let mut subjects: HashMap<u32, ptt_cluster::Subject> = HashMap::new();
    while frames.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        for (group, frame) in batch.drain(..) {
            // Voice is worth nothing late: none is queued for a NATS that
            // is away (the client would send it all on its return).
            if !cluster.is_connected() {
                metrics.cluster_voice_dropped.inc();
                continue;
            }
            let subject = subjects
                .entry(group)
                .or_insert_with(|| cluster.voice.subject(group))
                .clone();
            match cluster.voice.publish_on(subject, frame).await {
                Ok(()) => metrics.cluster_voice_out.inc(),
                Err(_) => metrics.cluster_voice_dropped.inc(),
            }
        }
        if let Err(error) = cluster.voice.flush().await {
            tracing::debug!(%error, "voice to the cluster not flushed");
        }
    }
}

/// The control room's messages go to the other relays' dispatchers too.
impl ControlRoomShare for ClusterLink {
    fn share(&self, about_group: u32, frame: &Bytes) {
        if self
            .control_out
            .try_send((about_group, frame.clone()))
            .is_err()
        {
            tracing::warn!(
                about_group,
                "a message for the control rooms dropped: NATS is not taking it"
            );
        }
    }
}

/// Publishes queued control-room messages until the link is gone; none is
/// queued for a NATS that is away (a position comes again within seconds).
async fn publish_control(cluster: Cluster, mut messages: mpsc::Receiver<(u32, Bytes)>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while messages.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        for (about_group, frame) in batch.drain(..) {
            if !cluster.is_connected() {
                continue;
            }
            if let Err(error) = cluster.control.publish(about_group, &frame).await {
                tracing::debug!(%error, "a message for the control rooms not published");
            }
        }
        if let Err(error) = cluster.voice.flush().await {
            tracing::debug!(%error, "control-room messages not flushed");
        }
    }
}

/// Zone logic's changes go to the other relays too.
impl RegroupShare for ClusterLink {
    fn share(&self, changes: &[RegroupRecord]) {
        if self.regroup_out.try_send(changes.to_vec()).is_err() {
            tracing::warn!("regroupings not shared: NATS is not taking them");
        }
    }
}

/// What this relay logs goes to every relay's call log too.
impl LogShare for ClusterLink {
    fn share(&self, record: Record, stored: Option<tokio::sync::oneshot::Sender<()>>) {
        self.calllog_out.share(record, stored);
    }
}

/// Publishes queued regroupings in order until the link is gone.
async fn publish_regroups(cluster: Cluster, mut batches: mpsc::Receiver<Vec<RegroupRecord>>) {
    while let Some(changes) = batches.recv().await {
        if let Err(error) = cluster.regroup.publish(&changes).await {
            tracing::warn!(%error, "regroupings not shared with the cluster");
        }
    }
}

/// Publishes queued news in order until the link is gone.
async fn publish_news(cluster: Cluster, mut news: mpsc::Receiver<(u32, FloorNews)>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while news.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        for (group, item) in batch.drain(..) {
            // News of a floor decided while NATS was away would come late
            // and out of turn; the group ends what it decided then.
            if !cluster.is_connected() {
                continue;
            }
            if let Err(error) = cluster.news.publish(group, &item).await {
                tracing::warn!(group, %error, "floor news not published");
            }
        }
        if let Err(error) = cluster.voice.flush().await {
            tracing::debug!(%error, "floor news not flushed");
        }
    }
}
