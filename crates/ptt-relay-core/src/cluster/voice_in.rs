//! Voice from the other relays' talkers, fanned out to this relay's
//! listeners.

use std::sync::Arc;
use std::time::Instant;

use ptt_cluster::GroupVoice;
use ptt_proto::voice::{Kind, VoiceDatagram};
use tokio::task::AbortHandle;

use super::link::ClusterLink;
use crate::fanout::{ALL_CALL_GROUP, Fanout, forward_remote_all_call, hand_over_to_listeners};
use crate::group::GroupShared;
use crate::group::context::RemoteVoice;

/// The other relays' voice for this relay's listeners: what a group task
/// starts while it has listeners here (or decides the floor).
#[derive(Debug)]
pub struct VoiceTap {
    link: Arc<ClusterLink>,
    fanout: Fanout,
}

impl VoiceTap {
    /// Hears voice through `link` and fans it out with `fanout`.
    pub fn new(link: Arc<ClusterLink>, fanout: Fanout) -> Self {
        Self { link, fanout }
    }
}

impl RemoteVoice for VoiceTap {
    fn hear(&self, group: Arc<GroupShared>) -> AbortHandle {
        let bus = self.link.cluster.voice.clone();
        let presence = self.link.cluster.presence.clone();
        let fanout = self.fanout.clone();
        tokio::spawn(async move {
            match bus.subscribe(group.id).await {
                Ok(voice) => {
                    // Subscribed first: the talkers' relays start publishing
                    // once they hear this, and NATS has the subscription.
                    let _hearing = group.hearing();
                    if let Err(error) = presence.announce_hearing(group.id).await {
                        tracing::debug!(group = group.id, %error, "hearing not announced");
                    }
                    hear_voice(group, voice, fanout).await;
                }
                Err(error) => {
                    tracing::warn!(group = group.id, %error, "cannot hear the other relays' voice");
                }
            }
        })
        .abort_handle()
    }
}

/// Hears `group`'s voice from the other relays until `voice` ends (the
/// subscription is dropped by aborting this task): each frame goes once to
/// each of this relay's shards with listeners of the group, as a frame
/// from another shard does. While this relay owns the group's floor the
/// frame also counts as the holder's media (the talk and inactivity
/// timers) and goes to the recorder, which records each burst once, at
/// its owner.
pub async fn hear_voice(group: Arc<GroupShared>, mut voice: GroupVoice, fanout: Fanout) {
    while let Some(remote) = voice.next().await {
        let received = Instant::now();
        let Ok(parsed) = VoiceDatagram::parse(remote.datagram.clone()) else {
            fanout.metrics.cluster_voice_unreadable.inc();
            continue;
        };
        let header = parsed.header;
        if header.group_id != group.id || header.kind == Kind::KeepAlive {
            fanout.metrics.cluster_voice_unreadable.inc();
            continue;
        }
        fanout.metrics.cluster_voice_in.inc();
        if group.decides_here() {
            if group.burst_of(header.talker_id) == Some(header.burst_id) {
                group.note_media(fanout.clock.now_ms());
            }
            fanout.recorder.offer(
                group.id,
                header.burst_id,
                header.talker_id,
                header.sequence,
                &remote.datagram,
            );
        }
        hand_over_to_listeners(
            &fanout,
            &group,
            &remote.datagram,
            header.talker_id,
            None,
            received,
        );
    }
}

/// Hears the other relays' dispatchers' all-calls for as long as the relay
/// runs: each frame comes once (group 0) and goes to this relay's listeners
/// of every all-call group its talker holds, each listener once, as a
/// local all-call's does.
pub async fn hear_all_calls(link: Arc<ClusterLink>, fanout: Fanout) {
    loop {
        match link.cluster.voice.subscribe(ALL_CALL_GROUP).await {
            Ok(mut voice) => {
                // Subscribed first, as for a group (see `VoiceTap`).
                if let Err(error) = link.cluster.presence.announce_hearing(ALL_CALL_GROUP).await {
                    tracing::debug!(%error, "hearing all-calls not announced");
                }
                while let Some(remote) = voice.next().await {
                    match forward_remote_all_call(&fanout, &remote.datagram, Instant::now()) {
                        Ok(Some(_)) => fanout.metrics.cluster_voice_in.inc(),
                        // Its talker holds no all-call group here (yet, or any more).
                        Ok(None) => {}
                        Err(_) => fanout.metrics.cluster_voice_unreadable.inc(),
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot hear the other relays' all-calls"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
