//! Burst recordings through the real relay, checked with an independent
//! decoder: Debian's opus-tools (`opusinfo`, `opusdec`) must accept each file
//! without a warning, report the duration the talker spoke and name the
//! talker. A machine without opus-tools fails here (install it), it does not
//! skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ptt_calllog::{BurstRow, CallLogReader};
use ptt_directory::GroupId;
use ptt_proto::voice::{self, Kind, VoiceHeader};
use ptt_tests::client::granted;
use ptt_tests::{Client, PATIENCE, TestDirectory, TestRelay};

const GROUP: u32 = 10;
/// Two seconds of 20 ms frames.
const FRAMES: u16 = 100;
/// One frame, the tolerance on durations.
const FRAME_S: f64 = 0.020;

/// `FRAMES` real Opus packets of speech-like audio.
fn speech(seed: u64) -> Vec<Vec<u8>> {
    crate::speech::speech(usize::from(FRAMES), seed)
}

fn datagram(burst: u32, sequence: u16, packet: &[u8]) -> Bytes {
    let header = VoiceHeader {
        kind: Kind::Voice,
        flags: voice::Flags(0),
        group_id: GROUP,
        talker_id: 0,
        burst_id: burst,
        sequence,
        timestamp_us: 0,
    };
    let mut buf = BytesMut::new();
    voice::encode(&header, packet, &mut buf).expect("fits a datagram");
    buf.freeze()
}

/// Presses, sends the packets whose sequence `send` accepts at 50 per
/// second, releases (the release is acknowledged once the burst is logged).
async fn talk(talker: &mut Client, packets: &[Vec<u8>], send: impl Fn(u16) -> bool) -> u32 {
    let burst = granted(&talker.press(GROUP).await.expect("press")).expect("granted");
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for (seq, packet) in (0u16..).zip(packets) {
        ticker.tick().await;
        if send(seq) {
            talker
                .send_datagram(datagram(burst, seq, packet))
                .expect("send");
        }
    }
    talker.release(GROUP).await.expect("release");
    burst
}

/// The burst's call-log row (it is durable once the release was acked).
fn burst_row(data: &Path, burst: u32) -> BurstRow {
    let reader = CallLogReader::open(&data.join("pttd.sqlite")).expect("call log");
    reader
        .bursts(Some(GroupId(GROUP)), 0, i64::MAX, 100)
        .expect("bursts")
        .into_iter()
        .find(|row| row.record.burst_id == burst)
        .expect("the burst is logged")
}

/// Waits for the recording the row points at (it is renamed into place a
/// moment after the burst ends, once late frames had their chance).
async fn recording(data: &Path, row: &BurstRow) -> PathBuf {
    let relative = row
        .record
        .recording
        .as_deref()
        .expect("the burst row names its recording");
    let path = data.join("recordings").join(relative);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    path
}

/// Runs an opus-tools program; a missing program fails the test with the
/// install command.
fn opus_tool(program: &str, args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {program} ({error}): the recording tests need Debian's opus-tools \
             (apt-get install opus-tools)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{program} failed: {text}");
    text
}

/// What `opusinfo` says about a file: (playback seconds, full report).
fn opusinfo(file: &Path) -> (f64, String) {
    let report = opus_tool("opusinfo", &[file.as_os_str()]);
    for complaint in ["WARNING", "ERROR", "Hole in data"] {
        assert!(
            !report.contains(complaint),
            "opusinfo complains about {}:\n{report}",
            file.display()
        );
    }
    // "Playback length: 0m:01.993s"
    let length = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Playback length:"))
        .unwrap_or_else(|| panic!("no playback length in:\n{report}"));
    let (minutes, seconds) = length
        .trim()
        .trim_end_matches('s')
        .split_once("m:")
        .expect("m:ss.sss");
    let seconds =
        minutes.parse::<f64>().expect("minutes") * 60.0 + seconds.parse::<f64>().expect("seconds");
    (seconds, report)
}

/// Decodes with `opusdec` to WAV and returns the audio's duration in
/// seconds, read from the WAV header.
fn opusdec(file: &Path, wav: &Path) -> f64 {
    opus_tool(
        "opusdec",
        &["--quiet".as_ref(), file.as_os_str(), wav.as_os_str()],
    );
    let bytes = std::fs::read(wav).expect("wav written");
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let (mut rate, mut block, mut data) = (0, 0, 0);
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let (id, len) = (&bytes[at..at + 4], u32_at(at + 4) as usize);
        match id {
            b"fmt " => {
                rate = u32_at(at + 12);
                block = u32::from(u16::from_le_bytes([bytes[at + 20], bytes[at + 21]]));
            }
            b"data" => data = len.min(bytes.len() - at - 8),
            _ => {}
        }
        at += 8 + len + len % 2;
    }
    assert!(rate > 0 && block > 0 && data > 0, "fmt and data chunks");
    data as f64 / f64::from(block) / f64::from(rate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_burst_is_an_ogg_opus_file_that_opus_tools_play() -> anyhow::Result<()> {
    let directory = TestDirectory::new().guards(100..103).group(GROUP, 100..103);
    let relay = TestRelay::start(&directory).await?;
    let mut first = Client::connect(relay.addr, &relay.cert, 100).await?;
    let mut second = Client::connect(relay.addr, &relay.cert, 101).await?;
    let _listener = Client::connect(relay.addr, &relay.cert, 102).await?;
    let data = relay.data.path().to_owned();
    let scratch = tempfile::tempdir()?;

    // Guard 100 talks two seconds; guard 101 then talks two seconds of
    // which five frames are lost on the way.
    let clean = talk(&mut first, &speech(1), |_| true).await;
    let lossy = talk(&mut second, &speech(2), |seq| !(50..55).contains(&seq)).await;

    for (burst, talker, frames) in [(clean, 100, 100), (lossy, 101, 95)] {
        let row = burst_row(&data, burst);
        assert_eq!(row.record.talker.0, talker);
        // The release may overtake the last frame or two, which are then
        // forwarded (and recorded) as the burst's tail, not counted in it.
        assert!(
            (frames - 2..=frames).contains(&row.record.frames),
            "burst {burst} logged {} frames, sent {frames}",
            row.record.frames
        );
        let file = recording(&data, &row).await;
        let (seconds, report) = opusinfo(&file);
        // Playback = 100 frames less the pre-skip (6.5 ms): the lost frames
        // are concealed, so the recording lasts as long as the burst.
        assert!(
            (seconds - 2.0).abs() <= FRAME_S,
            "burst {burst} plays {seconds} s, not 2 s:\n{report}"
        );
        assert!(report.contains(&format!("TALKER={talker}\n")), "{report}");
        assert!(
            report.contains(&format!("TALKER_NAME=T{talker}\n")),
            "{report}"
        );
        assert!(report.contains("GROUP=10\n"), "{report}");
        assert!(report.contains(&format!("BURST={burst}\n")), "{report}");
        assert!(report.contains("Channels: 1"), "{report}");
        assert!(
            report.contains("Original sample rate: 16000 Hz"),
            "{report}"
        );
        let wav = scratch.path().join(format!("{burst}.wav"));
        let decoded = opusdec(&file, &wav);
        assert!(
            (decoded - 2.0).abs() <= FRAME_S,
            "opusdec decoded {decoded} s of burst {burst}"
        );
    }
    // Counted once the name is synced, a moment after the file appears.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while relay.metrics.recording.written() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(relay.metrics.recording.written(), 2);
    assert_eq!(relay.metrics.recording.frames_dropped(), 0);
    assert_eq!(relay.metrics.recording.errors(), 0);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_recording_off_nothing_is_written() -> anyhow::Result<()> {
    let directory = TestDirectory::new().guards(100..102).group(GROUP, 100..102);
    let relay = TestRelay::start_with(&directory, |config| config.record = false).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let _listener = Client::connect(relay.addr, &relay.cert, 101).await?;
    let packets = speech(3);
    let burst = talk(&mut talker, &packets[..10], |_| true).await;
    let data = relay.data.path().to_owned();
    let row = burst_row(&data, burst);
    assert!((8..=10).contains(&row.record.frames), "{row:?}");
    assert_eq!(row.record.recording, None);
    let data = relay.stop().await?;
    assert!(data.path().join("pttd.sqlite").exists());
    assert!(!data.path().join("recordings").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_cut_by_a_crash_is_finished_at_the_next_start() -> anyhow::Result<()> {
    let directory = TestDirectory::new().guards(100..102).group(GROUP, 100..102);
    let relay = TestRelay::start(&directory).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let _listener = Client::connect(relay.addr, &relay.cert, 101).await?;
    let data = relay.data.path().to_owned();
    let burst = talk(&mut talker, &speech(4), |_| true).await;
    let row = burst_row(&data, burst);
    let whole = std::fs::read(recording(&data, &row).await)?;
    let _data = relay.stop().await?;

    // What a crash leaves: the file under its temporary name, its last page
    // torn. Its STARTED tag already holds the call log's start.
    let recordings = tempfile::tempdir()?;
    let partial = recordings.path().join(".partial");
    std::fs::create_dir_all(&partial)?;
    let temp = partial.join(format!("1-g{GROUP}-b{burst}-t100.opus.part"));
    std::fs::write(&temp, &whole[..whole.len() - 100])?;
    let dir = recordings.path().to_owned();
    let relay =
        TestRelay::start_with(&directory, |config| config.recordings_dir = Some(dir)).await?;

    // Finished at start under the name the call-log row gives, the torn
    // page left out: the first page of 50 frames plays, less the pre-skip.
    let relative = row.record.recording.as_deref().expect("named");
    let recovered = recordings.path().join(relative);
    assert!(!temp.exists(), "the temporary file is gone");
    let (seconds, report) = opusinfo(&recovered);
    assert!(
        (seconds - (1.0 - 0.0065)).abs() <= FRAME_S,
        "the recovered recording plays {seconds} s:\n{report}"
    );
    assert!(report.contains(&format!("BURST={burst}\n")), "{report}");
    assert_eq!(relay.metrics.recording.errors(), 0);
    relay.stop().await?;
    Ok(())
}
