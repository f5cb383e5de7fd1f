//! The real `pttd` binary under SIGTERM, what systemd and docker send to
//! stop it: it tells every terminal `GoingAway` and closes their connections
//! with the going-away code (proto/voice.md §1), closes the burst in flight
//! in the call log with its recording whole on disk, writes its last log
//! line and exits with status 0 within a few seconds. Started again on the
//! same data directory it reuses its keys and serves logins at once.
//!
//! The process is the binary cargo built for this package
//! (`CARGO_BIN_EXE_pttd`), never the library in the test process, so its
//! signal handling, log set-up and runtime shutdown are what is tested.

mod process;
mod recording;
mod terminals;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use ptt_calllog::{BurstOutcome, CallLogReader};
use ptt_client::TalkEnd;
use ptt_directory::GroupId;
use ptt_proto::pb;
use ptt_relay_core::auth::resume_key::RESUME_KEY_FILE;
use ptt_relay_core::tls::RESET_KEY_FILE;
use ptt_tests::directory::secret;
use ptt_tests::{PATIENCE, TestDirectory};

use process::{Pttd, Stopped};
use terminals::{Burst, Followed, HEARD_BEFORE_SIGTERM, RawListener, hello};

/// The group everybody is in.
const GROUP: u32 = 10;
/// Talks when the signal comes.
const TALKER: u32 = 1;
/// Listen with the client library.
const LIBRARY_LISTENERS: [u32; 3] = [100, 101, 102];
/// Listen with the end-to-end tests' raw client, which sees close codes.
const RAW_LISTENERS: [u32; 2] = [103, 104];
/// SIGTERM → exit: the relay's own steps take milliseconds on loopback;
/// each may wait up to 3 s (`SHUTDOWN_GRACE`) only if something is stuck.
const EXIT_WITHIN: Duration = Duration::from_secs(5);
/// What `pttd` logs when it gets the signal, and as its last line.
const SIGNAL_LINE: &str = "signal received";
const LAST_LINE: &str = "relay stopped";
/// proto/voice.md §1: "3 = going away (after `GoingAway`)".
const CLOSE_GOING_AWAY: u64 = 3;
/// One 20 ms frame.
const FRAME: Duration = Duration::from_millis(20);

/// Writes the directory of these tests into `data` and returns `pttd`'s
/// flags for it: port 0 unless `listen` says otherwise, the relay's own
/// log lines at info, the rest at warn.
fn flags(data: &Path, listen: Option<std::net::SocketAddr>) -> anyhow::Result<Vec<String>> {
    let everybody = [TALKER]
        .into_iter()
        .chain(LIBRARY_LISTENERS)
        .chain(RAW_LISTENERS);
    let directory = TestDirectory::new()
        .guards(everybody.clone())
        .group(GROUP, everybody);
    let directory_path = data.join("directory.toml");
    std::fs::write(&directory_path, directory.to_toml())?;
    let listen = listen.map_or_else(|| "127.0.0.1:0".to_owned(), |a| a.to_string());
    Ok([
        "--data-dir",
        &data.display().to_string(),
        "--listen",
        &listen,
        "--ops-listen",
        "127.0.0.1:0",
        "--console-listen",
        "127.0.0.1:0",
        "--directory",
        &directory_path.display().to_string(),
        "--log",
        "warn,pttd=info,ptt_relay=info",
    ]
    .map(str::to_owned)
    .to_vec())
}

fn unix_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A clean stop: status 0 within [`EXIT_WITHIN`], nothing on stderr, no
/// warning or error in the log, the signal logged and the relay's last line
/// the last line of the log (written out before the process ended).
fn assert_clean_stop(stopped: &Stopped) {
    let output = stopped.output();
    assert!(
        stopped.status.success(),
        "pttd exited with {} after SIGTERM:\n{output}",
        stopped.status
    );
    assert_eq!(stopped.status.code(), Some(0), "{output}");
    assert!(stopped.took < EXIT_WITHIN, "exit took {:?}", stopped.took);
    assert!(stopped.stderr.is_empty(), "pttd wrote to stderr:\n{output}");
    let log: Vec<&str> = stopped.log().collect();
    for line in &log {
        assert!(
            !line.contains(" WARN ") && !line.contains(" ERROR "),
            "pttd complained while stopping: {line}\n{output}"
        );
    }
    assert!(
        log.iter().any(|line| line.ends_with(SIGNAL_LINE)),
        "the signal is not in the log:\n{output}"
    );
    let last = log.last().copied().unwrap_or_default();
    assert!(
        last.ends_with(LAST_LINE),
        "the log does not end with {LAST_LINE:?} but {last:?}:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_burst_says_going_away_closes_the_burst_and_exits_0() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Pttd::start(&flags(data.path(), None)?).await?;

    // Everybody is logged in and listening before the talker presses.
    let mut library = Vec::new();
    for id in LIBRARY_LISTENERS {
        library.push(Followed::connect(&relay, id).await?);
    }
    let mut raw = Vec::new();
    for id in RAW_LISTENERS {
        raw.push(RawListener::connect(&relay, id).await?);
    }
    let talker = Followed::connect(&relay, TALKER).await?;
    let burst = Burst::start(talker.terminal(), GROUP).await?;

    // Mid-burst: every listener has heard the talker.
    for listener in &mut library {
        listener.heard_enough().await?;
    }
    for listener in &raw {
        listener.hears(TALKER).await?;
    }
    let signalled_ms = unix_ms();
    let stopped = relay.terminate(EXIT_WITHIN).await?;
    let exited_ms = unix_ms();
    eprintln!(
        "SIGTERM → exit {:?}, {} frames pushed",
        stopped.took,
        burst.pushed()
    );
    assert_clean_stop(&stopped);

    // Every terminal was told, then its connection was closed.
    for listener in library.into_iter().chain([talker]) {
        let seen = listener.outcome().await?;
        let (reason, after) = seen
            .going_away
            .with_context(|| format!("terminal {} got no GoingAway: {seen:?}", seen.terminal))?;
        assert_eq!(reason, pb::GoingAwayReason::Shutdown, "{seen:?}");
        assert!(after > Duration::ZERO, "a reconnect hint: {seen:?}");
        assert!(
            seen.disconnected_after_going_away,
            "GoingAway first, then the close: {seen:?}"
        );
        if seen.terminal != TALKER {
            assert!(seen.frames >= HEARD_BEFORE_SIGTERM, "{seen:?}");
        }
    }
    for listener in raw {
        let terminal = listener.terminal();
        let (going_away, code) = listener.going_away_and_close().await?;
        assert_eq!(
            pb::GoingAwayReason::try_from(going_away.reason),
            Ok(pb::GoingAwayReason::Shutdown),
            "terminal {terminal}: {going_away:?}"
        );
        assert_eq!(
            code, CLOSE_GOING_AWAY,
            "terminal {terminal}: proto/voice.md §1 says {CLOSE_GOING_AWAY} (going away)"
        );
    }
    let (burst_id, pushed, end) = burst.finish().await?;
    assert!(
        matches!(end, TalkEnd::Disconnected),
        "the talk ends with the connection: {end:?}"
    );

    // The burst's row is closed and its recording is whole, as soon as the
    // process has exited: nothing is left to a later start.
    let reader = CallLogReader::open(&data.path().join("pttd.sqlite"))?;
    let rows = reader.bursts(Some(GroupId(GROUP)), 0, i64::MAX, 10)?;
    assert_eq!(rows.len(), 1, "one burst: {rows:#?}");
    let row = &rows[0].record;
    assert_eq!((row.talker.0, row.burst_id), (TALKER, burst_id), "{row:#?}");
    assert_eq!(row.outcome, BurstOutcome::Shutdown, "{row:#?}");
    // The relay's clock is anchored to the system clock at its start.
    let slack = 100;
    assert!(row.started_at_ms < signalled_ms, "{row:#?}");
    assert!(
        (signalled_ms - slack..=exited_ms + slack).contains(&row.ended_at_ms),
        "ended at {} between SIGTERM {signalled_ms} and exit {exited_ms}: {row:#?}",
        row.ended_at_ms
    );
    assert!(
        row.frames > 0 && u64::from(row.frames) <= pushed,
        "{row:#?}"
    );
    let relative = row
        .recording
        .as_deref()
        .context("the row names its recording")?;
    let recordings = data.path().join("recordings");
    let file = recordings.join(relative);
    assert!(file.is_file(), "{} is not there", file.display());
    let pages = recording::check_ogg(&file)?;
    let length = recording::opusinfo_length(&file)?;
    let recorded = FRAME * row.frames;
    assert!(
        length.abs_diff(recorded) <= FRAME * 2,
        "{} plays {length:?}, the row says {} frames ({recorded:?}); {pages} pages",
        file.display(),
        row.frames
    );
    let partial = recordings.join(ptt_recording::PARTIAL_DIR);
    let left: Vec<_> = std::fs::read_dir(&partial)
        .map(|dir| dir.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "recordings left half-written: {left:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_the_same_data_dir_starts_cleanly_and_serves_logins() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Pttd::start(&flags(data.path(), None)?).await?;
    let (addr, cert) = (relay.addr, relay.cert.clone());
    let endpoint = ptt_tests::client::endpoint(&cert)?;
    let (conn, answer) = hello(&endpoint, addr, TALKER, secret(TALKER).as_bytes(), b"").await?;
    let token = answer
        .map_err(|e| anyhow::anyhow!("login refused: {e:?}"))?
        .resume_token;
    ensure!(!token.is_empty(), "pttd offers resumption");
    let keys = |dir: &Path| -> anyhow::Result<Vec<Vec<u8>>> {
        [RESET_KEY_FILE, RESUME_KEY_FILE]
            .iter()
            .map(|name| std::fs::read(dir.join(name)).with_context(|| name.to_string()))
            .chain([std::fs::read(&cert).context("certificate")])
            .collect()
    };
    let before = keys(data.path())?;
    assert_clean_stop(&relay.terminate(EXIT_WITHIN).await?);
    drop(conn);

    // Again, on the same port: the first process has let go of it.
    let relay = Pttd::start(&flags(data.path(), Some(addr))?).await?;
    assert_eq!(relay.addr, addr);
    assert_eq!(relay.cert, cert, "the same certificate file");
    assert_eq!(
        keys(data.path())?,
        before,
        "reset key, resumption key and certificate are reused byte for byte"
    );
    // The certificate the terminals pinned still holds, and the credential
    // the first process issued logs the terminal in without its secret.
    let (_resumed, answer) = hello(&endpoint, addr, TALKER, b"", &token).await?;
    let resumed = answer.map_err(|e| anyhow::anyhow!("resumption refused: {e:?}"))?;
    assert_eq!(resumed.terminal_id, TALKER);
    let other = RAW_LISTENERS[0];
    let (_fresh, answer) = hello(&endpoint, addr, other, secret(other).as_bytes(), b"").await?;
    let fresh = answer.map_err(|e| anyhow::anyhow!("login refused: {e:?}"))?;
    assert_eq!(fresh.terminal_id, other);
    let stopped = tokio::time::timeout(PATIENCE, relay.terminate(EXIT_WITHIN)).await??;
    // Nothing to recover or complain about at the second start either.
    assert_clean_stop(&stopped);
    Ok(())
}
