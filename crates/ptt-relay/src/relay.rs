//! The relay: loads its configuration into running parts, accepts
//! connections until told to stop, then shuts down in order.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::alert::{self, Alerts};
use crate::auth::AuthLimiter;
use crate::calllog::{CallLog, CallLogError, Record};
use crate::clock::Clock;
use crate::config::{AdminToken, Config};
use crate::directory::{Directory, DirectoryError, GroupKind, TerminalId};
use crate::dispatch::Dispatch;
use crate::group::{GroupShared, GroupTask};
use crate::link::{self, Link};
use crate::metrics::Metrics;
use crate::private_call::{PRIVATE_CALL_GROUP_BASE, PrivateCalls};
use crate::quic::{self, ServerConfigError, TransportSettings};
use crate::recording::{self, Recorder, RecordingError};
use crate::roster::Roster;
use crate::tls::{Identity, TlsError};
use crate::{policy, session};

/// How long a graceful shutdown waits for terminals to hear `GoingAway` and
/// for the call log to drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The directory file is invalid (the error names file, line and field).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The call log database could not be opened.
    #[error("call log: {0}")]
    CallLog(#[from] CallLogError),
    /// The recordings directory or the recording thread could not be set up.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The QUIC configuration is invalid.
    #[error(transparent)]
    ServerConfig(#[from] ServerConfigError),
    /// The ops HTTP port could not be bound.
    #[error("binding the ops port {addr}: {source}")]
    OpsBind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The UDP socket could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// State every task of the relay shares. Read-mostly: the groups map is fixed
/// at start; sessions come and go in a concurrent map.
#[derive(Debug)]
pub struct Shared {
    /// Terminals, groups and ACLs.
    pub directory: Arc<Directory>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The relay's clock.
    pub clock: Clock,
    /// Authenticated sessions by terminal id (one per terminal).
    pub sessions: DashMap<u32, Arc<Link>>,
    /// Failed-authentication limiter per source address.
    pub auth_limiter: AuthLimiter,
    /// Cancelled when the relay shuts down.
    pub shutdown: CancellationToken,
    /// Alerts of the last hour with their roll-call tallies.
    pub alerts: Alerts,
    /// Writes every burst as an Ogg Opus file, off the hot path.
    pub recorder: Recorder,
    /// Runtime changes to the directory (disabled terminals, members changed
    /// through the admin API); sessions ask it who may log in and join what.
    pub roster: Roster,
    /// Bearer token of the admin API; `None` disables it.
    pub admin_token: Option<AdminToken>,
    /// Who may use the ops port: allowed host names, the view token.
    pub ops_access: crate::ops::OpsAccess,
    /// Zone logic: last positions, relay patrols, backup calls.
    pub dispatch: Dispatch,
    /// Private calls and their pool of temporary groups.
    pub private_calls: PrivateCalls,
    groups: HashMap<u32, Arc<GroupShared>>,
    control_room: Vec<Arc<GroupShared>>,
    all_call: Vec<Arc<GroupShared>>,
    names: HashMap<u32, Arc<str>>,
    calllog: CallLog,
    /// Waits for durable log writes, so shutdown flushes after them.
    durable: TaskTracker,
    /// Connections open now, against `max_connections`.
    connections: AtomicUsize,
    next_session: AtomicU64,
}

impl Shared {
    /// The group with id `id`.
    #[inline]
    pub fn group(&self, id: u32) -> Option<&Arc<GroupShared>> {
        self.groups.get(&id)
    }

    /// The control-room groups (whose listeners are the dispatchers online).
    pub fn control_room_groups(&self) -> &[Arc<GroupShared>] {
        &self.control_room
    }

    /// The groups a dispatcher's all-call covers.
    #[inline]
    pub fn all_call_groups(&self) -> &[Arc<GroupShared>] {
        &self.all_call
    }

    /// A terminal's display name, empty if unknown.
    pub fn terminal_name(&self, id: u32) -> String {
        self.names
            .get(&id)
            .map(|name| name.to_string())
            .unwrap_or_default()
    }

    /// A terminal's display name as a shared string.
    pub fn terminal_name_arc(&self, id: u32) -> Arc<str> {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// A new relay-unique session id.
    pub fn next_session(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Sends a framed event once to every dispatcher joined to a control-room
    /// group, except those that hear the group the event is about
    /// (`about_group`, 0 for none): its listeners were already told.
    pub fn notify_control_room(&self, about_group: u32, frame: &Bytes) {
        let mut told: HashSet<u32> = self
            .group(about_group)
            .map(|group| group.listeners().iter().map(|link| link.terminal).collect())
            .unwrap_or_default();
        for group in &self.control_room {
            for link in group.listeners().iter() {
                if told.insert(link.terminal) {
                    link.send_frame(frame.clone());
                }
            }
        }
    }

    /// Queues a call-log record without waiting; a full queue drops it and
    /// counts the drop.
    pub fn log(&self, record: Record) {
        if self.calllog.record(record).is_err() {
            self.metrics.log_dropped.inc();
        }
    }

    /// Queues a record and runs `then` once it is committed to disk (or the
    /// write failed), without blocking the caller.
    pub fn log_durable(
        &self,
        record: Record,
        then: impl FnOnce(Result<i64, CallLogError>) + Send + 'static,
    ) {
        let committed = self.calllog.record_durable(record);
        self.durable.spawn(async move { then(committed.await) });
    }

    /// The call log: its path (for a [`crate::calllog::CallLogReader`]) and
    /// its queue counters, for the ops port.
    pub fn calllog(&self) -> &CallLog {
        &self.calllog
    }
}

/// A loaded relay, bound and ready to [`run`](Relay::run).
#[derive(Debug)]
pub struct Relay {
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    cert_path: PathBuf,
    calllog: CallLog,
    groups: TaskTracker,
    /// Stops the group tasks once the sessions are gone.
    stop_groups: CancellationToken,
    max_connections: usize,
    ops: tokio::net::TcpListener,
}

impl Relay {
    /// Loads everything the configuration names — data directory, TLS
    /// identity, directory, call log — binds the QUIC endpoint and starts one
    /// task per group. Must be called inside a tokio runtime.
    pub async fn load(config: Config) -> Result<Self, RelayError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| RelayError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let identity = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => Identity::load(cert, key)?,
            _ => Identity::load_or_generate(&config.data_dir)?,
        };
        let cert_path = identity.cert_path.clone();
        let directory = Arc::new(match &config.directory {
            Some(path) => Directory::load(path)?,
            None => Directory::demo()?,
        });
        let calllog = CallLog::open(&config.calllog_path(), config.log_queue)?;
        let roster = Roster::load(directory.clone(), &config.calllog_path())?;

        let transport = TransportSettings {
            idle_timeout: config.idle_timeout,
            keep_alive: config.keep_alive,
            datagram_queue: Duration::from_millis(u64::from(config.datagram_queue_ms)),
            max_connections: u32::try_from(config.max_connections).unwrap_or(u32::MAX),
        };
        let server_config = transport.server_config(identity.server_config()?)?;
        let bind_error = |source| RelayError::Bind {
            addr: config.listen,
            source,
        };
        let socket = quic::bind_socket(config.listen).map_err(bind_error)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_error)?;
        let ops = crate::ops::bind(config.ops_listen).map_err(|source| RelayError::OpsBind {
            addr: config.ops_listen,
            source,
        })?;

        let mut groups = HashMap::new();
        let mut receivers = Vec::new();
        let mut control_room = Vec::new();
        let mut all_call = Vec::new();
        for group in directory.groups() {
            let (shared, rx) = GroupShared::new(group.id.0, Arc::from(group.name.as_str()));
            if group.kind == GroupKind::ControlRoom {
                control_room.push(shared.clone());
            }
            if group.all_call {
                all_call.push(shared.clone());
            }
            receivers.push((shared.clone(), rx, policy::floor_policy(&group.floor)));
            groups.insert(group.id.0, shared);
        }
        let mut private_slots = Vec::new();
        for slot in 0..config.private_calls {
            let id = PRIVATE_CALL_GROUP_BASE + slot;
            let (shared, rx) =
                GroupShared::new(id, Arc::from(format!("Private call {}", slot + 1)));
            receivers.push((shared.clone(), rx, ptt_floor::FloorPolicy::default()));
            groups.insert(id, shared.clone());
            private_slots.push(shared);
        }
        let names = directory
            .terminals()
            .iter()
            .map(|t| (t.id.0, Arc::from(t.name.as_str())))
            .collect();

        let metrics = Arc::new(Metrics::default());
        let recorder = match recording::Settings::from_config(&config) {
            Some(settings) => Recorder::start(settings, directory.clone(), metrics.clone())?,
            None => Recorder::disabled(),
        };
        let dispatch = Dispatch::new(&directory, f64::from(config.backup_radius_m));
        let shared = Arc::new(Shared {
            directory,
            metrics: metrics.clone(),
            clock: Clock::start(),
            sessions: DashMap::new(),
            auth_limiter: AuthLimiter::new(config.auth_failures_per_minute),
            shutdown: CancellationToken::new(),
            alerts: Alerts::new(
                control_room.clone(),
                alert::last_logged_id(&config.calllog_path()),
            ),
            recorder,
            roster,
            admin_token: config.admin_token.clone(),
            ops_access: crate::ops::OpsAccess::from_config(&config),
            dispatch,
            private_calls: PrivateCalls::new(private_slots),
            groups,
            control_room,
            all_call,
            names,
            calllog: calllog.clone(),
            durable: TaskTracker::new(),
            connections: AtomicUsize::new(0),
            next_session: AtomicU64::new(0),
        });
        let tasks = TaskTracker::new();
        let stop_groups = CancellationToken::new();
        for (group, rx, policy) in receivers {
            let span = tracing::info_span!("group", id = group.id);
            let task = GroupTask::new(group, rx, policy, shared.clone());
            tasks.spawn(task.run(stop_groups.clone()).instrument(span));
        }
        tasks.close();
        Ok(Self {
            shared,
            endpoint,
            cert_path,
            calllog,
            groups: tasks,
            stop_groups,
            max_connections: config.max_connections,
            ops,
        })
    }

    /// The UDP address the relay listens on (with the real port when the
    /// configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The TCP address of the ops HTTP server (metrics, API, dashboard).
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The certificate clients must pin or trust.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// A token that stops the relay gracefully when cancelled (what SIGTERM
    /// and ctrl-c do in `pttd`).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// Counters of the running relay.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Accepts terminals until the shutdown token is cancelled, then tells
    /// every terminal the relay is going away, flushes the call log and
    /// returns.
    pub async fn run(self) -> Result<(), RelayError> {
        let stop_ops = CancellationToken::new();
        let ops = tokio::spawn(crate::ops::serve(
            self.ops,
            crate::ops::router(self.shared.clone()),
            stop_ops.clone(),
        ));
        let sessions = TaskTracker::new();
        loop {
            let incoming = tokio::select! {
                incoming = self.endpoint.accept() => incoming,
                () = self.shared.shutdown.cancelled() => None,
            };
            let Some(incoming) = incoming else { break };
            let Some(slot) = ConnectionSlot::take(&self.shared, self.max_connections) else {
                tracing::warn!(remote = %incoming.remote_address(), "connection limit reached");
                incoming.refuse();
                continue;
            };
            let shared = self.shared.clone();
            sessions.spawn(async move {
                session::serve(shared, incoming).await;
                drop(slot);
            });
        }
        tracing::info!("shutting down: telling terminals, flushing the call log");
        // Refuse new connections from now on.
        self.endpoint.set_server_config(None);
        self.shared.shutdown.cancel();
        sessions.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("some sessions did not end in time; closing them");
        }
        self.endpoint
            .close(link::CLOSE_GOING_AWAY.into(), b"relay shutting down");
        // The sessions have left their groups; the group tasks log the
        // bursts that ended and stop. Then the log is flushed.
        self.stop_groups.cancel();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.groups.wait()).await;
        // The bursts have ended: their recordings are closed and named.
        let recorder = self.shared.recorder.clone();
        let _ = tokio::time::timeout(
            SHUTDOWN_GRACE,
            tokio::task::spawn_blocking(move || recorder.close()),
        )
        .await;
        // Acknowledgements waiting for their records are answered first.
        self.shared.durable.close();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.shared.durable.wait()).await;
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.calllog.flush()).await;
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.endpoint.wait_idle()).await;
        stop_ops.cancel();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, ops).await;
        if let Err(error) = self.calllog.close().await {
            tracing::error!(%error, "closing the call log");
        }
        tracing::info!("relay stopped");
        Ok(())
    }
}

/// One of the `max_connections` places, held while a connection is served.
struct ConnectionSlot(Arc<Shared>);

impl ConnectionSlot {
    fn take(shared: &Arc<Shared>, max: usize) -> Option<Self> {
        let open = shared.connections.fetch_add(1, Ordering::AcqRel);
        if open >= max {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(shared.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The directory's id type for a raw terminal id.
pub(crate) fn terminal_id(id: u32) -> TerminalId {
    TerminalId(id)
}
