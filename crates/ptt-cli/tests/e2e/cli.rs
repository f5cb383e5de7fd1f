//! The `ptt` command against a real relay on loopback: two terminals
//! exchange real Opus audio (talk → relay → jitter buffer → decoder → WAV)
//! and the binary reports unreachable relays and wrong secrets as one line.

use crate::common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::Context;
use common::{Relay, secret};
use ptt_cli::cli::ConnArgs;
use ptt_cli::cli::alert::{self, AlertArgs};
use ptt_cli::cli::listen::{self, ListenArgs};
use ptt_cli::cli::monitor;
use ptt_cli::cli::talk::{self, TalkArgs, TalkPriority};
use ptt_client::codec::signal;
use ptt_directory::{HashParams, hash_secret};

/// The group both terminals are in.
const GROUP: u32 = 10;
const TALKER: u32 = 100;
const LISTENER: u32 = 101;
/// A control-room console, member of the group.
const DISPATCHER: u32 = 1;

/// Samples per second of every WAV here.
const RATE: usize = 16_000;

/// Lowest SNR accepted between the sent and the heard audio. Measured on
/// this signal (3 s, seed 42) over loopback: 8.4 dB at a delay of 6.4 ms
/// (the Opus encoder's look-ahead; the jitter buffer adds wall-clock delay,
/// not samples), as the codec alone gives (~8 dB in ptt-client's codec
/// tests). The path is deterministic without loss; the margin is for a
/// concealed frame on a busy machine. Frames out of order, a decoder fed
/// another stream or a wrong sample format drop it below 0 dB.
const MIN_SNR_DB: f64 = 6.0;

fn directory_toml() -> String {
    let mut out = String::new();
    for id in [TALKER, LISTENER] {
        let hash = hash_secret(secret(id).as_bytes(), HashParams::LIGHT).expect("hash");
        let _ = write!(
            out,
            "[[terminal]]\nid = {id}\nname = \"T{id}\"\nrole = \"guard\"\norganisation = \"Test\"\n\
             secret-hash = \"{hash}\"\nmax-priority = \"normal\"\nemergency = true\n\n"
        );
    }
    let hash = hash_secret(secret(DISPATCHER).as_bytes(), HashParams::LIGHT).expect("hash");
    let _ = write!(
        out,
        "[[terminal]]\nid = {DISPATCHER}\nname = \"Console\"\nrole = \"dispatcher\"\n\
         organisation = \"Police\"\nsecret-hash = \"{hash}\"\nmax-priority = \"dispatcher\"\n\n"
    );
    let _ = write!(
        out,
        "[[group]]\nid = {GROUP}\nname = \"District\"\nkind = \"district\"\nall-call = true\n\n"
    );
    for id in [TALKER, LISTENER, DISPATCHER] {
        let _ = write!(out, "[[group.members]]\nterminal = {id}\n\n");
    }
    out
}

fn write_wav(path: &Path, pcm: &[i16]) -> anyhow::Result<()> {
    listen::write_wav(path, pcm)
}

fn read_wav(path: &Path) -> anyhow::Result<Vec<i16>> {
    let mut reader = hound::WavReader::open(path)?;
    assert_eq!(reader.spec().sample_rate, 16_000);
    assert_eq!(reader.spec().channels, 1);
    Ok(reader.samples::<i16>().collect::<Result<_, _>>()?)
}

/// SNR (dB) of `heard` against `sent` delayed by `lag` samples, over the
/// samples both cover.
fn snr_at(sent: &[i16], heard: &[i16], lag: usize) -> f64 {
    let n = sent.len().min(heard.len().saturating_sub(lag));
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for i in 0..n {
        let s = f64::from(sent[i]);
        let e = f64::from(heard[i + lag]) - s;
        signal += s * s;
        noise += e * e;
    }
    10.0 * (signal / noise.max(1.0)).log10()
}

/// The best SNR over delays of 0..=200 ms, and that delay in samples.
fn best_snr(sent: &[i16], heard: &[i16]) -> (f64, usize) {
    (0..=RATE / 5)
        .map(|lag| (snr_at(sent, heard, lag), lag))
        .fold(
            (f64::NEG_INFINITY, 0),
            |best, x| if x.0 > best.0 { x } else { best },
        )
}

/// Guards the whole audio path of `ptt talk` and `ptt listen`: the talker's
/// frames are paced, buffered until the grant, relayed, jitter-buffered,
/// decoded and written, and what comes out is the same speech.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_and_listen_exchange_audio() -> anyhow::Result<()> {
    exchange_audio(false).await
}

/// The same with both `ptt talk` and `ptt listen` on `--voice-streams`
/// (proto/voice.md §4): the speech arrives just as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_and_listen_exchange_audio_on_voice_streams() -> anyhow::Result<()> {
    exchange_audio(true).await
}

async fn exchange_audio(voice_streams: bool) -> anyhow::Result<()> {
    let relay = Relay::start(&directory_toml()).await?;
    let conn = |id| ConnArgs {
        voice_streams,
        ..relay.conn(id)
    };
    let dir = tempfile::tempdir()?;
    let sent_path = dir.path().join("sent.wav");
    let heard_path = dir.path().join("heard.wav");
    let sent = signal::speech_like(3.0, 42);
    write_wav(&sent_path, &sent)?;

    let listener = conn(LISTENER).connect().await?;
    listener.join(GROUP).await?;
    let listen_args = ListenArgs {
        conn: conn(LISTENER),
        group: GROUP,
        wav: Some(heard_path.clone()),
        seconds: Some(30.0),
        bursts: Some(1),
    };
    let listening = tokio::spawn(async move {
        let report = listen::run(&listener, &listen_args, std::future::pending()).await;
        listener.close().await;
        report
    });

    let talker = conn(TALKER).connect().await?;
    let talk_args = TalkArgs {
        conn: conn(TALKER),
        group: GROUP,
        wav: Some(sent_path),
        tone: None,
        priority: TalkPriority::Normal,
        emergency: false,
    };
    let started = Instant::now();
    let report = talk::run(&talker, &talk_args, std::future::pending()).await?;
    let took = started.elapsed();
    let expected_frames = sent.len().div_ceil(320);
    assert_eq!(report.frames_encoded, expected_frames);
    assert!(
        report.frames_sent >= expected_frames as u64,
        "sent {} of {expected_frames}",
        report.frames_sent
    );
    let access = report.access_time.context("never granted")?;
    assert!(access < Duration::from_secs(2), "access time {access:?}");
    assert!(
        took >= Duration::from_millis(2_900),
        "not paced in real time: 3 s of audio sent in {took:?}"
    );
    talker.close().await;

    // The listener stops once it has played the burst out to its end.
    let heard_report = tokio::time::timeout(Duration::from_secs(5), listening).await???;

    assert_eq!(heard_report.bursts.len(), 1, "{:?}", heard_report.bursts);
    let burst = &heard_report.bursts[0];
    assert_eq!(burst.talker, TALKER);
    assert_eq!(burst.name.as_deref(), Some("T100"));
    assert_eq!(burst.frames_lost, 0, "{burst}");
    assert!(burst.frames_received >= expected_frames as u64, "{burst}");

    let heard = read_wav(&heard_path)?;
    assert_eq!(heard, heard_report.pcm);
    assert!(
        heard.len() >= sent.len(),
        "heard {} samples, sent {}",
        heard.len(),
        sent.len()
    );
    let (snr, lag) = best_snr(&sent, &heard);
    eprintln!(
        "SNR {snr:.1} dB at a delay of {:.2} ms; access time {access:?}",
        lag as f64 * 1e3 / RATE as f64
    );
    assert!(snr >= MIN_SNR_DB, "SNR {snr:.1} dB < {MIN_SNR_DB} dB");
    Ok(())
}

/// `ptt monitor` shows the holder of the floor while someone talks and the
/// burst in its recent events afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_shows_who_talks() -> anyhow::Result<()> {
    let relay = Relay::start(&directory_toml()).await?;
    let watcher = relay.client(LISTENER).await?;
    let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let drawn = frames.clone();
    let watching = tokio::spawn(async move {
        let result = monitor::run(
            &watcher,
            Some(30.0),
            async {
                let _ = stop_rx.await;
            },
            move |view| {
                let text = view.render(std::time::Instant::now());
                drawn.lock().expect("lock").push(text);
            },
        )
        .await;
        watcher.close().await;
        result
    });
    let talker = relay.client(TALKER).await?;
    let talk_args = TalkArgs {
        conn: relay.conn(TALKER),
        group: GROUP,
        wav: None,
        tone: Some(1.5),
        priority: TalkPriority::Normal,
        emergency: false,
    };
    talk::run(&talker, &talk_args, std::future::pending()).await?;
    // The burst's end and a measured ping RTT, at a redraw to come.
    common::until_drawn(&frames, |view| {
        view.contains("100 T100 done after") && !view.contains("ping RTT -")
    })
    .await?;
    let _ = stop_tx.send(());
    watching.await??;
    let frames = frames.lock().expect("lock");
    let last = frames.last().context("nothing drawn")?;
    assert!(
        frames.iter().any(|f| f.contains("100 T100 ")),
        "holder never shown: {last}"
    );
    assert!(last.contains("connected, ping RTT"), "{last}");
    assert!(last.contains("100 T100 done after"), "{last}");
    assert!(!last.contains("ping RTT -"), "no RTT measured: {last}");
    eprintln!("{last}");
    Ok(())
}

/// A console in 60 groups: `ptt monitor` rejoins every one for its state
/// without being refused for its rate (the relay allows bursts of 50
/// membership requests), so the holder of the last group, who pressed
/// before the monitor started, is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_of_a_console_in_sixty_groups_shows_every_holder() -> anyhow::Result<()> {
    let mut toml = directory_toml();
    let last = GROUP + 60;
    for group in GROUP + 1..=last {
        let _ = write!(
            toml,
            "[[group]]\nid = {group}\nname = \"G{group}\"\nkind = \"other\"\n\n\
             [[group.members]]\nterminal = {DISPATCHER}\n\n"
        );
        if group == last {
            let _ = write!(toml, "[[group.members]]\nterminal = {TALKER}\n\n");
        }
    }
    let relay = Relay::start(&toml).await?;
    let talker = relay.client(TALKER).await?;
    let talk = talker.press(
        last,
        ptt_proto::pb::Priority::Normal,
        ptt_proto::pb::FloorKind::Normal,
    );
    talk.granted().await?;
    let console = relay.client(DISPATCHER).await?;
    assert!(console.joined().len() > 50, "{:?}", console.joined());
    let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let drawn = frames.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watching = tokio::spawn(async move {
        let result = monitor::run(
            &console,
            Some(30.0),
            async {
                let _ = stop_rx.await;
            },
            move |view| {
                let text = view.render(Instant::now());
                drawn.lock().expect("lock").push(text);
            },
        )
        .await;
        console.close().await;
        result
    });
    let view = common::until_drawn(&frames, |view| {
        view.contains(&format!("{TALKER} T{TALKER}"))
    })
    .await?;
    assert!(view.contains(&format!("G{last}")), "{view}");
    // The monitor draws once it has rejoined every group: none of the
    // console's 61 was refused for its rate.
    let refused = relay
        .metric("pttd_rate_limited_total{family=\"membership\"}")
        .await?;
    assert_eq!(refused, 0.0, "membership requests refused for their rate");
    let _ = stop_tx.send(());
    watching.await??;
    talk.release().await;
    talker.close().await;
    Ok(())
}

/// `ptt alert --all` reaches the group's online member, whose answer shows
/// up in the tally; the offline one is counted as not reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_follows_the_roll_call() -> anyhow::Result<()> {
    let relay = Relay::start(&directory_toml()).await?;
    let guard = relay.client(LISTENER).await?;
    let mut guard_events = guard.events();
    let dispatcher = relay.client(DISPATCHER).await?;
    let args = AlertArgs {
        conn: relay.conn(DISPATCHER),
        all: true,
        group: Vec::new(),
        no_ack: false,
        wait: 3.0,
        text: "All units: report status".into(),
    };
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let printed = lines.clone();
    let calling = tokio::spawn(async move {
        alert::run(&dispatcher, &args, move |line| {
            printed.lock().expect("lock").push(line.to_owned());
        })
        .await
    });
    let alert_id = loop {
        match tokio::time::timeout(Duration::from_secs(5), guard_events.recv()).await? {
            Some(ptt_client::Event::Alert(alert)) => break alert.alert_id,
            Some(_) => {}
            None => anyhow::bail!("guard's events ended"),
        }
    };
    guard
        .ack_alert(alert_id, ptt_proto::pb::AlertAckKind::Responding, Some(8))
        .await?;
    let (id, tally, parts) = calling.await??;
    assert_eq!(id, alert_id);
    // By group (both in it) and by organisation (both "Test").
    assert!(
        parts
            .iter()
            .any(|l| l.contains("1 of 2 delivered, 1 responding")),
        "{parts:?}"
    );
    // Then the one who never answered, by name: the offline talker.
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert_eq!(
        parts[2],
        format!("  not reached: {TALKER} T{TALKER}"),
        "{parts:?}"
    );
    // Talker (offline) and guard are the targets; the sender is not.
    assert_eq!(
        (tally.targets, tally.delivered, tally.responding),
        (2, 1, 1)
    );
    let lines = lines.lock().expect("lock");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.contains("1 responding") && l.contains("1 not reached")),
        "{lines:?}"
    );
    Ok(())
}

/// `ptt talk --wav` takes a 48 kHz stereo file: downmixed and resampled to
/// the 16 kHz mono the codec needs, the same tone comes out.
#[test]
fn talk_converts_a_48khz_stereo_wav() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("stereo48k.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let tone =
        |rate: f64, i: usize| (std::f64::consts::TAU * 440.0 * i as f64 / rate).sin() * 10_000.0;
    let mut writer = hound::WavWriter::create(&path, spec)?;
    for i in 0..48_000 {
        let s = tone(48_000.0, i) as i16;
        writer.write_sample(s)?;
        writer.write_sample(s)?;
    }
    writer.finalize()?;
    let pcm = talk::read_wav(&path)?;
    assert_eq!(pcm.len(), 16_000);
    let expected: Vec<i16> = (0..16_000).map(|i| tone(16_000.0, i) as i16).collect();
    let snr = snr_at(&expected, &pcm, 0);
    assert!(snr > 30.0, "SNR {snr:.1} dB");
    Ok(())
}

/// Runs the `ptt` binary with `args` and PTT_SECRET, with a time limit.
async fn ptt(args: &[&str], secret: &str) -> anyhow::Result<(Output, Duration)> {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ptt"));
    command
        .args(args)
        .env("PTT_SECRET", secret)
        .env_remove("PTT_SERVER")
        .env_remove("PTT_CA")
        .env_remove("PTT_ID")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .context("ptt did not exit")??;
    Ok((output, started.elapsed()))
}

fn stderr_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr:?}"
    );
    stderr
}

/// Nothing listens on the port: a one-line "unreachable" and exit 1 within
/// the connect timeout, not a hang or a backtrace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reports_an_unreachable_relay() -> anyhow::Result<()> {
    let relay = Relay::start(&directory_toml()).await?;
    let free = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    let server = free.to_string();
    let ca = relay.cert.display().to_string();
    let (output, took) = ptt(
        &[
            "talk",
            "--server",
            &server,
            "--ca",
            &ca,
            "--id",
            "100",
            "--group",
            "10",
            "--tone",
            "1",
            "--connect-timeout",
            "2",
        ],
        &secret(TALKER),
    )
    .await?;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(
        line.starts_with("ptt: ") && line.contains("unreachable"),
        "{line}"
    );
    assert!(line.contains(&server), "{line}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    Ok(())
}

/// A wrong secret: a one-line message naming the credentials, exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reports_a_wrong_secret() -> anyhow::Result<()> {
    let relay = Relay::start(&directory_toml()).await?;
    let server = relay.addr.to_string();
    let ca = relay.cert.display().to_string();
    let (output, _) = ptt(
        &[
            "talk", "--server", &server, "--ca", &ca, "--id", "100", "--group", "10", "--tone", "1",
        ],
        "not-the-secret",
    )
    .await?;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(
        line.contains("wrong secret") && line.contains("PTT_SECRET"),
        "{line}"
    );
    Ok(())
}

/// Another relay's certificate pinned: the message names the pinned file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reports_a_certificate_mismatch() -> anyhow::Result<()> {
    let relay = Relay::start(&directory_toml()).await?;
    let other = Relay::start(&directory_toml()).await?;
    let server = relay.addr.to_string();
    let ca = other.cert.display().to_string();
    let (output, _) = ptt(
        &[
            "talk", "--server", &server, "--ca", &ca, "--id", "100", "--group", "10", "--tone", "1",
        ],
        &secret(TALKER),
    )
    .await?;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(line.contains("certificate") && line.contains(&ca), "{line}");
    Ok(())
}

/// Listening to a group the terminal is not in: one line naming the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reports_a_group_not_allowed() -> anyhow::Result<()> {
    let relay = Relay::start(&directory_toml()).await?;
    let server = relay.addr.to_string();
    let ca = relay.cert.display().to_string();
    let (output, _) = ptt(
        &[
            "listen",
            "--server",
            &server,
            "--ca",
            &ca,
            "--id",
            "100",
            "--group",
            "99",
            "--seconds",
            "1",
        ],
        &secret(TALKER),
    )
    .await?;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(line.contains("not allowed in group 99"), "{line}");
    Ok(())
}
