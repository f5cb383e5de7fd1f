//! The client library against a real relay on loopback: talking with audio
//! buffered before the grant, login failures with distinct errors, and
//! reconnecting by itself after the relay restarts.

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use common::{PATIENCE, expect, secret};
use ptt_client::{
    Client, ClientConfig, ClientError, Event, Events, FloorOutcome, ReconnectPolicy, TalkEnd,
    TalkError, TalkState, Trust, VoiceFrame,
};
use ptt_proto::pb;
use ptt_relay::config::Config;
use ptt_relay::directory::{HashParams, hash_secret};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// Group every test terminal belongs to.
const DISTRICT: u32 = 10;
/// A second group of terminals 100 and 101.
const SQUAD: u32 = 20;

/// Guards 100..=102 in the district; 100 and 101 also in the squad; 103 is
/// listen-only in the district.
fn directory_toml() -> String {
    let mut out = String::new();
    for id in 100..=103 {
        let hash = hash_secret(secret(id).as_bytes(), HashParams::LIGHT).expect("hash");
        let _ = write!(
            out,
            "[[terminal]]\nid = {id}\nname = \"T{id}\"\nrole = \"guard\"\norganisation = \"Test\"\n\
             secret-hash = \"{hash}\"\nmax-priority = \"normal\"\nemergency = true\n\n"
        );
    }
    let _ = write!(
        out,
        "[[group]]\nid = {DISTRICT}\nname = \"District\"\nkind = \"district\"\n\n"
    );
    for id in 100..=102 {
        let _ = write!(out, "[[group.members]]\nterminal = {id}\n\n");
    }
    out.push_str("[[group.members]]\nterminal = 103\ntalk = false\n\n");
    let _ = write!(
        out,
        "[[group]]\nid = {SQUAD}\nname = \"Squad\"\nkind = \"other\"\n\n"
    );
    for id in 100..=101 {
        let _ = write!(out, "[[group.members]]\nterminal = {id}\n\n");
    }
    out
}

/// A real relay serving [`directory_toml`] from `data`.
struct Relay {
    addr: SocketAddr,
    cert: PathBuf,
    stop: Box<dyn FnOnce() + Send>,
    task: JoinHandle<Result<(), ptt_relay::RelayError>>,
}

impl Relay {
    /// Starts a relay on `listen` (port 0: any) with its state in `data`.
    /// Retries the bind for a while: a restarted relay takes the port of
    /// one that has just stopped.
    async fn start(data: &Path, listen: SocketAddr) -> anyhow::Result<Self> {
        let directory = data.join("directory.toml");
        std::fs::write(&directory, directory_toml())?;
        let deadline = Instant::now() + PATIENCE;
        let relay = loop {
            let config = Config {
                data_dir: data.to_owned(),
                listen,
                ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                directory: Some(directory.clone()),
                idle_timeout: Duration::from_secs(5),
                keep_alive: Duration::from_secs(1),
                ..Config::default()
            };
            match ptt_relay::Relay::load(config).await {
                Ok(relay) => break relay,
                Err(ptt_relay::RelayError::Bind { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(error.into()),
            }
        };
        let addr = relay.local_addr();
        let cert = relay.cert_path().to_owned();
        let token = relay.shutdown_token();
        let task = tokio::spawn(relay.run());
        Ok(Self {
            addr,
            cert,
            stop: Box::new(move || token.cancel()),
            task,
        })
    }

    /// Stops the relay gracefully (terminals get `GoingAway`) and waits.
    async fn stop(self) -> anyhow::Result<()> {
        (self.stop)();
        self.task.await??;
        Ok(())
    }

    fn config(&self, terminal: u32) -> ClientConfig {
        let mut config = ClientConfig::new(
            self.addr,
            Trust::Pinned(self.cert.clone()),
            terminal,
            secret(terminal),
        );
        config.connect_timeout = Duration::from_secs(3);
        config.idle_timeout = Duration::from_secs(5);
        config.keep_alive = Duration::from_secs(1);
        config.reconnect = ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..ReconnectPolicy::default()
        };
        config
    }

    async fn client(&self, terminal: u32) -> anyhow::Result<Client> {
        Client::connect(self.config(terminal))
            .await
            .with_context(|| format!("login of {terminal}"))
    }
}

/// A 20 ms SILK wideband Opus packet (TOC config 9, code 0) tagged with `n`.
fn opus_frame(n: u16) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(9 << 3);
    buf.put_u16(n);
    buf.resize(60, 0x5a);
    buf.freeze()
}

/// The tag of a frame built by [`opus_frame`]; `None` for the end marker.
fn tag(frame: &VoiceFrame) -> Option<u16> {
    (frame.payload.len() >= 3).then(|| u16::from_be_bytes([frame.payload[1], frame.payload[2]]))
}

/// What a listener heard of one burst in a group.
#[derive(Debug, Default)]
struct Heard {
    /// `FloorTaken` events: (holder, burst).
    taken: Vec<(u32, u32)>,
    /// Voice frames, up to and including the one flagged last.
    frames: Vec<VoiceFrame>,
    /// The `FloorIdle` that ended the burst: (burst, reason).
    idle: Option<(u32, pb::FloorIdleReason)>,
}

/// Listens to `group` until `talker`'s last frame and the following
/// `FloorIdle` were heard. Voice (datagrams) and floor events (control
/// stream) travel separately, so frames may come before `FloorTaken`: both
/// are collected in one pass.
async fn listen_to_burst(events: &mut Events, group: u32, talker: u32) -> anyhow::Result<Heard> {
    let mut heard = Heard::default();
    while heard.idle.is_none() || !heard.frames.last().is_some_and(|f| f.last) {
        let event = expect(events, |e| match e {
            Event::Voice(f) if f.group == group && f.talker == talker => Some(e.clone()),
            Event::FloorTaken {
                group: g, holder, ..
            } if *g == group && *holder == talker => Some(e.clone()),
            Event::FloorIdle { group: g, .. } if *g == group => Some(e.clone()),
            _ => None,
        })
        .await?;
        match event {
            Event::Voice(frame) => heard.frames.push(frame),
            Event::FloorTaken { holder, burst, .. } => heard.taken.push((holder, burst)),
            // An idle before the talker's burst began ends someone else's.
            Event::FloorIdle { burst, reason, .. }
                if !heard.taken.is_empty() || !heard.frames.is_empty() =>
            {
                heard.idle = Some((burst, reason));
            }
            _ => {}
        }
    }
    Ok(heard)
}

/// Checks a heard burst: one talker, sequences 0.. in order, the tags of
/// the pushed frames in order, the last frame flagged.
fn assert_burst(frames: &[VoiceFrame], talker: u32, pushed: u16) {
    assert!(
        frames.iter().all(|f| f.talker == talker),
        "talker stamped by the relay"
    );
    let burst = frames[0].burst;
    assert!(frames.iter().all(|f| f.burst == burst), "one burst");
    let sequences: Vec<u16> = frames.iter().map(|f| f.sequence).collect();
    let expected: Vec<u16> = (0..u16::try_from(frames.len()).expect("short burst")).collect();
    assert_eq!(
        sequences, expected,
        "sequence from 0, in order, none missing"
    );
    let tags: Vec<u16> = frames.iter().filter_map(tag).collect();
    assert_eq!(
        tags,
        (0..pushed).collect::<Vec<_>>(),
        "every pushed frame, none clipped"
    );
    assert!(frames.last().is_some_and(|f| f.last), "last frame flagged");
    assert!(
        frames.len() <= usize::from(pushed) + 1,
        "at most one end marker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_pushed_before_the_grant_are_heard_in_order() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let listener = relay.client(101).await?;
    let mut heard = listener.events();
    let talker = relay.client(100).await?;
    assert_eq!(
        talker.joined(),
        vec![DISTRICT, SQUAD],
        "auto-joined at log-in"
    );

    // Speech starts at the press, before the relay has answered.
    let talk = talker.press(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal);
    for n in 0..5 {
        talk.push_frame(opus_frame(n))?;
    }
    let grant = talk.granted().await?;
    for n in 5..12 {
        talk.push_frame(opus_frame(n))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let summary = talk.release().await;
    assert_eq!(summary.end, TalkEnd::Released);
    assert_eq!(summary.burst, Some(grant.burst));
    assert_eq!(summary.frames_dropped, 0);

    let heard = listen_to_burst(&mut heard, DISTRICT, 100).await?;
    assert_eq!(heard.taken, vec![(100, grant.burst)]);
    assert_burst(&heard.frames, 100, 12);
    assert_eq!(heard.frames[0].burst, grant.burst);
    assert_eq!(
        heard.idle,
        Some((grant.burst, pb::FloorIdleReason::Released))
    );
    assert!(listener.stats().voice_frames_received >= 12);
    let report = listener
        .quality()
        .take_report(Duration::from_secs(1))
        .context("report")?;
    assert_eq!(report.groups[0].frames_lost, 0);
    listener.send_quality_report(report).await?;

    talker.close().await;
    listener.close().await;
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_talk_sends_its_buffered_audio_when_granted() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let holder = relay.client(102).await?;
    let listener = relay.client(101).await?;
    let mut heard = listener.events();
    let talker = relay.client(100).await?;
    let outcome = holder
        .request_floor(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal)
        .await?;
    assert!(
        matches!(outcome, FloorOutcome::Granted { .. }),
        "{outcome:?}"
    );

    let talk = talker.press(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal);
    for n in 0..10 {
        talk.push_frame(opus_frame(n))?;
    }
    let deadline = Instant::now() + PATIENCE;
    while !matches!(talk.state(), TalkState::Queued { position: 1, .. }) {
        assert!(Instant::now() < deadline, "not queued: {:?}", talk.state());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    holder.release(DISTRICT).await?;
    let grant = talk.granted().await?;
    talk.push_frame(opus_frame(10))?;
    let summary = talk.release().await;
    assert_eq!(
        (summary.end, summary.frames_dropped),
        (TalkEnd::Released, 0)
    );

    let heard = listen_to_burst(&mut heard, DISTRICT, 100).await?;
    // The holder sent no voice, so the first burst heard is the talker's.
    assert_eq!(heard.frames[0].burst, grant.burst);
    assert_burst(&heard.frames, 100, 11);
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_talk_discards_its_audio_and_says_why() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let listen_only = relay.client(103).await?;
    let talk = listen_only.press(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal);
    // The denial may already be back; either way this frame is never sent.
    let early = talk.push_frame(opus_frame(0));
    assert!(
        matches!(early, Ok(()) | Err(TalkError::Ended(TalkEnd::Denied(_)))),
        "{early:?}"
    );
    let refused = talk.granted().await;
    assert_eq!(
        refused,
        Err(TalkError::Ended(TalkEnd::Denied(
            pb::FloorDenyReason::ListenOnly
        )))
    );
    assert!(matches!(
        talk.push_frame(opus_frame(1)),
        Err(TalkError::Ended(TalkEnd::Denied(_)))
    ));
    let summary = talk.release().await;
    assert_eq!(summary.frames_sent, 0);
    assert_eq!(
        summary.frames_dropped,
        u64::from(early.is_ok()),
        "buffered audio discarded"
    );
    // The raw API says the same; requests about a foreign group are refused.
    let outcome = listen_only
        .request_floor(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal)
        .await?;
    assert_eq!(
        outcome,
        FloorOutcome::Denied {
            reason: pb::FloorDenyReason::ListenOnly
        }
    );
    let error = listen_only.join(SQUAD).await.expect_err("not a member");
    assert!(
        matches!(error, ClientError::NotAllowed { group: SQUAD, .. }),
        "{error:?}"
    );
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_join_leave_and_reports() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    // Trusting the relay's certificate as a CA (checked against its name)
    // works as well as pinning it.
    let mut config = relay.config(100);
    config.trust = Trust::Ca(relay.cert.clone());
    let client = Client::connect(config).await?;
    let rtt = client.ping().await?;
    assert!(rtt < Duration::from_secs(1), "{rtt:?}");
    client.leave(SQUAD).await?;
    assert_eq!(client.joined(), vec![DISTRICT]);
    let joined = client.join(SQUAD).await?;
    assert_eq!(joined.group.map(|g| g.group_id), Some(SQUAD));
    assert_eq!(client.joined(), vec![DISTRICT, SQUAD]);
    client
        .send_location(pb::LocationReport {
            latitude_deg: 31.2,
            longitude_deg: 121.5,
            ..Default::default()
        })
        .await?;
    client
        .send_status(pb::StatusMessage {
            // This directory has no status code table: text only.
            code: 0,
            text: "on scene".into(),
            target: Some(pb::status_message::Target::GroupId(DISTRICT)),
            ..Default::default()
        })
        .await?;
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_have_distinct_errors() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;

    let mut wrong_secret = relay.config(100);
    wrong_secret.secret = b"guess".to_vec();
    let error = Client::connect(wrong_secret).await.expect_err("refused");
    assert_eq!(error, ClientError::AuthFailed);

    // Another relay's certificate (generated in another data directory).
    let other: TempDir = tempfile::tempdir()?;
    let identity = ptt_relay::tls::Identity::load_or_generate(other.path())?;
    let mut wrong_cert = relay.config(100);
    wrong_cert.trust = Trust::Pinned(identity.cert_path.clone());
    let error = Client::connect(wrong_cert).await.expect_err("refused");
    assert!(
        matches!(error, ClientError::CertificateNotTrusted(_)),
        "{error:?}"
    );

    // Nobody answers on this port: a bound UDP socket that never replies.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let mut unreachable = relay.config(100);
    unreachable.server = silent.local_addr()?;
    unreachable.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let error = Client::connect(unreachable).await.expect_err("refused");
    assert!(
        matches!(error, ClientError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // A missing certificate file names the file.
    let mut missing = relay.config(100);
    missing.trust = Trust::Pinned(data.path().join("nope.pem"));
    let error = Client::connect(missing).await.expect_err("refused");
    assert!(
        matches!(error, ClientError::CertificateFile { .. }),
        "{error:?}"
    );

    // The right credentials still work.
    relay.client(100).await?;
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_relay_restarts_and_can_talk() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = relay.addr;
    let client = relay.client(100).await?;
    let mut events = client.events();
    // The user left the squad: a reconnect must not bring it back.
    client.leave(SQUAD).await?;
    assert!(client.session().is_some());

    relay.stop().await?;
    let will_reconnect = expect(&mut events, |e| match e {
        Event::Disconnected { will_reconnect, .. } => Some(*will_reconnect),
        _ => None,
    })
    .await?;
    assert!(will_reconnect);
    assert!(!client.is_connected());
    assert_eq!(client.ping().await, Err(ClientError::Disconnected));

    let relay = Relay::start(data.path(), addr).await?;
    let groups = expect(&mut events, |e| match e {
        Event::Reconnected { groups, .. } => Some(groups.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(groups, vec![DISTRICT], "rejoined as before, squad left");
    assert_eq!(client.joined(), vec![DISTRICT]);
    assert!(client.is_connected());
    assert_eq!(client.stats().reconnects, 1);

    // And it can talk again.
    let listener = relay.client(101).await?;
    let mut heard = listener.events();
    let talk = client.press(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal);
    for n in 0..3 {
        talk.push_frame(opus_frame(n))?;
    }
    talk.granted().await?;
    let summary = talk.release().await;
    assert_eq!(summary.end, TalkEnd::Released);
    let heard = listen_to_burst(&mut heard, DISTRICT, 100).await?;
    assert_burst(&heard.frames, 100, 3);
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_taken_over_by_another_login_does_not_fight_back() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let first = relay.client(100).await?;
    let mut events = first.events();
    let second = relay.client(100).await?;
    // The relay sends GoingAway(SESSION_REPLACED) and closes with code 4 at
    // once, so the GoingAway itself may be lost; the close code is not.
    let will_reconnect = expect(&mut events, |e| match e {
        Event::Disconnected { will_reconnect, .. } => Some(*will_reconnect),
        _ => None,
    })
    .await?;
    assert!(
        !will_reconnect,
        "reconnecting would throw the new session out"
    );
    assert!(matches!(first.ping().await, Err(ClientError::Closed(_))));
    // The new session is undisturbed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.ping().await?;
    assert!(second.is_connected());
    relay.stop().await
}
