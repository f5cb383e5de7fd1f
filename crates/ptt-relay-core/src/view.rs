//! The relay as the operations port sees it: the handles it reads (and the few it acts
//! through for the admin API), named here so the ops crate depends on this and nothing
//! else of the relay's state.

use std::sync::Arc;

use ptt_directory::{Directory, TerminalId};
use ptt_recording::Recorder;
use tokio_util::sync::CancellationToken;

use crate::alert::Alerts;
use crate::browser::BrowserPort;
use crate::clock::Clock;
use crate::cluster::link::ClusterLink;
use crate::dispatch::Dispatch;
use crate::group::{GroupShared, Groups};
use crate::log_sink::LogSink;
use crate::metrics::Metrics;
use crate::online::Online;
use crate::private_call::PrivateCalls;
use crate::roster::Roster;

/// A read-mostly view of a running relay. Cheap to clone (handles only).
#[derive(Debug, Clone)]
pub struct RelayView {
    /// Terminals, groups, zones.
    pub directory: Arc<Directory>,
    /// Memberships now; the admin API changes them.
    pub roster: Arc<Roster>,
    /// Every group: holders, listeners, queues.
    pub groups: Arc<Groups>,
    /// Who is online.
    pub online: Arc<Online>,
    /// Alerts of the last hour with their tallies.
    pub alerts: Arc<Alerts>,
    /// Positions, patrols, backup calls.
    pub dispatch: Arc<Dispatch>,
    /// Private calls active now.
    pub private_calls: Arc<PrivateCalls>,
    /// The call log: its path for readers, its queue counters, and durable writes of admin
    /// actions.
    pub log: LogSink,
    /// Where the recordings are.
    pub recorder: Recorder,
    /// The relay's clock.
    pub clock: Clock,
    /// Counters and latency histograms.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the relay shuts down.
    pub shutdown: CancellationToken,
    /// The console port: where browsers connect, and the certificate they
    /// pin now.
    pub browsers: Arc<BrowserPort>,
    /// The cluster the relay is in (its id, where admin actions are
    /// shared); `None` for a relay on its own.
    pub cluster: Option<Arc<ClusterLink>>,
}

impl RelayView {
    /// This relay's id in its cluster; `None` for a relay on its own.
    pub fn cluster_relay(&self) -> Option<&str> {
        self.cluster.as_deref().map(ClusterLink::relay)
    }

    /// The group with id `id`.
    pub fn group(&self, id: u32) -> Option<&Arc<GroupShared>> {
        self.groups.get(id)
    }

    /// A terminal's display name, empty if unknown.
    pub fn terminal_name(&self, id: u32) -> String {
        self.directory.name_of(TerminalId(id)).to_owned()
    }
}
