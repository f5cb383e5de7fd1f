//! The fleet: the demo district's terminals the soak logs in, which of them
//! are online, and counters of everything they did. Each terminal is a real
//! [`ptt_client::Client`] on its own loopback UDP socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ptt_client::{Client, ClientConfig, TalkEnd, Trust};
use ptt_proto::pb;
use rand::Rng;
use rand::seq::IndexedRandom;

/// Voice frames per second of a talker (20 ms Opus frames).
pub(crate) const FPS: u32 = 50;

/// Everything the fleet did, counted as it happens.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) logins: AtomicU64,
    pub(crate) login_failures: AtomicU64,
    pub(crate) logouts: AtomicU64,
    pub(crate) presses: AtomicU64,
    /// Presses the floor was granted to (a burst in the call log each).
    pub(crate) bursts: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) denied: AtomicU64,
    pub(crate) revoked: AtomicU64,
    pub(crate) withdrawn: AtomicU64,
    pub(crate) cut: AtomicU64,
    pub(crate) frames_sent: AtomicU64,
    pub(crate) alerts: AtomicU64,
    pub(crate) alert_failures: AtomicU64,
    pub(crate) acks: AtomicU64,
    pub(crate) ack_failures: AtomicU64,
    pub(crate) all_calls: AtomicU64,
    pub(crate) locations: AtomicU64,
    pub(crate) location_failures: AtomicU64,
    pub(crate) garbage_datagrams: AtomicU64,
    pub(crate) garbage_control: AtomicU64,
    pub(crate) garbage_hello_not_closed: AtomicU64,
    pub(crate) garbage_sessions_closed: AtomicU64,
    pub(crate) garbage_login_failures: AtomicU64,
}

impl Counts {
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The terminals of the demo district the soak uses, and who is online.
pub(crate) struct Fleet {
    server: SocketAddr,
    cert: PathBuf,
    online: Mutex<HashMap<u32, Client>>,
    pub(crate) counts: Counts,
}

impl Fleet {
    pub(crate) fn new(server: SocketAddr, cert: PathBuf) -> Self {
        Self {
            server,
            cert,
            online: Mutex::new(HashMap::new()),
            counts: Counts::default(),
        }
    }

    fn online(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Client>> {
        self.online
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Terminals online now.
    pub(crate) fn online_count(&self) -> usize {
        self.online().len()
    }

    /// The client of `id` if it is online.
    pub(crate) fn client(&self, id: u32) -> Option<Client> {
        self.online().get(&id).cloned()
    }

    /// A random online terminal among `candidates` that `accept`s.
    pub(crate) fn pick(
        &self,
        candidates: &[u32],
        rng: &mut impl Rng,
        accept: impl Fn(&Client) -> bool,
    ) -> Option<(u32, Client)> {
        let online = self.online();
        let ready: Vec<(u32, &Client)> = candidates
            .iter()
            .filter_map(|id| online.get(id).map(|c| (*id, c)))
            .filter(|(_, c)| accept(c))
            .collect();
        ready.choose(rng).map(|(id, c)| (*id, (*c).clone()))
    }

    /// Logs `id` in with its demo secret, on a socket of its own bound to
    /// 127.0.0.1; true if it is online now.
    pub(crate) async fn login(&self, id: u32) -> bool {
        let mut config = ClientConfig::new(
            self.server,
            Trust::Pinned(self.cert.clone()),
            id,
            format!("demo-{id}"),
        );
        config.quality_report_interval = Some(Duration::from_secs(10));
        let connect = async {
            let endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))
                .map_err(|e| ptt_client::ClientError::Config(e.to_string()))?;
            Client::connect_with_endpoint(config, endpoint).await
        };
        match tokio::time::timeout(Duration::from_secs(15), connect).await {
            Ok(Ok(client)) => {
                self.online().insert(id, client);
                Counts::add(&self.counts.logins, 1);
                true
            }
            Ok(Err(error)) => {
                Counts::add(&self.counts.login_failures, 1);
                eprintln!("soak: login of {id} failed: {error}");
                false
            }
            Err(_) => {
                Counts::add(&self.counts.login_failures, 1);
                eprintln!("soak: login of {id} timed out");
                false
            }
        }
    }

    /// Takes `id` off the online list (no one picks it any more); log it
    /// out with [`Fleet::close`].
    pub(crate) fn take(&self, id: u32) -> Option<Client> {
        self.online().remove(&id)
    }

    /// Logs a taken client out: closes its connection.
    pub(crate) async fn close(&self, client: Client) {
        client.close().await;
        Counts::add(&self.counts.logouts, 1);
    }

    /// Logs `id` out if it is online.
    pub(crate) async fn logout(&self, id: u32) {
        if let Some(client) = self.take(id) {
            self.close(client).await;
        }
    }

    /// Logs every terminal out.
    pub(crate) async fn logout_all(&self) {
        let ids: Vec<u32> = self.online().keys().copied().collect();
        for id in ids {
            self.logout(id).await;
        }
    }

    /// Presses the talk button of `client` in `group`, pushes `frames` real
    /// Opus frames in real time (from `speech`, starting at `offset`) and
    /// releases; counts how it went. Bounded: the release waits at most 15 s.
    pub(crate) async fn talk(
        &self,
        client: &Client,
        press: Press,
        speech: &[Bytes],
        offset: usize,
    ) {
        let c = &self.counts;
        Counts::add(&c.presses, 1);
        let talk = client.press(press.group, press.priority, press.kind);
        let mut tick = tokio::time::interval(Duration::from_secs(1) / FPS);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for i in 0..press.frames {
            tick.tick().await;
            if talk
                .push_frame(speech[(offset + i) % speech.len()].clone())
                .is_err()
                && matches!(talk.state(), ptt_client::TalkState::Ended(_))
            {
                break;
            }
        }
        let Ok(summary) = tokio::time::timeout(Duration::from_secs(15), talk.release()).await
        else {
            Counts::add(&c.cut, 1);
            return;
        };
        if summary.burst.is_some() {
            Counts::add(&c.bursts, 1);
        }
        Counts::add(&c.frames_sent, summary.frames_sent);
        Counts::add(
            match summary.end {
                TalkEnd::Released => &c.released,
                TalkEnd::Denied(_) => &c.denied,
                TalkEnd::Revoked(_) => &c.revoked,
                TalkEnd::Withdrawn => &c.withdrawn,
                TalkEnd::Disconnected | TalkEnd::Failed(_) => &c.cut,
            },
            1,
        );
    }
}

/// One press of the talk button.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Press {
    pub(crate) group: u32,
    pub(crate) priority: pb::Priority,
    pub(crate) kind: pb::FloorKind,
    /// 20 ms frames to push from the press on.
    pub(crate) frames: usize,
}

impl Press {
    /// An ordinary press of `seconds` of speech.
    pub(crate) fn normal(group: u32, seconds: f64) -> Self {
        Self {
            group,
            priority: pb::Priority::Normal,
            kind: pb::FloorKind::Normal,
            frames: (seconds * f64::from(FPS)) as usize,
        }
    }
}
