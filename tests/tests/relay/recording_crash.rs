//! Recordings at a crash: a relay killed with SIGKILL while bursts are being
//! recorded keeps their audio, and after a restart on the same data
//! directory the files and the call-log rows agree: every burst row has a
//! file that opus-tools play or is marked as audio lost, and a recovered
//! file without a row is one whose burst never had a row (it was in flight).
//!
//! The relay runs in a child process (this test binary re-executed with only
//! the ignored `relay_child` test selected), as in `crash.rs`, so it can be
//! killed for real; the restart runs in the test process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::child_relay::{self, ChildRelay};
use crate::speech::speech;
use bytes::{Bytes, BytesMut};
use ptt_calllog::{BurstRecording, CallLogReader};
use ptt_proto::pb::server_message::Body;
use ptt_proto::voice::{self, Kind, VoiceHeader};
use ptt_relay::Relay;
use ptt_relay::config::Config;
use ptt_tests::client::granted;
use ptt_tests::{Client, TestDirectory};

const CHILD_ENV: &str = "PTT_RECORDING_CRASH_DATA";

/// Talker and listener of each group: (group, talker, listener).
const GROUPS: [(u32, u32, u32); 5] = [
    (10, 100, 101),
    (11, 102, 103),
    (12, 104, 105),
    (13, 106, 107),
    (14, 108, 109),
];

fn directory() -> TestDirectory {
    GROUPS
        .iter()
        .fold(TestDirectory::new().guards(100..110), |d, &(g, t, l)| {
            d.group(g, [t, l])
        })
}

/// The relay's configuration on data directory `data` (loopback, port 0).
fn config(data: &Path) -> Config {
    let path = data.join("directory.toml");
    std::fs::write(&path, directory().to_toml()).expect("write directory");
    Config {
        data_dir: data.to_owned(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        console_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        directory: Some(path),
        idle_timeout: Duration::from_secs(5),
        keep_alive: Duration::from_secs(1),
        ..Config::default()
    }
}

/// Not a test of its own: the relay process that gets killed.
#[test]
#[ignore = "run as a child process by a_kill_9_keeps_the_audio_and_the_rows_agree_with_the_files"]
fn relay_child() {
    let Ok(data) = std::env::var(CHILD_ENV) else {
        return;
    };
    child_relay::serve(async move { Relay::load(config(Path::new(&data))).await.expect("relay") });
}

fn datagram(group: u32, burst: u32, sequence: u16, packet: &[u8]) -> Bytes {
    let header = VoiceHeader {
        kind: Kind::Voice,
        flags: voice::Flags(0),
        group_id: group,
        talker_id: 0,
        burst_id: burst,
        sequence,
        timestamp_us: 0,
    };
    let mut buf = BytesMut::new();
    voice::encode(&header, packet, &mut buf).expect("fits a datagram");
    buf.freeze()
}

/// Presses `group`'s floor and sends `frames` frames at 50 a second, or
/// until `stop`; returns the burst id.
async fn talk(talker: &mut Client, group: u32, frames: usize, stop: &AtomicBool) -> u32 {
    let burst = granted(&talker.press(group).await.expect("press")).expect("granted");
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for (seq, packet) in (0u16..).zip(speech(frames, u64::from(group))) {
        ticker.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        talker
            .send_datagram(datagram(group, burst, seq, &packet))
            .expect("send");
    }
    burst
}

/// Releases `group`'s floor; the acknowledgement means the row is on disk.
async fn release(talker: &mut Client, group: u32) {
    let answer = talker.release(group).await.expect("release");
    assert!(matches!(answer, Body::Ack(_)), "{answer:?}");
}

/// What `opusinfo` says of a file: its playback seconds. It must accept the
/// file without a warning.
fn opusinfo(file: &Path) -> f64 {
    let output = Command::new("opusinfo")
        .arg(file)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run opusinfo ({error}): install Debian's opus-tools")
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "opusinfo failed: {report}");
    for complaint in ["WARNING", "ERROR", "Hole in data"] {
        assert!(!report.contains(complaint), "{}:\n{report}", file.display());
    }
    let length = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Playback length:"))
        .unwrap_or_else(|| panic!("no playback length in:\n{report}"));
    let (minutes, seconds) = length
        .trim()
        .trim_end_matches('s')
        .split_once("m:")
        .expect("m:ss");
    minutes.parse::<f64>().expect("minutes") * 60.0 + seconds.parse::<f64>().expect("seconds")
}

/// The length of the two header pages at the start of an Ogg Opus file.
fn header_pages_len(data: &[u8]) -> usize {
    let mut at = 0;
    for _ in 0..2 {
        let segments = usize::from(data[at + 26]);
        let body: usize = data[at + 27..at + 27 + segments]
            .iter()
            .map(|&l| usize::from(l))
            .sum();
        at += 27 + segments + body;
    }
    at
}

/// Every finished recording under `root`, relative to it.
fn recordings(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for day in std::fs::read_dir(root).expect("recordings") {
        let day = day.expect("entry").path();
        if !day.is_dir()
            || day
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        for file in std::fs::read_dir(&day).expect("day") {
            let file = file.expect("entry").path();
            let relative = file.strip_prefix(root).expect("under root");
            out.push(relative.to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_keeps_the_audio_and_the_rows_agree_with_the_files() -> anyhow::Result<()> {
    ptt_tests::init_logging();
    let scratch = tempfile::tempdir()?;
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data)?;
    let mut child = ChildRelay::start(module_path!(), "relay_child", CHILD_ENV, &data).await?;
    let (addr, cert) = (child.addr, child.cert.clone());

    let mut talkers = HashMap::new();
    let mut listeners = Vec::new();
    for (group, talker, listener) in GROUPS {
        talkers.insert(group, Client::connect(addr, &cert, talker).await?);
        listeners.push(Client::connect(addr, &cert, listener).await?);
    }
    let never = Arc::new(AtomicBool::new(false));

    // Group 10: one second, released, long before the kill.
    let mut done = talkers.remove(&10).expect("talker");
    talk(&mut done, 10, 50, &never).await;
    release(&mut done, 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Group 12: in flight at the kill, under a second of audio.
    let in_flight_stop = Arc::new(AtomicBool::new(false));
    let in_flight_burst = Arc::new(AtomicU32::new(0));
    let in_flight = {
        let mut talker = talkers.remove(&12).expect("talker");
        let (stop, burst) = (in_flight_stop.clone(), in_flight_burst.clone());
        tokio::spawn(async move {
            let granted = granted(&talker.press(12).await.expect("press")).expect("granted");
            burst.store(granted, Ordering::Relaxed);
            let mut ticker = tokio::time::interval(Duration::from_millis(20));
            for (seq, packet) in (0u16..).zip(speech(45, 12)) {
                ticker.tick().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let _ = talker.send_datagram(datagram(12, granted, seq, &packet));
            }
            talker
        })
    };
    // Groups 11 and 14: half a second each, released just before the kill;
    // group 13: three frames (60 ms), released just before the kill.
    let mut half = talkers.remove(&11).expect("talker");
    let mut doomed = talkers.remove(&14).expect("talker");
    let mut short = talkers.remove(&13).expect("talker");
    let (_, doomed_burst) = tokio::join!(
        talk(&mut half, 11, 25, &never),
        talk(&mut doomed, 14, 25, &never)
    );
    talk(&mut short, 13, 3, &never).await;
    release(&mut doomed, 14).await;
    release(&mut short, 13).await;
    release(&mut half, 11).await;
    child.kill()?; // SIGKILL: no shutdown, no flush.
    in_flight_stop.store(true, Ordering::Relaxed);
    let _ = in_flight.await?;
    let in_flight_burst = in_flight_burst.load(Ordering::Relaxed);

    // Group 14's audio is made to be lost: its temporary file cut to the
    // headers (as if its audio never reached the disk), or, if it had been
    // finished already, its file removed.
    let root = data.join("recordings");
    let partial: Vec<PathBuf> = std::fs::read_dir(root.join(".partial"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    eprintln!("left by the kill: {partial:#?}");
    // Which burst a file is, read by the recorder's own naming.
    let is_burst = |path: &str, group: u32, burst: u32, talker: u32| {
        let name = path.rsplit('/').next().unwrap_or(path);
        ptt_recording::burst_of_file(name)
            .is_some_and(|(_, g, b, t)| (g, b, t) == (group, burst, talker))
    };
    match partial
        .iter()
        .find(|p| is_burst(&p.to_string_lossy(), 14, doomed_burst, 108))
    {
        Some(temp) => {
            let bytes = std::fs::read(temp)?;
            std::fs::write(temp, &bytes[..header_pages_len(&bytes)])?;
        }
        None => {
            let finished = recordings(&root)
                .into_iter()
                .find(|r| is_burst(r, 14, doomed_burst, 108))
                .expect("group 14 recorded");
            std::fs::remove_file(root.join(finished))?;
        }
    }

    // Restart on the same data directory: recovery runs while loading.
    let relay = Relay::load(config(&data)).await?;
    let stop = relay.shutdown_token();
    let running = tokio::spawn(relay.run());

    let reader = CallLogReader::open(&data.join("pttd.sqlite"))?;
    let rows = reader.burst_recordings(0, i64::MAX, 100)?;
    let row_of = |group: u32| -> &BurstRecording {
        rows.iter()
            .find(|r| r.group.0 == group)
            .unwrap_or_else(|| panic!("group {group} logged: {rows:#?}"))
    };
    eprintln!("rows after the restart: {rows:#?}");
    assert_eq!(rows.len(), 4, "groups 10, 11, 13, 14; 12 was in flight");
    assert!(rows.iter().all(|r| r.group.0 != 12));
    let mut pointed = Vec::new();
    for row in &rows {
        let relative = row.recording.clone().expect("every burst was recorded");
        let file = root.join(&relative);
        match (file.exists(), row.lost_at_ms) {
            (true, None) => {
                let seconds = opusinfo(&file);
                assert!(seconds > 0.0, "{relative} plays");
                pointed.push(relative);
            }
            (false, Some(_)) => {}
            (exists, lost) => panic!("{relative}: file there {exists}, lost at {lost:?}"),
        }
    }
    // What each burst kept: all of it when released before the kill (less
    // the 6.5 ms pre-skip, give or take a frame overtaken by the release).
    let plays =
        |group: u32| opusinfo(&root.join(row_of(group).recording.as_deref().expect("named")));
    assert!(
        (plays(10) - 0.9935).abs() <= 0.045,
        "group 10 plays {}",
        plays(10)
    );
    assert!(
        (plays(11) - 0.4935).abs() <= 0.045,
        "group 11 plays {}",
        plays(11)
    );
    assert!(
        (plays(13) - 0.0535).abs() <= 0.045,
        "group 13 plays {}",
        plays(13)
    );
    assert!(
        row_of(14).lost_at_ms.is_some(),
        "group 14's audio is marked lost"
    );

    // Every recovered file has its row, but the burst in flight at the kill,
    // which never had one: its audio is kept up to its last sync.
    let unlogged: Vec<String> = recordings(&root)
        .into_iter()
        .filter(|r| !pointed.contains(r))
        .collect();
    assert_eq!(unlogged.len(), 1, "{unlogged:?}");
    assert!(
        is_burst(&unlogged[0], 12, in_flight_burst, 104),
        "{unlogged:?}"
    );
    let kept = opusinfo(&root.join(&unlogged[0]));
    assert!(
        (0.19..1.0).contains(&kept),
        "the call in flight kept {kept} s"
    );
    assert!(
        std::fs::read_dir(root.join(".partial"))?.next().is_none(),
        "nothing is left half-written"
    );

    stop.cancel();
    running.await??;
    drop(listeners);
    drop((done, half, short, doomed));
    Ok(())
}
