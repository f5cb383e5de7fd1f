//! The relay: loads its configuration into running parts, accepts
//! connections until told to stop, then shuts down in order.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ptt_calllog::{CallLog, CallLogError};
use ptt_directory::{Directory, DirectoryError};
use ptt_recording::{Recorder, RecordingError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{self, ClusterError};
use crate::config::Config;
use crate::group_set::GroupSet;
use crate::shards::{ConsoleParts, Shard, ShardParts};
use ptt_relay_core::admission::{AdmissionSettings, Gate};
use ptt_relay_core::alert::{Alerting, Alerts};
use ptt_relay_core::auth::Authenticator;
use ptt_relay_core::auth::resume_key;
use ptt_relay_core::browser::{BrowserPort, BrowserPortError};
use ptt_relay_core::clock::Clock;
use ptt_relay_core::cluster::voice_in::VoiceTap;
use ptt_relay_core::dispatch::Dispatch;
use ptt_relay_core::fanout::Fanout;
use ptt_relay_core::group::{GroupCluster, GroupContext, Groups};
use ptt_relay_core::log_sink::LogSink;
use ptt_relay_core::metrics::Metrics;
use ptt_relay_core::online::Online;
use ptt_relay_core::private_call::PrivateCalls;
use ptt_relay_core::quic::{ResetKey, ServerConfigError, TransportSettings};
use ptt_relay_core::roster::Roster;
use ptt_relay_core::session::context::SessionContext;
use ptt_relay_core::shard::post::ShardPosts;
use ptt_relay_core::shard::steer;
use ptt_relay_core::shard::wire::WireProbe;
use ptt_relay_core::tls::{Identity, ResetKeyError, TlsError};
use ptt_relay_core::view::RelayView;

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
    /// The stateless reset key could not be read or made (the error names
    /// the file).
    #[error(transparent)]
    ResetKey(#[from] ResetKeyError),
    /// The directory file is invalid (the error names file, line and field).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The call log database could not be opened.
    #[error("call log: {0}")]
    CallLog(#[from] CallLogError),
    /// The recordings directory or the recording thread could not be set up.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The cluster could not be joined at start.
    #[error("joining the cluster: {0}")]
    Cluster(#[from] ClusterError),
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
    /// The console port could not be set up.
    #[error(transparent)]
    Console(#[from] BrowserPortError),
    /// The UDP socket could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A loaded relay, bound and ready to [`run`](Relay::run).
#[derive(Debug)]
pub struct Relay {
    /// What the ops port reads.
    view: RelayView,
    ops_state: Arc<ptt_ops::OpsState>,
    /// The voice datapath: one thread and QUIC endpoint per shard.
    shards: Vec<Shard>,
    /// The UDP address every shard's socket is bound to.
    local_addr: SocketAddr,
    cert_path: PathBuf,
    groups: TaskTracker,
    /// Stops the group tasks once the sessions are gone.
    stop_groups: CancellationToken,
    ops: tokio::net::TcpListener,
}

impl Relay {
    /// Loads everything the configuration names — data directory, TLS
    /// identity, directory, call log — starts one task per group, and one
    /// thread per shard with its socket and QUIC endpoint (accepting once
    /// [`run`](Relay::run) is called). Must be called inside a tokio runtime.
    pub async fn load(config: Config) -> Result<Self, RelayError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| RelayError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        // Kept across restarts so that terminals of a relay that was killed
        // are reset at their next packet instead of waiting for their idle
        // timeout (see `ResetKey`).
        let reset_key = ResetKey::load_or_generate(&config.data_dir)?;
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
        let admission = AdmissionSettings {
            hello_timeout: config.hello_timeout,
            max_unauthenticated: config.max_unauthenticated,
            max_unauthenticated_per_address: config.max_unauthenticated_per_address,
            max_sessions: config.max_connections,
        };
        let mut server_config = transport.server_config(identity.server_config()?)?;
        // Attempts wait for an unauthenticated slot in quinn's queue, so it is
        // sized by admission rather than by `max-connections`.
        admission.apply_to(&mut server_config);
        let bind_error = |source| RelayError::Bind {
            addr: config.listen,
            source,
        };
        let shard_count = config.shard_count();
        let sockets = steer::bind(config.listen, shard_count).map_err(bind_error)?;
        let local_addr = sockets
            .first()
            .map_or(Ok(config.listen), std::net::UdpSocket::local_addr)
            .map_err(bind_error)?;
        let (posts, inboxes) = ShardPosts::new(shard_count);
        // At most MAX_SHARDS (64), checked with the configuration.
        let shard_ids: Vec<u8> = (0..shard_count)
            .map(|index| u8::try_from(index).unwrap_or(u8::MAX))
            .collect();
        let endpoint_configs = shard_ids
            .iter()
            .map(|&index| reset_key.endpoint_config(index))
            .collect::<Result<Vec<_>, _>>()?;
        let ops = ptt_ops::bind(config.ops_listen).map_err(|source| RelayError::OpsBind {
            addr: config.ops_listen,
            source,
        })?;
        let console_bind_error = |source| RelayError::Bind {
            addr: config.console_listen,
            source,
        };
        let console_socket =
            std::net::UdpSocket::bind(config.console_listen).map_err(console_bind_error)?;
        let browsers = Arc::new(
            BrowserPort::new(
                console_socket.local_addr().map_err(console_bind_error)?,
                transport,
            )
            .map_err(BrowserPortError::from)?,
        );
        let mut console_server = browsers.server_config()?;
        admission.apply_to(&mut console_server);
        let mut console = Some(ConsoleParts {
            socket: console_socket,
            server: console_server,
            port: browsers.clone(),
            admission,
        });

        let metrics = Arc::new(Metrics::default());
        let admission = Gate::new(admission, metrics.clone());
        let clock = Clock::start();
        let shutdown = CancellationToken::new();
        let log = LogSink::new(calllog, metrics.clone());
        let roster = Arc::new(roster);
        let online = Arc::new(Online::default());

        let in_cluster = config.cluster_join().is_some();
        let set = GroupSet::new(&directory, config.private_calls, in_cluster);
        let groups = Arc::new(set.groups);

        let recorder = match config.recording_settings() {
            Some(settings) => {
                // Recordings a crash left are reconciled with their call-log rows.
                let mut rows = ptt_calllog::RecordingRows::open(&config.calllog_path())?;
                let metrics = metrics.recording.clone();
                let recorder =
                    Recorder::start_with_log(settings, directory.clone(), metrics, &mut rows)?;
                // A burst row is committed once its recording's end is synced.
                let synced = recorder.clone();
                log.calllog().set_commit_barrier(move || {
                    synced.wait_for_burst_ends();
                });
                recorder
            }
            None => Recorder::disabled(),
        };
        let dispatch = Arc::new(Dispatch::new(
            directory.clone(),
            f64::from(config.backup_radius_m),
            roster.clone(),
            online.clone(),
            groups.clone(),
            log.clone(),
        ));
        let alerts = Arc::new(Alerts::new(ptt_calllog::last_alert_id(
            &config.calllog_path(),
        )));
        let alerting = Arc::new(Alerting {
            alerts: alerts.clone(),
            groups: groups.clone(),
            directory: directory.clone(),
            roster: roster.clone(),
            online: online.clone(),
            log: log.clone(),
            clock,
            metrics: metrics.clone(),
        });
        let private_calls = Arc::new(PrivateCalls::new(
            set.call_slots,
            directory.clone(),
            roster.clone(),
            online.clone(),
            log.clone(),
            shutdown.clone(),
            config.private_call_answer_timeout,
        ));
        let cluster_link = cluster::join(&config, &metrics).await?;
        let view = RelayView {
            directory: directory.clone(),
            roster: roster.clone(),
            groups: groups.clone(),
            online: online.clone(),
            alerts: alerts.clone(),
            dispatch: dispatch.clone(),
            private_calls: private_calls.clone(),
            log: log.clone(),
            recorder: recorder.clone(),
            clock,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            browsers,
            cluster: cluster_link.clone(),
        };
        let fanout = Fanout {
            groups: groups.clone(),
            clock,
            metrics: metrics.clone(),
            recorder: recorder.clone(),
            shards: posts,
            wire: (0..shard_count).map(|_| WireProbe::default()).collect(),
            cluster: cluster_link.clone(),
        };
        if let Some(link) = cluster_link.clone() {
            let parts = cluster::Parts {
                roster: roster.clone(),
                online: online.clone(),
                groups: groups.clone(),
                directory: directory.clone(),
                dispatch: dispatch.clone(),
                log: log.clone(),
                metrics: metrics.clone(),
                fanout: fanout.clone(),
                alerting: alerting.clone(),
                private_calls: private_calls.clone(),
                cross_relay_slots: set.cross_relay_slots,
            };
            cluster::serve(link, parts, shutdown.clone());
        }
        let group_context = Arc::new(GroupContext {
            directory: directory.clone(),
            groups: groups.clone(),
            clock,
            metrics: metrics.clone(),
            log: log.clone(),
            recorder: recorder.clone(),
            shutdown: shutdown.clone(),
            emergencies: dispatch.clone(),
            cluster: cluster_link.clone().map(|link| GroupCluster {
                voice: Arc::new(VoiceTap::new(link.clone(), fanout.clone())),
                link,
            }),
        });
        let mut resume_key =
            resume_key::load_or_create(&config.data_dir).map_err(|source| RelayError::DataDir {
                path: resume_key::key_path(&config.data_dir),
                source,
            })?;
        if let Some(link) = &cluster_link {
            resume_key = cluster::shared_resume_key(link, resume_key).await?;
        }
        let auth = Authenticator::new(
            &config.login_settings(),
            resume_key,
            &directory,
            metrics.clone(),
        );
        let sessions = Arc::new(SessionContext {
            fanout,
            directory,
            roster,
            groups,
            online,
            alerts: alerting,
            dispatch,
            private_calls,
            auth,
            log,
            clock,
            metrics,
            rate_limits: config.rate_limits(),
            shutdown,
        });
        let tasks = TaskTracker::new();
        let stop_groups = CancellationToken::new();
        set.unstarted.start(&group_context, &tasks, &stop_groups);
        tasks.close();
        let cores = shard_cores(shard_count, config.pin_shards);
        let mut shards = Vec::with_capacity(shard_count);
        let shard_parts = shard_ids
            .into_iter()
            .zip(sockets)
            .zip(endpoint_configs)
            .zip(inboxes);
        for (((index, socket), endpoint), inbox) in shard_parts {
            let parts = ShardParts {
                index,
                socket,
                endpoint,
                server: server_config.clone(),
                inbox,
                core: cores.get(usize::from(index)).copied().flatten(),
                sessions: sessions.clone(),
                admission: admission.clone(),
                grace: SHUTDOWN_GRACE,
                // The first shard serves the console port too.
                console: console.take(),
            };
            match Shard::start(parts) {
                Ok(shard) => shards.push(shard),
                Err(error) => {
                    stop_groups.cancel();
                    return Err(bind_error(error));
                }
            }
        }
        Ok(Self {
            ops_state: ptt_ops::OpsState::new(
                view.clone(),
                ptt_ops::OpsAccess::new(config.view_token.clone(), &config.ops_allowed_hosts),
                config.admin_token.clone().unwrap_or_default(),
                config.ops_limits(),
                config.console_tiles.clone(),
            ),
            view,
            shards,
            local_addr,
            cert_path,
            groups: tasks,
            stop_groups,
            ops,
        })
    }

    /// The UDP address the relay listens on (with the real port when the
    /// configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The TCP address of the ops HTTP server (metrics, API, dashboard).
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The UDP address of the console port (browsers, WebTransport).
    pub fn console_addr(&self) -> SocketAddr {
        self.view.browsers.local_addr()
    }

    /// The certificate clients must pin or trust.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// A token that stops the relay gracefully when cancelled (what SIGTERM
    /// and ctrl-c do in `pttd`).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.view.shutdown.clone()
    }

    /// Counters of the running relay.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.view.metrics.clone()
    }

    /// Every group of the running relay (holders, listeners, traffic).
    pub fn groups(&self) -> Arc<Groups> {
        self.view.groups.clone()
    }

    /// Lets every shard accept terminals until the shutdown token is
    /// cancelled, then tells every terminal the relay is going away, flushes
    /// the call log and returns. Each connection attempt passes admission
    /// first ([`Gate::admit`]).
    pub async fn run(mut self) -> Result<(), RelayError> {
        let stop_ops = CancellationToken::new();
        let ops = tokio::spawn(ptt_ops::serve(self.ops, self.ops_state, stop_ops.clone()));
        let shutdown = self.view.shutdown.clone();
        for shard in &mut self.shards {
            shard.go();
        }
        shutdown.cancelled().await;
        tracing::info!("shutting down: telling terminals, flushing the call log");
        // Each shard refuses new connections, waits for its sessions to
        // say goodbye (up to the grace) and closes its endpoint.
        for shard in &mut self.shards {
            let _ = tokio::time::timeout(2 * SHUTDOWN_GRACE, shard.closed()).await;
        }
        // The sessions have left their groups; the group tasks log the
        // bursts that ended and stop. Then the log is flushed.
        self.stop_groups.cancel();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.groups.wait()).await;
        // The bursts have ended: their recordings are closed and named.
        let recorder = self.view.recorder.clone();
        let _ = tokio::time::timeout(
            SHUTDOWN_GRACE,
            tokio::task::spawn_blocking(move || recorder.close()),
        )
        .await;
        // Acknowledgements waiting for their records are answered first.
        let log = self.view.log.clone();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, log.drain_durable()).await;
        let calllog = log.calllog().clone();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, calllog.flush()).await;
        // The shards' endpoints have had the same time to see their closes
        // acknowledged.
        for shard in self.shards {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, shard.join()).await;
        }
        stop_ops.cancel();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, ops).await;
        if let Err(error) = calllog.close().await {
            tracing::error!(%error, "closing the call log");
        }
        tracing::info!("relay stopped");
        Ok(())
    }
}
/// The core each shard's thread is pinned to: with `pin` and no more
/// shards than cores this process may run on, the n-th of those cores for
/// shard n; otherwise none (the kernel places the threads).
fn shard_cores(shards: usize, pin: bool) -> Vec<Option<usize>> {
    let allowed: Vec<usize> = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
                .collect()
        })
        .unwrap_or_default();
    if pin && shards <= allowed.len() {
        allowed.into_iter().take(shards).map(Some).collect()
    } else {
        vec![None; shards]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(data_dir: &Path) -> Config {
        Config {
            data_dir: data_dir.to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            console_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            record: false,
            ..Config::default()
        }
    }

    #[test]
    fn shards_are_pinned_to_distinct_allowed_cores_only_when_asked_and_possible() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let pinned = shard_cores(cores, true);
        assert_eq!(pinned.len(), cores);
        let distinct: std::collections::BTreeSet<_> = pinned.iter().flatten().collect();
        assert_eq!(distinct.len(), cores, "one core each: {pinned:?}");
        assert_eq!(shard_cores(cores, false), vec![None; cores]);
        // More shards than cores: the kernel places them.
        assert_eq!(shard_cores(cores + 1, true), vec![None; cores + 1]);
    }

    #[tokio::test]
    async fn the_reset_key_is_made_once_and_a_damaged_one_stops_the_start() {
        let data = tempfile::tempdir().unwrap();
        let key_path = data.path().join(ptt_relay_core::tls::RESET_KEY_FILE);
        drop(Relay::load(config(data.path())).await.unwrap());
        let key = std::fs::read(&key_path).unwrap();
        drop(Relay::load(config(data.path())).await.unwrap());
        assert_eq!(
            std::fs::read(&key_path).unwrap(),
            key,
            "kept across restarts"
        );

        std::fs::write(&key_path, &key[..20]).unwrap();
        let error = Relay::load(config(data.path())).await.unwrap_err();
        assert!(matches!(error, RelayError::ResetKey(_)), "{error:?}");
        let text = error.to_string();
        assert!(text.contains(&key_path.display().to_string()), "{text}");
        assert!(text.contains("20 bytes"), "{text}");
    }
}
