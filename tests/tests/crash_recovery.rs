//! Crash recovery: a relay killed with SIGKILL during a call and started
//! again on the same data directory and port has its terminals back at once.
//! It answers their next packet (a keep-alive at the latest) with a
//! stateless reset signed with the key kept in the data directory, so they
//! log in again instead of waiting, deaf, for their idle timeout — and hear
//! the next talker.
//!
//! The relay is a process of its own run with `pttd`'s flags (see
//! `ptt_tests::pttd`); the terminals are the client library with its
//! reconnect loop. Measured from the moment the new process is started.
//!
//! Bench (200 terminals, pttd's and the client library's default
//! keep-alives and idle timeout):
//! `cargo test -p ptt-tests --test crash_recovery -- --ignored --nocapture two_hundred`
//! (`PTT_BENCH_TERMINALS=n` for another fleet size,
//! `PTT_BENCH_RESTART_AFTER_MS=ms` to wait between the kill and the restart,
//! `PTT_BENCH_KEEP_ALIVE_MS=ms` for another keep-alive of relay and terminals,
//! `PTT_BENCH_SPREAD_MS=ms` for another first reconnect spread,
//! `PTT_BENCH_DELETE_KEY=1` for a relay without a kept key,
//! `PTT_BENCH_BEFORE=1` for that and the terminals' former keep-alive and
//! first reconnect delay).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use ptt_client::{Client as Terminal, ClientConfig, Event, Events, Trust};
use ptt_relay_core::tls::RESET_KEY_FILE;
use ptt_tests::client::granted;
use ptt_tests::directory::secret;
use ptt_tests::pttd::{self, PttdProcess};
use ptt_tests::{Client, PATIENCE, TestDirectory, opus};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The group everybody is in.
const GROUP: u32 = 10;
/// Talks when the relay is killed: the crash happens mid-call.
const FIRST_TALKER: u32 = 1;
/// Talks after the restart: what the terminals must hear again.
const NEW_TALKER: u32 = 2;
/// Terminal id of the first listener; the others follow.
const FIRST_LISTENER: u32 = 100;
/// The test of this binary that runs the relay process.
const CHILD_TEST: &str = "pttd_child";
/// What the fleet is promised: voice again this soon after the restart.
const BACK_WITHIN: Duration = Duration::from_secs(2);

/// Not a test of its own: the relay process of the tests below.
#[test]
#[ignore = "run as a child process by the tests of this file"]
fn pttd_child() {
    pttd::serve_child();
}

/// Keep-alives (relay and terminals) and the relay's idle timeout.
#[derive(Debug, Clone, Copy)]
struct Timings {
    keep_alive: Duration,
    idle_timeout: Duration,
}

/// How the crash and the restart go.
#[derive(Debug, Clone, Copy)]
struct Crash {
    /// The reset key file is deleted before the restart (a relay without a
    /// kept key draws a new one at every start).
    delete_key: bool,
    /// Between the kill and the restart (systemd's `RestartSec`, say).
    restart_after: Duration,
    /// The terminals' keep-alive, if not the relay's.
    terminal_keep_alive: Option<Duration>,
    /// The terminals' first reconnect spread, if not the default.
    first_attempt_spread: Option<Duration>,
}

/// Killed and started again at once, terminals with the defaults.
const KEEP_KEY: Crash = Crash {
    delete_key: false,
    restart_after: Duration::ZERO,
    terminal_keep_alive: None,
    first_attempt_spread: None,
};

/// As in the other end-to-end tests: 1 s keep-alives, 5 s idle timeout. A
/// terminal sends a packet within one keep-alive of the crash, so it is
/// reset within about 1 s of the restart; with the 0–500 ms spread of the
/// first reconnect attempt and the login, voice is back within 2 s.
const TEST_TIMINGS: Timings = Timings {
    keep_alive: Duration::from_secs(1),
    idle_timeout: Duration::from_secs(5),
};

/// What a district runs: `pttd`'s defaults, the client library's default.
fn default_timings() -> Timings {
    let relay = ptt_relay::config::Config::default();
    assert_eq!(
        relay.keep_alive,
        ptt_client::config::KEEP_ALIVE,
        "the terminals' keep-alive is the relay's"
    );
    Timings {
        keep_alive: relay.keep_alive,
        idle_timeout: relay.idle_timeout,
    }
}

/// What one terminal went through, in time since the new relay process was
/// started.
#[derive(Debug, Default, Clone, Copy)]
struct Recovery {
    /// It noticed its connection was gone.
    disconnected: Option<Duration>,
    /// It was logged in again.
    reconnected: Option<Duration>,
    /// It heard the new talker.
    heard: Option<Duration>,
}

/// One crash and restart.
struct Outcome {
    recoveries: Vec<Recovery>,
    /// The reset key file before the kill and after the restart.
    key_before: Vec<u8>,
    key_after: Vec<u8>,
    /// Kill → new process started, and new process started → listening.
    kill_to_restart: Duration,
    startup: Duration,
}

/// Runs `listeners` terminals in one group against a relay process, kills
/// the relay with SIGKILL while a terminal talks, starts it again on the
/// same data directory and port as `crash` says and lets a new talker talk;
/// watches each terminal for up to `watch` after the restart.
async fn crash_and_restart(
    listeners: u32,
    timings: Timings,
    crash: Crash,
    watch: Duration,
) -> anyhow::Result<Outcome> {
    ptt_tests::init_logging();
    let data = tempfile::tempdir()?;
    let ids: Vec<u32> = (FIRST_LISTENER..FIRST_LISTENER + listeners).collect();
    let everybody: Vec<u32> = [FIRST_TALKER, NEW_TALKER]
        .into_iter()
        .chain(ids.iter().copied())
        .collect();
    let directory = TestDirectory::new()
        .guards(everybody.iter().copied())
        .group(GROUP, everybody.iter().copied());
    let directory_path = data.path().join("directory.toml");
    std::fs::write(&directory_path, directory.to_toml())?;
    let args = |listen: SocketAddr| -> Vec<String> {
        let mut args = pttd::base_args(data.path(), &directory_path, listen);
        args.extend([
            "--keep-alive".to_owned(),
            format!("{}ms", timings.keep_alive.as_millis()),
            "--idle-timeout".to_owned(),
            format!("{}ms", timings.idle_timeout.as_millis()),
        ]);
        args
    };
    let first_args = args(SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut relay =
        tokio::task::spawn_blocking(move || PttdProcess::start(CHILD_TEST, &first_args)).await??;
    let (addr, cert) = (relay.addr, relay.cert.clone());
    let key_path = data.path().join(RESET_KEY_FILE);

    let terminals = connect_terminals(&ids, addr, &cert, timings, crash).await?;
    let stop_watching = CancellationToken::new();
    let (heard_first_tx, mut heard_first) = mpsc::unbounded_channel();
    let watchers: Vec<_> = terminals
        .iter()
        .map(|terminal| {
            tokio::spawn(follow(
                terminal.events(),
                heard_first_tx.clone(),
                stop_watching.clone(),
            ))
        })
        .collect();

    // A call is on when the relay dies: every terminal hears it, and their
    // keep-alive timers are lined up by its last frame.
    let stop_first = CancellationToken::new();
    let first = Client::connect(addr, &cert, FIRST_TALKER).await?;
    let first_talk = tokio::spawn(talk(first, stop_first.clone()));
    for _ in &ids {
        tokio::time::timeout(PATIENCE, heard_first.recv())
            .await
            .context("every terminal hears the first talker")?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let key_before = std::fs::read(&key_path)?;
    relay.kill()?;
    let killed = Instant::now();
    stop_first.cancel();
    let _ = first_talk.await;
    if crash.delete_key {
        std::fs::remove_file(&key_path)?;
    }
    tokio::time::sleep(crash.restart_after).await;

    let same_port = args(addr);
    let relay =
        tokio::task::spawn_blocking(move || PttdProcess::start(CHILD_TEST, &same_port)).await??;
    let restarted = relay.spawned;
    assert_eq!(relay.addr, addr, "restarted on the same port");
    let stop_new = CancellationToken::new();
    let new_talker = Client::connect(relay.addr, &cert, NEW_TALKER).await?;
    let new_talk = tokio::spawn(talk(new_talker, stop_new.clone()));
    let give_up = stop_watching.clone();
    let timer = tokio::spawn(async move {
        tokio::time::sleep_until((restarted + watch).into()).await;
        give_up.cancel();
    });
    let mut recoveries = Vec::new();
    for watcher in watchers {
        let seen = watcher.await?;
        let since = |at: Option<Instant>| at.map(|at| at.saturating_duration_since(restarted));
        recoveries.push(Recovery {
            disconnected: since(seen.disconnected),
            reconnected: since(seen.reconnected),
            heard: since(seen.heard),
        });
    }
    timer.abort();
    stop_new.cancel();
    new_talk.await??;
    let key_after = std::fs::read(&key_path)?;
    drop(terminals);
    Ok(Outcome {
        recoveries,
        key_before,
        key_after,
        kill_to_restart: restarted.saturating_duration_since(killed),
        startup: relay.ready.saturating_duration_since(restarted),
    })
}

/// Logs in every terminal of `ids` with the client library (its default
/// reconnect policy), all in `GROUP`.
async fn connect_terminals(
    ids: &[u32],
    addr: SocketAddr,
    cert: &std::path::Path,
    timings: Timings,
    crash: Crash,
) -> anyhow::Result<Vec<Terminal>> {
    let mut logins = tokio::task::JoinSet::new();
    for &id in ids {
        let mut config = ClientConfig::new(addr, Trust::Pinned(cert.to_owned()), id, secret(id));
        config.keep_alive = crash.terminal_keep_alive.unwrap_or(timings.keep_alive);
        if let Some(spread) = crash.first_attempt_spread {
            config.reconnect.first_attempt_spread = spread;
        }
        logins.spawn(async move { Terminal::connect(config).await.map_err(anyhow::Error::from) });
    }
    let mut terminals = Vec::new();
    while let Some(login) = logins.join_next().await {
        let terminal = login??;
        anyhow::ensure!(
            terminal.joined().contains(&GROUP),
            "terminal {} is not in the group",
            terminal.terminal_id()
        );
        terminals.push(terminal);
    }
    Ok(terminals)
}

/// When a terminal noticed the loss, was back, and heard the new talker.
#[derive(Debug, Default)]
struct Seen {
    disconnected: Option<Instant>,
    reconnected: Option<Instant>,
    heard: Option<Instant>,
}

/// Follows one terminal's events until it hears the new talker or `stop`;
/// says once when it heard the first talker.
async fn follow(
    mut events: Events,
    heard_first: mpsc::UnboundedSender<()>,
    stop: CancellationToken,
) -> Seen {
    let mut seen = Seen::default();
    let mut told = false;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = stop.cancelled() => break,
        };
        let Some(event) = event else { break };
        match event {
            Event::Voice(frame) if frame.talker == FIRST_TALKER && !told => {
                told = true;
                let _ = heard_first.send(());
            }
            Event::Voice(frame) if frame.talker == NEW_TALKER => {
                seen.heard = Some(frame.received_at);
                // Voice may come before the `Reconnected` event (the
                // groups are restored first): it was logged in by then.
                seen.reconnected = seen.reconnected.or(seen.heard);
                break;
            }
            Event::Disconnected { .. } if seen.disconnected.is_none() => {
                seen.disconnected = Some(Instant::now());
            }
            Event::Reconnected { .. } if seen.reconnected.is_none() => {
                seen.reconnected = Some(Instant::now());
            }
            _ => {}
        }
    }
    seen
}

/// Takes the floor of `GROUP` and sends a voice frame every 20 ms until
/// `stop` or the connection is gone.
async fn talk(mut talker: Client, stop: CancellationToken) -> anyhow::Result<()> {
    let answer = talker.press(GROUP).await?;
    let burst = granted(&answer).with_context(|| format!("floor not granted: {answer:?}"))?;
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    let mut sequence = 0u16;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => return Ok(()),
        }
        if talker
            .send_datagram(opus::datagram(GROUP, burst, sequence, 0))
            .is_err()
        {
            return Ok(());
        }
        sequence = sequence.wrapping_add(1);
    }
}

/// The `p`-th percentile (nearest rank) of sorted `values`.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Picks the time of one step of a recovery.
type Step = fn(&Recovery) -> Option<Duration>;

/// Prints p50/p99/max of each step of the recovery.
fn report(label: &str, outcome: &Outcome) {
    eprintln!(
        "{label}: kill → restart {:?}, restart → listening {:?} (times below from the restart)",
        outcome.kill_to_restart, outcome.startup
    );
    let steps: [(&str, Step); 3] = [
        ("restart → connection lost noticed", |r| r.disconnected),
        ("restart → logged in again", |r| r.reconnected),
        ("restart → voice heard again", |r| r.heard),
    ];
    for (step, pick) in steps {
        let mut values: Vec<Duration> = outcome.recoveries.iter().filter_map(pick).collect();
        values.sort();
        if values.is_empty() {
            eprintln!("{label}: {step}: none of {}", outcome.recoveries.len());
            continue;
        }
        let ms = |d: Duration| d.as_millis();
        eprintln!(
            "{label}: {step}: {}/{} terminals, p50 {} ms, p99 {} ms, max {} ms",
            values.len(),
            outcome.recoveries.len(),
            ms(percentile(&values, 50)),
            ms(percentile(&values, 99)),
            ms(values[values.len() - 1]),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_terminal_hears_the_next_talker_within_2_s_of_the_restart()
-> anyhow::Result<()> {
    let outcome = crash_and_restart(20, TEST_TIMINGS, KEEP_KEY, BACK_WITHIN * 3).await?;
    report("kept reset key", &outcome);
    assert_eq!(
        outcome.key_after, outcome.key_before,
        "the reset key survives the restart byte for byte"
    );
    for (n, recovery) in outcome.recoveries.iter().enumerate() {
        let heard = recovery
            .heard
            .with_context(|| format!("terminal {n} never heard the new talker: {recovery:?}"))?;
        assert!(
            heard <= BACK_WITHIN,
            "terminal {n}: voice again {heard:?} after the restart: {recovery:?}"
        );
    }
    Ok(())
}

/// Terminals in a call learn of the crash from the call itself: its frames
/// stop without a last frame, so each sends the relay a probe
/// `STALL_PROBE` (250 ms) later, which the restarted relay answers with a
/// reset. Their keep-alive (4 s here) plays no part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_in_a_call_notice_the_restart_from_the_stalled_call() -> anyhow::Result<()> {
    let crash = Crash {
        terminal_keep_alive: Some(Duration::from_secs(4)),
        ..KEEP_KEY
    };
    let outcome = crash_and_restart(20, TEST_TIMINGS, crash, BACK_WITHIN * 3).await?;
    report("terminals with a 4 s keep-alive", &outcome);
    let soon = ptt_client::config::STALL_PROBE + Duration::from_millis(500);
    for (n, recovery) in outcome.recoveries.iter().enumerate() {
        let noticed = recovery.disconnected.context("loss noticed")?;
        assert!(
            noticed <= soon,
            "terminal {n} noticed the restart {noticed:?} after it: {recovery:?}"
        );
        let heard = recovery.heard.context("voice heard again")?;
        assert!(heard <= BACK_WITHIN, "terminal {n}: {recovery:?}");
    }
    Ok(())
}

/// The control: the same crash with the key deleted before the restart
/// (what every restart was before the key was kept). No terminal can be
/// reset, so none is back within the promised time; they come back only
/// after their idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_kept_key_terminals_stay_deaf_until_their_idle_timeout() -> anyhow::Result<()> {
    let timings = TEST_TIMINGS;
    let watch = timings.idle_timeout + BACK_WITHIN * 2;
    let crash = Crash {
        delete_key: true,
        ..KEEP_KEY
    };
    let outcome = crash_and_restart(20, timings, crash, watch).await?;
    report("deleted reset key", &outcome);
    assert_ne!(outcome.key_after, outcome.key_before, "a new key was made");
    for (n, recovery) in outcome.recoveries.iter().enumerate() {
        let heard = recovery
            .heard
            .with_context(|| format!("terminal {n} never came back: {recovery:?}"))?;
        assert!(
            heard > BACK_WITHIN,
            "terminal {n} was back {heard:?} after the restart without a reset: {recovery:?}"
        );
        // Its idle timeout runs from the last packet of the killed relay.
        let lost = recovery.disconnected.context("loss noticed")?;
        assert!(
            lost + outcome.kill_to_restart + Duration::from_millis(500) >= timings.idle_timeout,
            "terminal {n} noticed the loss {lost:?} after the restart: {recovery:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "bench: 200 terminals, run with --ignored --nocapture"]
async fn two_hundred_terminals_after_kill_9() -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let terminals = env("PTT_BENCH_TERMINALS").unwrap_or(200) as u32;
    let before = std::env::var_os("PTT_BENCH_BEFORE").is_some();
    let crash = Crash {
        delete_key: before || std::env::var_os("PTT_BENCH_DELETE_KEY").is_some(),
        restart_after: Duration::from_millis(env("PTT_BENCH_RESTART_AFTER_MS").unwrap_or(0)),
        // Before: the relay drew a new key at every start, terminals sent
        // keep-alives every 10 s and tried again after 75–125 ms.
        terminal_keep_alive: before.then_some(Duration::from_secs(10)),
        first_attempt_spread: before
            .then_some(Duration::from_millis(125))
            .or(env("PTT_BENCH_SPREAD_MS").map(Duration::from_millis)),
    };
    let mut timings = default_timings();
    if let Some(ms) = env("PTT_BENCH_KEEP_ALIVE_MS") {
        timings.keep_alive = Duration::from_millis(ms);
    }
    let watch = timings.idle_timeout * 2 + Duration::from_secs(5);
    let outcome = crash_and_restart(terminals, timings, crash, watch).await?;
    let label = format!("{terminals} terminals, {timings:?}, {crash:?}");
    report(&label, &outcome);
    let deaf = outcome
        .recoveries
        .iter()
        .filter(|r| r.heard.is_none())
        .count();
    assert_eq!(deaf, 0, "{deaf} terminals never heard the new talker");
    Ok(())
}
