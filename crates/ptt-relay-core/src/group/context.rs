//! What every group task works with besides its own group, handed in by the relay at
//! start: names, the clock, counters, the call log, the recorder, the control room, and
//! who to tell of emergencies.

use std::fmt;
use std::sync::Arc;

use ptt_directory::Directory;
use ptt_recording::Recorder;
use tokio_util::sync::CancellationToken;

use super::registry::Groups;
use super::shared::GroupShared;
use crate::clock::Clock;
use crate::cluster::link::ClusterLink;
use crate::log_sink::LogSink;
use crate::metrics::Metrics;

/// Told when a group's emergency starts and ends, from the group's task. Zone logic
/// implements it to pull nearby guards into a backup call; the group knows nothing of
/// zones.
pub trait EmergencyWatch: Send + Sync + fmt::Debug {
    /// `caller` declared an emergency in `group`.
    fn declared(&self, group: u32, caller: u32);
    /// The emergency of `group` was cleared.
    fn cleared(&self, group: u32);
}

/// Hears a group's voice from the other relays of a cluster and fans it out
/// to this relay's listeners; the cluster module implements it, so a group
/// knows nothing of NATS or the fan-out.
pub trait RemoteVoice: Send + Sync + fmt::Debug {
    /// Starts hearing `group`'s voice; it stops when the handle is aborted.
    fn hear(&self, group: Arc<GroupShared>) -> tokio::task::AbortHandle;
}

/// What a group task of a relay in a cluster uses besides its own relay.
#[derive(Debug, Clone)]
pub struct GroupCluster {
    /// The leases, floor calls, news and voice.
    pub link: Arc<ClusterLink>,
    /// The other relays' voice for this relay's listeners.
    pub voice: Arc<dyn RemoteVoice>,
}

/// The handles shared by every group task.
#[derive(Debug)]
pub struct GroupContext {
    /// Names for floor events.
    pub directory: Arc<Directory>,
    /// Every group; the control room is told of floor and emergency events.
    pub groups: Arc<Groups>,
    /// The relay's clock.
    pub clock: Clock,
    /// Floor counters and latency.
    pub metrics: Arc<Metrics>,
    /// Bursts and emergencies are logged here.
    pub log: LogSink,
    /// Told when each burst ends, to close its recording.
    pub recorder: Recorder,
    /// Set while the relay shuts down (a burst cut by it is logged as such).
    pub shutdown: CancellationToken,
    /// Told of emergencies.
    pub emergencies: Arc<dyn EmergencyWatch>,
    /// The cluster the relay is in; `None` for a relay on its own.
    pub cluster: Option<GroupCluster>,
}
