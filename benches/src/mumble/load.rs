//! One load run against a local mumble-server: channels of listeners, one
//! talker per channel sending Opus-sized frames at a fixed rate over UDP,
//! measured as `ptt load` measures the relay (the server's CPU while the
//! talkers talk, frames heard, one-way latency to the listener's socket).

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use ptt_cli::load::{
    Latency, Percentiles, clock_ticks, cpu_seconds, recv_stamped, thread_cpu_seconds, unix_us,
};
use tokio::io::Interest;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;

use super::client::{self, Voice};
use super::server::{MumbleServer, SUPERUSER_PASSWORD};
use super::voice;

/// Log-ins at once: the server takes them one by one anyway.
const LOG_INS_AT_ONCE: usize = 32;
/// How long everyone may take to log in and join.
const SETUP_WITHIN: Duration = Duration::from_secs(300);
/// How long listeners keep reading after the last frame was sent.
const DRAIN: Duration = Duration::from_millis(500);

/// What to run.
#[derive(Debug, Clone)]
pub struct MumbleLoad {
    /// Channels, each with one talker.
    pub channels: usize,
    /// Listeners in each channel.
    pub listeners_per_channel: usize,
    /// Frames per second per talker.
    pub fps: u32,
    /// How long the talkers talk.
    pub duration: Duration,
    /// The server pinned to CPU 0 (`taskset`).
    pub pinned: bool,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct MumbleRun {
    /// Frames the talkers sent.
    pub frames_sent: u64,
    /// Frames the listeners should have heard.
    pub frames_expected: u64,
    /// Frames the listeners heard.
    pub frames_received: u64,
    /// The server's CPU while the talkers talked (and the listeners drained).
    pub server_cpu_s: f64,
    /// How long the talkers talked.
    pub wall: Duration,
    /// One-way latency from the talker's send to the listener's socket
    /// (kernel receive time).
    pub one_way_socket_ms: Option<Percentiles>,
    /// The generator's CPU in the same time (talkers and listeners).
    pub generator_cpu_s: f64,
    /// Packets the kernel dropped at the listeners' sockets.
    pub socket_drops: u64,
    /// Packets that did not decrypt or parse.
    pub bad_packets: u64,
}

impl MumbleRun {
    /// The server's CPU per frame heard, µs.
    #[must_use]
    pub fn cpu_per_forward_us(&self) -> f64 {
        self.server_cpu_s * 1e6 / self.frames_received.max(1) as f64
    }

    /// Frames not heard, percent.
    #[must_use]
    pub fn loss_percent(&self) -> f64 {
        let expected = self.frames_expected.max(1) as f64;
        100.0 * (1.0 - self.frames_received as f64 / expected).max(0.0)
    }
}

/// The talk window both threads follow.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// Runs `load` against a mumble-server started from `binary`, the talkers
/// sending `frames` round-robin.
pub fn run(binary: &Path, load: &MumbleLoad, frames: &[Bytes]) -> anyhow::Result<MumbleRun> {
    if load.channels == 0 || load.listeners_per_channel == 0 || load.fps == 0 || frames.is_empty() {
        bail!("a Mumble run needs channels, listeners, a frame rate and frames");
    }
    let users = load.channels * (load.listeners_per_channel + 1);
    let server = MumbleServer::start(binary, users, load.pinned)?;
    let channels = make_channels(&server, load.channels)?;

    let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
    let (listen_go, listen_go_rx) = oneshot::channel::<Window>();
    let (talk_go, talk_go_rx) = oneshot::channel::<Window>();
    let listeners = {
        let (addr, channels, ready) = (server.addr(), channels.clone(), ready_tx.clone());
        let per_channel = load.listeners_per_channel;
        std::thread::spawn(move || {
            on_own_runtime(listen_lane(
                addr,
                channels,
                per_channel,
                ready,
                listen_go_rx,
            ))
        })
    };
    let talkers = {
        let (addr, channels, ready) = (server.addr(), channels.clone(), ready_tx);
        let (frames, fps, duration) = (frames.to_vec(), load.fps, load.duration);
        std::thread::spawn(move || {
            on_own_runtime(talk_lane(
                addr, channels, frames, fps, duration, ready, talk_go_rx,
            ))
        })
    };
    for _ in 0..2 {
        ready_rx
            .recv_timeout(SETUP_WITHIN)
            .context("the Mumble users did not log in in time")??;
    }

    let ticks = clock_ticks();
    let cpu_start = cpu_seconds(server.pid(), ticks).context("the server's CPU")?;
    let start = Instant::now() + Duration::from_millis(100);
    let window = Window {
        start,
        end: start + load.duration,
    };
    let _ = listen_go.send(window);
    let _ = talk_go.send(window);
    let talked = join(talkers)?;
    let heard = join(listeners)?;
    let cpu_end = cpu_seconds(server.pid(), ticks).context("the server's CPU")?;
    Ok(MumbleRun {
        frames_sent: talked.frames_sent,
        frames_expected: talked.frames_sent * load.listeners_per_channel as u64,
        frames_received: heard.received,
        server_cpu_s: cpu_end - cpu_start,
        wall: talked.wall,
        one_way_socket_ms: heard.latency.summary(),
        generator_cpu_s: talked.cpu_s + heard.cpu_s,
        socket_drops: heard.socket_drops,
        bad_packets: heard.bad,
    })
}

fn on_own_runtime<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

fn join<T>(thread: std::thread::JoinHandle<anyhow::Result<T>>) -> anyhow::Result<T> {
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("a Mumble load thread panicked"))?
}

/// The channels' ids: the root channel alone, or `count` channels the
/// SuperUser makes.
fn make_channels(server: &MumbleServer, count: usize) -> anyhow::Result<Vec<u32>> {
    if count == 1 {
        return Ok(vec![0]);
    }
    on_own_runtime(async {
        let tls = client::tls_connector();
        let mut admin =
            client::log_in(server.addr(), &tls, "SuperUser", Some(SUPERUSER_PASSWORD)).await?;
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            ids.push(admin.create_channel(&format!("group-{i}")).await?);
        }
        Ok(ids)
    })
}

/// Logs in `name`, moves it to `channel` and opens its voice; its control
/// connection is drained on this runtime from then on.
async fn user(
    addr: std::net::SocketAddr,
    tls: tokio_rustls::TlsConnector,
    name: String,
    channel: u32,
) -> anyhow::Result<Voice> {
    let mut user = client::log_in(addr, &tls, &name, None)
        .await
        .with_context(|| format!("logging in {name}"))?;
    if channel != 0 {
        user.join(channel)
            .await
            .with_context(|| format!("moving {name}"))?;
    }
    let (voice, control) = user
        .open_voice()
        .await
        .with_context(|| format!("{name}'s UDP"))?;
    tokio::spawn(client::drain(control));
    Ok(voice)
}

/// Tells the coordinator how a lane's set-up went and, if it went well,
/// waits for the talk window.
async fn ready_then_go<T>(
    set_up: anyhow::Result<T>,
    ready: &mpsc::Sender<anyhow::Result<()>>,
    go: oneshot::Receiver<Window>,
) -> anyhow::Result<(T, Window)> {
    match set_up {
        Ok(done) => {
            let _ = ready.send(Ok(()));
            Ok((done, go.await?))
        }
        Err(error) => {
            let _ = ready.send(Err(anyhow::anyhow!("{error:#}")));
            Err(error)
        }
    }
}

/// What the listeners heard.
#[derive(Default)]
struct Heard {
    received: u64,
    latency: Latency,
    socket_drops: u64,
    bad: u64,
    cpu_s: f64,
}

async fn listen_lane(
    addr: std::net::SocketAddr,
    channels: Vec<u32>,
    per_channel: usize,
    ready: mpsc::Sender<anyhow::Result<()>>,
    go: oneshot::Receiver<Window>,
) -> anyhow::Result<Heard> {
    let tls = client::tls_connector();
    let gate = std::sync::Arc::new(Semaphore::new(LOG_INS_AT_ONCE));
    let mut setup = JoinSet::new();
    for (c, &channel) in channels.iter().enumerate() {
        for i in 0..per_channel {
            let (gate, tls) = (gate.clone(), tls.clone());
            setup.spawn(async move {
                let _turn = gate.acquire_owned().await?;
                user(addr, tls, format!("listener-{c}-{i}"), channel).await
            });
        }
    }
    let set_up = async {
        let mut voices = Vec::new();
        while let Some(done) = setup.join_next().await {
            voices.push(done??);
        }
        Ok(voices)
    };
    let (voices, window) = ready_then_go(set_up.await, &ready, go).await?;
    let ticks = clock_ticks();
    let cpu_start = thread_cpu_seconds(ticks).unwrap_or(0.0);
    let mut listening = JoinSet::new();
    for voice in voices {
        listening.spawn(listen(voice, window.end + DRAIN));
    }
    let mut heard = Heard::default();
    while let Some(one) = listening.join_next().await {
        let one = one?;
        heard.received += one.received;
        heard.latency.add(&one.latency);
        heard.socket_drops += one.socket_drops;
        heard.bad += one.bad;
    }
    heard.cpu_s = thread_cpu_seconds(ticks).unwrap_or(0.0) - cpu_start;
    Ok(heard)
}

/// One listener reads its socket until `until`.
async fn listen(mut voice: Voice, until: Instant) -> Heard {
    let mut heard = Heard::default();
    let mut buf = [0u8; 2048];
    let mut plain = Vec::with_capacity(2048);
    loop {
        let readable = tokio::time::timeout_at(until.into(), voice.socket.readable()).await;
        if !matches!(readable, Ok(Ok(()))) {
            break;
        }
        let read = match voice
            .socket
            .try_io(Interest::READABLE, || recv_stamped(&voice.socket, &mut buf))
        {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        };
        if let Some(dropped) = read.overflowed {
            heard.socket_drops = dropped;
        }
        if voice.crypt.decrypt(&buf[..read.len], &mut plain).is_err() {
            heard.bad += 1;
            continue;
        }
        if voice::is_ping(&plain) {
            continue;
        }
        let Some(sent_us) = voice::heard(&plain).and_then(|h| sent_at(h.frame)) else {
            heard.bad += 1;
            continue;
        };
        heard.received += 1;
        if read.stamp_us > 0 {
            heard
                .latency
                .record_us(read.stamp_us.saturating_sub(sent_us));
        }
    }
    heard
}

/// What the talkers did.
struct Talked {
    frames_sent: u64,
    wall: Duration,
    cpu_s: f64,
}

async fn talk_lane(
    addr: std::net::SocketAddr,
    channels: Vec<u32>,
    frames: Vec<Bytes>,
    fps: u32,
    duration: Duration,
    ready: mpsc::Sender<anyhow::Result<()>>,
    go: oneshot::Receiver<Window>,
) -> anyhow::Result<Talked> {
    let tls = client::tls_connector();
    let set_up = async {
        let mut talkers = Vec::with_capacity(channels.len());
        for (c, &channel) in channels.iter().enumerate() {
            talkers.push((
                user(addr, tls.clone(), format!("talker-{c}"), channel).await?,
                0u32,
            ));
        }
        anyhow::Ok(talkers)
    };
    let (mut talkers, window) = ready_then_go(set_up.await, &ready, go).await?;
    let ticks = clock_ticks();
    let cpu_start = thread_cpu_seconds(ticks).unwrap_or(0.0);
    let total = u64::from(fps) * duration.as_secs().max(1);
    let mut sent = 0u64;
    let mut frame = Vec::with_capacity(2048);
    for tick in 0..total {
        let at = window.start + Duration::from_secs(tick) / fps;
        tokio::time::sleep_until(at.into()).await;
        let source = &frames[tick as usize % frames.len()];
        for (talker, sequence) in &mut talkers {
            stamped(source, &mut frame);
            let plain = voice::opus_packet(*sequence, &frame, tick + 1 == total);
            *sequence += 1;
            if talker
                .socket
                .send(&talker.crypt.encrypt(&plain))
                .await
                .is_ok()
            {
                sent += 1;
            }
        }
    }
    Ok(Talked {
        frames_sent: sent,
        wall: window.start.elapsed(),
        cpu_s: thread_cpu_seconds(ticks).unwrap_or(0.0) - cpu_start,
    })
}

/// `source` with its first 8 bytes replaced by the send time (unix µs),
/// which the server forwards untouched.
fn stamped(source: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(source);
    out.resize(out.len().max(8), 0);
    out[..8].copy_from_slice(&unix_us().to_le_bytes());
}

/// The send time a talker wrote into a frame.
fn sent_at(frame: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(frame.get(..8)?.try_into().ok()?))
}
