//! The ops port holds its clients to its limits over real HTTP on loopback: idle
//! connections are closed after the header timeout and never held beyond the connection
//! cap, a slowloris is cut off, the live event stream outlives both timeouts, and wrong
//! admin tokens are answered 429 past the per-address and total limits, counted on
//! `/metrics`.

use crate::admin_port;
use crate::ops_port;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::ensure;
use ops_port::Ops;
use ops_port::exposition::value;
use ptt_tests::bystander::{self, Bystanders, Figures, Measuring};
use ptt_tests::{PATIENCE, TestRelay};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The header timeout of these tests' relays, short so the tests are.
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// The idle timeout of these tests' relays.
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A relay with the short timeouts, a cap of `max_connections` and the admin token.
async fn start(max_connections: usize) -> anyhow::Result<TestRelay> {
    TestRelay::start_with(
        &bystander::in_directory(admin_port::directory()),
        |config| {
            config.ops_header_timeout = HEADER_TIMEOUT;
            config.ops_idle_timeout = IDLE_TIMEOUT;
            config.ops_max_connections = max_connections;
            config.ops_token_failures_per_minute = 10;
            config.ops_token_failures_per_minute_total = 15;
            config.admin_token = Some(admin_port::TOKEN.parse().expect("token"));
        },
    )
    .await
}

/// Frames the bystanders' talker sends per measured burst: 3 s at 50/s.
const BYSTANDER_FRAMES: u16 = 150;

/// Logs the bystanders in on `relay`: their quiet figures and a measurement
/// already under way (frames flowing), to run an attack in.
async fn bystanders_measuring(relay: &TestRelay) -> anyhow::Result<(Figures, Measuring)> {
    let mut bystanders = Bystanders::start_on(relay).await?;
    let quiet = bystanders.measure(BYSTANDER_FRAMES).await?;
    let mut measuring = bystanders.spawn_measure(BYSTANDER_FRAMES);
    measuring.started().await?;
    Ok((quiet, measuring))
}

/// Waits for the bystanders' figures under `attack`, prints them beside the
/// quiet ones and checks they hold.
async fn bystanders_held(
    quiet: &Figures,
    measuring: Measuring,
    attack: &str,
) -> anyhow::Result<Bystanders> {
    let (bystanders, attacked) = measuring.finish().await?;
    eprintln!("bystanders quiet: {quiet}");
    eprintln!("bystanders under {attack}: {attacked}");
    attacked.holds_against(quiet).map_err(anyhow::Error::msg)?;
    Ok(bystanders)
}

/// File descriptors this process holds (the relay runs in it).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// A sample of `/metrics`, 0 if absent.
async fn metric(ops: &Ops, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(&ops.metrics().await, name, labels).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_capped_and_closed() -> anyhow::Result<()> {
    const CAP: usize = 100;
    const CLIENTS: usize = 500;
    let relay = start(CAP).await?;
    let ops = Ops::new(&relay);
    // Bystanders log in before the baseline: their sockets are not the relay's.
    let (quiet, measuring) = bystanders_measuring(&relay).await?;
    // The scrape client's connection is closed too (it is idle between scrapes).
    let baseline = open_fds();

    let opened = Instant::now();
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(TcpStream::connect(relay.ops).await?);
    }
    let connect_time = opened.elapsed();
    // What the relay holds: every fd above the baseline but the clients' own.
    let held = || open_fds().saturating_sub(baseline + CLIENTS);
    let mut peak = held();
    let closed_after = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = held();
        peak = peak.max(now);
        if now <= 2 {
            break opened.elapsed();
        }
        ensure!(opened.elapsed() < PATIENCE, "still {now} connections held");
    };
    println!(
        "{CLIENTS} idle connections (cap {CAP}, header timeout {HEADER_TIMEOUT:?}): \
         opened in {connect_time:?}, relay's fds peaked at +{peak}, all closed after {closed_after:?}"
    );
    ensure!(
        peak <= CAP + 16,
        "the relay held {peak} fds for {CAP} slots"
    );
    ensure!(closed_after >= HEADER_TIMEOUT, "{closed_after:?}");

    // The refused ones were told why; the others were closed without a word.
    let (mut busy, mut closed) = (0, 0);
    for mut client in clients {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(PATIENCE, client.read_to_end(&mut answer)).await?;
        if answer.starts_with(b"HTTP/1.1 503") {
            busy += 1;
        } else {
            ensure!(read.is_err() || answer.is_empty(), "{answer:?}");
            closed += 1;
        }
    }
    println!("{busy} answered 503 at the cap, {closed} closed by the header timeout");
    let attack = format!("{CLIENTS} idle ops connections (all closed after {closed_after:?})");
    let _bystanders = bystanders_held(&quiet, measuring, &attack).await?;
    ensure!(closed >= CAP, "{closed}");

    let refused = |reason| [("reason", reason)];
    let limit = metric(&ops, "pttd_ops_refused_total", &refused("connection_limit")).await;
    let timeout = metric(&ops, "pttd_ops_refused_total", &refused("header_timeout")).await;
    ensure!(limit + timeout == CLIENTS as f64, "{limit} + {timeout}");
    ensure!(limit >= busy as f64, "{limit} < {busy}");
    // Only the scrape itself is open. The scrapes before it were counted
    // closed a moment after their answer, so a busy machine may still show
    // the last one: ask again until the count settles.
    let settle = Instant::now() + PATIENCE;
    let mut open = metric(&ops, "pttd_ops_connections", &[]).await;
    while open != 1.0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
        open = metric(&ops, "pttd_ops_connections", &[]).await;
    }
    ensure!(open == 1.0, "{open} ops connections open");
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_is_cut_off_at_the_header_timeout() -> anyhow::Result<()> {
    let relay = start(8).await?;
    // Taken before the connect: the relay's timer starts at its accept, and
    // a loaded runtime may resume this task well after that.
    let started = Instant::now();
    let (mut reader, mut writer) = TcpStream::connect(relay.ops).await?.into_split();
    // Each byte is progress, so the idle watchdog alone would never close this.
    let request = b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nx-slow: 1234567890\r\n\r\n";
    let trickle = tokio::spawn(async move {
        for byte in request {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut answer)).await?;
    let cut_after = started.elapsed();
    trickle.abort();
    println!("slowloris cut off after {cut_after:?}");
    ensure!(answer.is_empty(), "answered: {answer:?}");
    ensure!(
        cut_after >= HEADER_TIMEOUT && cut_after < HEADER_TIMEOUT * 3,
        "{cut_after:?}"
    );
    let ops = Ops::new(&relay);
    let timeouts = [("reason", "header_timeout")];
    ensure!(metric(&ops, "pttd_ops_refused_total", &timeouts).await == 1.0);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_outlives_both_timeouts() -> anyhow::Result<()> {
    let relay = start(8).await?;
    let mut response = reqwest::get(format!("http://{}/api/v1/live", relay.ops)).await?;
    ensure!(response.status() == StatusCode::OK);
    let started = Instant::now();
    let watch = HEADER_TIMEOUT + IDLE_TIMEOUT * 2;
    let mut snapshots = 0;
    while started.elapsed() < watch {
        let chunk = tokio::time::timeout(PATIENCE, response.chunk()).await??;
        let chunk = chunk.ok_or_else(|| anyhow::anyhow!("stream ended after {snapshots}"))?;
        snapshots += String::from_utf8_lossy(&chunk)
            .matches("event: snapshot")
            .count();
    }
    println!(
        "live stream: {snapshots} snapshots in {:?}",
        started.elapsed()
    );
    ensure!(snapshots >= 3, "{snapshots}");
    drop(response);
    relay.stop().await?;
    Ok(())
}

/// An admin request from `source` with `token`: its status and `Retry-After`.
async fn admin_from(
    ops: SocketAddr,
    source: [u8; 4],
    token: &str,
) -> anyhow::Result<(StatusCode, Option<String>, serde_json::Value)> {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::from(source))
        .timeout(PATIENCE)
        .build()?;
    let response = client
        .get(format!("http://{ops}/api/v1/admin/terminals/disabled"))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    Ok((status, retry, response.json().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_admin_tokens_are_rate_limited_and_counted() -> anyhow::Result<()> {
    let relay = start(64).await?;
    let (quiet, measuring) = bystanders_measuring(&relay).await?;
    let guessing = Instant::now();
    let wrong = "wrong-token-0123456789abc";
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let (status, retry, body) = admin_from(relay.ops, [127, 0, 0, 1], wrong).await?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = retry.expect("Retry-After").parse()?;
            ensure!((1..=60).contains(&retry), "{retry}");
            ensure!(
                body["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("too many"))
            );
        }
        statuses.push(status.as_u16());
    }
    ensure!(statuses[..10] == [401; 10], "{statuses:?}");
    ensure!(statuses[10..] == [429; 20], "{statuses:?}");
    // The right token from the blocked address is not even compared...
    let (status, _, _) = admin_from(relay.ops, [127, 0, 0, 1], admin_port::TOKEN).await?;
    ensure!(status == StatusCode::TOO_MANY_REQUESTS, "{status}");
    // ...while another address is served.
    let (status, _, body) = admin_from(relay.ops, [127, 0, 0, 2], admin_port::TOKEN).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    // 15 failures in all close the admin API to everybody for the minute.
    for _ in 0..5 {
        let (status, _, _) = admin_from(relay.ops, [127, 0, 0, 2], wrong).await?;
        ensure!(status == StatusCode::UNAUTHORIZED, "{status}");
    }
    let (status, _, _) = admin_from(relay.ops, [127, 0, 0, 3], admin_port::TOKEN).await?;
    ensure!(status == StatusCode::TOO_MANY_REQUESTS, "{status}");
    let attack = format!(
        "38 admin requests (33 wrong tokens) in {:?}",
        guessing.elapsed()
    );
    let _bystanders = bystanders_held(&quiet, measuring, &attack).await?;

    // /metrics, needing no token, is not held up, and counted it all.
    let ops = Ops::new(&relay);
    let failures = metric(&ops, "pttd_ops_admin_auth_failures_total", &[]).await;
    ensure!(failures == 15.0, "{failures}");
    let limited = [("reason", "token_rate_limit")];
    let limited = metric(&ops, "pttd_ops_refused_total", &limited).await;
    ensure!(limited == 22.0, "{limited}");
    relay.stop().await?;
    Ok(())
}
