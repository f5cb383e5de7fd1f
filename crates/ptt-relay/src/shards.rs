//! The relay's shards as threads (see `ptt_relay_core::shard`): each one a
//! current-thread tokio runtime, optionally pinned to a core, running its
//! own QUIC endpoint on its own socket of the relay's port, the sessions of
//! the connections that endpoint accepts, the frames other shards hand it,
//! and its probe of the latency to the wire. The first shard also serves
//! the console port (browsers; `ptt_relay_core::browser`) on an endpoint of
//! its own, and renews that port's certificate. Everything else — group tasks, the call log, the ops port — runs on
//! the caller's runtime.
//!
//! A shard is started by [`Shard::start`] when the relay loads (its
//! endpoint then exists, as a single endpoint did before: a failure is a
//! load error), begins accepting when [`Shard::go`] is called, and stops
//! accepting at the relay's shutdown.

use std::net::UdpSocket;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ptt_relay_core::admission::{AdmissionSettings, Gate};
use ptt_relay_core::browser::{BrowserPort, ROTATE_EVERY};
use ptt_relay_core::fanout;
use ptt_relay_core::link;
use ptt_relay_core::session::context::SessionContext;
use ptt_relay_core::session::{self, Door};
use ptt_relay_core::shard::post::Handover;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

/// What a shard's thread is given.
pub(crate) struct ShardParts {
    /// The shard's index: the first byte of its connection ids.
    pub index: u8,
    /// Its socket in the relay port's `SO_REUSEPORT` group.
    pub socket: UdpSocket,
    /// Its endpoint's configuration (its connection ids).
    pub endpoint: quinn::EndpointConfig,
    /// The server configuration all shards share (one TLS identity, one
    /// address-validation token key).
    pub server: quinn::ServerConfig,
    /// The frames other shards hand it.
    pub inbox: mpsc::Receiver<Handover>,
    /// The core to pin its thread to, if any.
    pub core: Option<usize>,
    /// What every session works with.
    pub sessions: Arc<SessionContext>,
    /// Who gets a handshake and a session slot (shared by all shards).
    pub admission: Arc<Gate>,
    /// How long the shutdown waits for sessions and the endpoint.
    pub grace: Duration,
    /// The console port, for the one shard that serves it.
    pub console: Option<ConsoleParts>,
}

/// The console port as the shard that serves it is given it.
pub(crate) struct ConsoleParts {
    /// The port's socket.
    pub socket: UdpSocket,
    /// Its QUIC server configuration (ALPN `h3`, the first certificate).
    pub server: quinn::ServerConfig,
    /// Its certificate over time.
    pub port: Arc<BrowserPort>,
    /// What each renewed configuration is bounded by, as the first.
    pub admission: AdmissionSettings,
}

/// A running shard thread, as the relay holds it.
#[derive(Debug)]
pub(crate) struct Shard {
    go: Option<oneshot::Sender<()>>,
    /// Fires once the shard's sessions have ended and its endpoint is
    /// closed (it then waits for the closes to be acknowledged).
    closed: Option<oneshot::Receiver<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Shard {
    /// Starts the shard's thread and its endpoint; returns once the
    /// endpoint exists (or could not be made). It accepts nothing before
    /// [`Shard::go`]; dropping the handle first stops it.
    pub(crate) fn start(parts: ShardParts) -> std::io::Result<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = oneshot::channel();
        let (closed_tx, closed_rx) = oneshot::channel();
        let index = parts.index;
        let thread = std::thread::Builder::new()
            .name(format!("pttd-shard-{index}"))
            .spawn(move || run_thread(parts, ready_tx, go_rx, closed_tx))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                go: Some(go_tx),
                closed: Some(closed_rx),
                thread: Some(thread),
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(std::io::Error::other(format!(
                "shard {index} stopped while starting"
            ))),
        }
    }

    /// Lets the shard accept connections.
    pub(crate) fn go(&mut self) {
        if let Some(go) = self.go.take() {
            let _ = go.send(());
        }
    }

    /// Waits until the shard's sessions have ended and its endpoint is
    /// closed (after the relay's shutdown token was cancelled).
    pub(crate) async fn closed(&mut self) {
        if let Some(closed) = self.closed.take() {
            let _ = closed.await;
        }
    }

    /// Waits for the shard's thread to end, on a blocking thread.
    pub(crate) async fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The shard thread: pin, build the runtime and the endpoint, say whether
/// that worked, then serve until the shutdown.
fn run_thread(
    parts: ShardParts,
    ready: std::sync::mpsc::Sender<std::io::Result<()>>,
    go: oneshot::Receiver<()>,
    closed: oneshot::Sender<()>,
) {
    if let Some(core) = parts.core {
        pin_to(core, parts.index);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    runtime.block_on(serve(parts, ready, go, closed));
    // Connections still closing have had their grace.
    runtime.shutdown_timeout(Duration::from_millis(100));
}

/// Pins the calling thread to `core`; a refusal (a container's CPU set
/// changed under us) leaves it unpinned, logged.
fn pin_to(core: usize, shard: u8) {
    use nix::sched::{CpuSet, sched_setaffinity};
    use nix::unistd::Pid;
    let mut set = CpuSet::new();
    let pinned = set
        .set(core)
        .and_then(|()| sched_setaffinity(Pid::from_raw(0), &set));
    match pinned {
        Ok(()) => tracing::debug!(shard, core, "shard pinned"),
        Err(error) => tracing::warn!(shard, core, %error, "shard left unpinned"),
    }
}

/// The shard's life on its thread: make the endpoint and say so, serve
/// handovers and time the wire, accept once told to go, then close.
async fn serve(
    parts: ShardParts,
    ready: std::sync::mpsc::Sender<std::io::Result<()>>,
    go: oneshot::Receiver<()>,
    closed: oneshot::Sender<()>,
) {
    let ShardParts {
        index,
        socket,
        endpoint,
        server,
        inbox,
        sessions,
        admission,
        grace,
        core: _,
        console,
    } = parts;
    let endpoints = make_endpoints(endpoint, server, socket, console);
    let (endpoint, console) = match endpoints {
        Ok(endpoints) => endpoints,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let deliveries = tokio::spawn(fanout::deliver_handovers(
        sessions.fanout.clone(),
        index,
        inbox,
    ));
    let probe = tokio::spawn({
        let (wire, metrics) = (sessions.fanout.wire.clone(), sessions.metrics.clone());
        async move {
            if let Some(probe) = wire.get(usize::from(index)) {
                probe.run(&metrics.wire_latency).await;
            }
        }
    });
    // Without the go the relay was dropped before it ran: nothing to serve.
    if go.await.is_ok() {
        let terminals = accept(
            &endpoint,
            &sessions,
            &admission,
            index,
            grace,
            Door::Terminal,
        );
        match &console {
            Some((browsers, renewal)) => {
                let renewals = tokio::spawn(renew_certificates(browsers.clone(), renewal.clone()));
                let consoles = accept(browsers, &sessions, &admission, index, grace, Door::Console);
                tokio::join!(terminals, consoles);
                renewals.abort();
            }
            None => terminals.await,
        }
    }
    let mut endpoints = vec![endpoint];
    endpoints.extend(console.map(|(browsers, _)| browsers));
    for endpoint in &endpoints {
        endpoint.close(link::CLOSE_GOING_AWAY.into(), b"relay shutting down");
    }
    let _ = closed.send(());
    let _ = tokio::time::timeout(grace, async {
        for endpoint in &endpoints {
            endpoint.wait_idle().await;
        }
    })
    .await;
    deliveries.abort();
    probe.abort();
}

/// The shard's endpoint on its socket of the voice port and, for the shard
/// that serves it, the console port's endpoint with what renews its
/// certificate.
fn make_endpoints(
    config: quinn::EndpointConfig,
    server: quinn::ServerConfig,
    socket: UdpSocket,
    console: Option<ConsoleParts>,
) -> std::io::Result<(quinn::Endpoint, Option<(quinn::Endpoint, Renewal)>)> {
    let runtime = Arc::new(quinn::TokioRuntime);
    let terminals = quinn::Endpoint::new(config.clone(), Some(server), socket, runtime.clone())?;
    let Some(console) = console else {
        return Ok((terminals, None));
    };
    let browsers = quinn::Endpoint::new(config, Some(console.server), console.socket, runtime)?;
    let renewal = Renewal {
        port: console.port,
        admission: console.admission,
    };
    Ok((terminals, Some((browsers, renewal))))
}

/// What the console port's certificate is renewed with.
#[derive(Clone)]
struct Renewal {
    port: Arc<BrowserPort>,
    admission: AdmissionSettings,
}

/// Gives the console port a new certificate every [`ROTATE_EVERY`], so
/// browsers always find one they accept by hash (valid less than 14 days).
/// A failure is logged and tried again at the next turn: the certificate in
/// use stays valid for a week more.
async fn renew_certificates(endpoint: quinn::Endpoint, renewal: Renewal) {
    let mut turns =
        tokio::time::interval_at(tokio::time::Instant::now() + ROTATE_EVERY, ROTATE_EVERY);
    loop {
        turns.tick().await;
        let renewed = renewal.port.renew(|mut server| {
            renewal.admission.apply_to(&mut server);
            endpoint.set_server_config(Some(server));
        });
        match renewed {
            Ok(()) => tracing::info!(
                sha256 = %renewal.port.certificate_sha256(),
                "console port certificate renewed"
            ),
            Err(error) => tracing::error!(%error, "renewing the console port certificate"),
        }
    }
}

/// Accepts connections until the relay's shutdown token is cancelled,
/// then refuses new ones and waits (up to `grace`) for the sessions to tell
/// their terminals and end. Each attempt passes admission first
/// ([`Gate::admit`]): it is let in with an unauthenticated slot, waits for
/// one, is asked to prove its address, or is refused.
async fn accept(
    endpoint: &quinn::Endpoint,
    shared: &Arc<SessionContext>,
    admission: &Arc<Gate>,
    shard: u8,
    grace: Duration,
    door: Door,
) {
    let shutdown = shared.shutdown.clone();
    let sessions = TaskTracker::new();
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            () = shutdown.cancelled() => None,
        };
        let Some(incoming) = incoming else { break };
        let Some(entry) = admission.admit(incoming) else {
            continue;
        };
        let context = shared.clone();
        let stop = shutdown.clone();
        sessions.spawn(async move {
            let admitted = tokio::select! {
                // Boxed: the wait for a slot is over long before the
                // session ends, and so is its state.
                admitted = Box::pin(entry.admitted()) => admitted,
                () = stop.cancelled() => None,
            };
            if let Some(admitted) = admitted {
                session::serve(context, admitted, shard, door).await;
            }
        });
    }
    endpoint.set_server_config(None);
    sessions.close();
    if tokio::time::timeout(grace, sessions.wait()).await.is_err() {
        tracing::warn!(shard, "some sessions did not end in time; closing them");
    }
}
