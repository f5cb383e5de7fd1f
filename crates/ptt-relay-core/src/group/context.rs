//! What every group task works with besides its own group, handed in by the relay at
//! start: names, the clock, counters, the call log, the recorder, the control room, and
//! who to tell of emergencies.

use std::fmt;
use std::sync::Arc;

use ptt_directory::Directory;
use ptt_recording::Recorder;
use tokio_util::sync::CancellationToken;

use super::registry::Groups;
use crate::clock::Clock;
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
}
