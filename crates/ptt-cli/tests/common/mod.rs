//! What the `ptt` command's tests share: a real relay on loopback serving a
//! directory the test writes, the connection options for its terminals,
//! waiting for one event, and (in `calls`) the private call setup.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use ptt_cli::cli::ConnArgs;
use ptt_client::{Client, ClientConfig, Event, Events, Trust};
use ptt_directory::{HashParams, hash_secret};
use ptt_relay::config::Config;
use tempfile::TempDir;

pub(crate) mod calls;

/// How long a test waits for what should happen at once on loopback.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// Every event already received.
pub(crate) fn drain(events: &mut Events) -> Vec<Event> {
    std::iter::from_fn(|| events.try_recv()).collect()
}

/// The first event `pick` accepts, within [`PATIENCE`].
pub(crate) async fn expect<T>(
    events: &mut Events,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Some(event) => {
                    if let Some(found) = pick(&event) {
                        return Ok(found);
                    }
                }
                None => bail!("event stream closed"),
            }
        }
    })
    .await
    .context("expected event did not arrive")?
}

/// Waits until the latest view `ptt monitor` drew (collected in `frames`)
/// satisfies `shows`, within [`PATIENCE`]; returns that view. A wait on what
/// the test wants to see, not a sleep that hopes it is there by then.
pub(crate) async fn until_drawn(
    frames: &std::sync::Mutex<Vec<String>>,
    shows: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let last = frames.lock().expect("lock").last().cloned();
        match last {
            Some(view) if shows(&view) => return Ok(view),
            last if tokio::time::Instant::now() >= deadline => {
                bail!(
                    "the monitor never showed it; last view:\n{}",
                    last.unwrap_or_default()
                )
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The secret of terminal `id` in every test directory.
pub(crate) fn secret(id: u32) -> String {
    format!("secret-{id}")
}

/// A `[[terminal]]` entry with the test secret.
pub(crate) fn terminal_toml(id: u32, name: &str, role: &str, max_priority: &str) -> String {
    let hash = hash_secret(secret(id).as_bytes(), HashParams::LIGHT).expect("hash");
    let mut out = String::new();
    let _ = write!(
        out,
        "[[terminal]]\nid = {id}\nname = \"{name}\"\nrole = \"{role}\"\norganisation = \"Test\"\n\
         secret-hash = \"{hash}\"\nmax-priority = \"{max_priority}\"\n\n"
    );
    out
}

/// A real relay on 127.0.0.1, any port; stopped when dropped.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    pub(crate) cert: PathBuf,
    /// The operations port (`/metrics`).
    pub(crate) ops: SocketAddr,
    stop: Option<Box<dyn FnOnce() + Send>>,
    _dir: TempDir,
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

impl Relay {
    /// The value of one sample of the relay's `/metrics` (its line starts
    /// with `sample`), 0 if absent.
    pub(crate) async fn metric(&self, sample: &str) -> anyhow::Result<f64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.ops).await?;
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.ops
        );
        stream.write_all(request.as_bytes()).await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0.0))
    }

    /// Starts a relay serving `directory` (TOML) from a fresh data dir.
    pub(crate) async fn start(directory: &str) -> anyhow::Result<Self> {
        Self::start_with(directory, |_| {}).await
    }

    /// Starts a relay serving `directory` with its configuration changed by
    /// `tweak` (e.g. short idle timeouts, so a lost terminal is noticed in
    /// a second).
    pub(crate) async fn start_with(
        directory: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("directory.toml");
        std::fs::write(&path, directory)?;
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            listen: "127.0.0.1:0".parse()?,
            ops_listen: "127.0.0.1:0".parse()?,
            console_listen: "127.0.0.1:0".parse()?,
            directory: Some(path),
            ..Config::default()
        };
        tweak(&mut config);
        let relay = ptt_relay::Relay::load(config).await?;
        let addr = relay.local_addr();
        let ops = relay.ops_addr();
        let cert = relay.cert_path().to_owned();
        let token = relay.shutdown_token();
        tokio::spawn(relay.run());
        Ok(Self {
            addr,
            cert,
            ops,
            stop: Some(Box::new(move || token.cancel())),
            _dir: dir,
        })
    }

    /// The `ptt` connection options of terminal `id`.
    pub(crate) fn conn(&self, id: u32) -> ConnArgs {
        ConnArgs {
            server: self.addr.to_string(),
            ca: self.cert.clone(),
            id,
            secret: secret(id),
            connect_timeout: 3.0,
            voice_streams: false,
        }
    }

    /// The client configuration of terminal `id` (defaults otherwise).
    pub(crate) fn config(&self, id: u32) -> ClientConfig {
        ClientConfig::new(self.addr, Trust::Pinned(self.cert.clone()), id, secret(id))
    }

    /// Terminal `id`, logged in.
    pub(crate) async fn client(&self, id: u32) -> anyhow::Result<Client> {
        Client::connect(self.config(id))
            .await
            .with_context(|| format!("login of {id}"))
    }
}

/// A UDP forwarder on 127.0.0.1 between one client and the relay whose
/// wire can be cut and mended: a terminal losing coverage, for real (its
/// QUIC connection times out on both ends), without touching the others.
pub(crate) struct Wire {
    /// Where the client connects instead of the relay.
    pub(crate) addr: SocketAddr,
    /// Client to relay.
    up: Arc<AtomicBool>,
    /// Relay to client.
    down: Arc<AtomicBool>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for Wire {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Wire {
    /// A wire to `relay`, up. One client per wire: the relay sees it from
    /// one fixed port, before and after a cut.
    pub(crate) async fn to(relay: SocketAddr) -> anyhow::Result<Self> {
        let front = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await?);
        let back = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await?);
        back.connect(relay).await?;
        let addr = front.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let down = Arc::new(AtomicBool::new(true));
        let (client_tx, mut client_rx) = tokio::sync::watch::channel(None::<SocketAddr>);
        let outward = {
            let (front, back, up) = (front.clone(), back.clone(), up.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, from)) = front.recv_from(&mut buf).await {
                    client_tx.send_if_modified(|known| {
                        let changed = *known != Some(from);
                        *known = Some(from);
                        changed
                    });
                    if up.load(Ordering::Relaxed) {
                        let _ = back.send(&buf[..n]).await;
                    }
                }
            })
        };
        let inward = {
            let down = down.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                while let Ok(n) = back.recv(&mut buf).await {
                    let client = *client_rx.borrow_and_update();
                    if let (Some(client), true) = (client, down.load(Ordering::Relaxed)) {
                        let _ = front.send_to(&buf[..n], client).await;
                    }
                }
            })
        };
        Ok(Self {
            addr,
            up,
            down,
            tasks: [outward, inward],
        })
    }

    /// Drops every datagram both ways until [`Wire::mend`].
    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::Relaxed);
        self.down.store(false, Ordering::Relaxed);
    }

    /// Drops what the relay sends until [`Wire::mend`]; the client's
    /// datagrams still reach it (the relay thinks the client is there while
    /// the client has lost the relay).
    pub(crate) fn cut_down(&self) {
        self.down.store(false, Ordering::Relaxed);
    }

    /// Forwards again, both ways.
    pub(crate) fn mend(&self) {
        self.up.store(true, Ordering::Relaxed);
        self.down.store(true, Ordering::Relaxed);
    }
}
