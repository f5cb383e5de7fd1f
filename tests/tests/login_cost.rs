//! What logins may cost the relay (issue "Hardening", finding 2): concurrent
//! wrong secrets from one address are limited before they are hashed, argon2
//! runs a bounded number at a time in bounded memory, a terminal guessed at
//! does not lock out its neighbours behind the same address, and failures
//! past the global budget are answered late.

mod login_support;

use std::time::{Duration, Instant};

use login_support::{
    SERIAL, heap, hello, memory_kib, production_hashes, reset_peak_memory, start_on,
};
use ptt_proto::pb;
use ptt_tests::bystander::{self, Bystanders};
use ptt_tests::directory::secret;
use ptt_tests::{Client, TestDirectory, TestRelay};

/// argon2's default memory cost (19 MiB): what one verification of a
/// production hash holds.
const DEFAULT_HASH_BYTES: usize = 19 << 20;

/// What the burst of a test may add to the heap besides the hashes: its
/// QUIC connections, tasks and log records.
const SLACK_BYTES: usize = 24 << 20;

/// Frames the bystanders' talker sends per measured burst: 3 s at 50/s.
const BYSTANDER_FRAMES: u16 = 150;

/// Starts measuring a burst: the heap's peak and the process's `VmHWM`.
fn start_measuring() -> (usize, u64, bool) {
    let hwm_reset = reset_peak_memory();
    heap::reset_peak();
    (heap::live(), memory_kib("VmRSS:"), hwm_reset)
}

/// The heap's peak growth and `VmHWM`'s growth (None if it could not be
/// reset) since [`start_measuring`], in bytes.
fn measured((live, resident_kib, hwm_reset): (usize, u64, bool)) -> (usize, Option<u64>) {
    let hwm = hwm_reset.then(|| memory_kib("VmHWM:").saturating_sub(resident_kib) * 1024);
    (heap::peak().saturating_sub(live), hwm)
}

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

/// Sends `logins` (terminal, secret) at once from one client socket on
/// 127.0.0.1; returns the answers' error reasons (0 for a login that
/// succeeded).
async fn concurrent_logins(relay: &TestRelay, logins: Vec<(u32, Vec<u8>)>) -> Vec<i32> {
    let endpoint = ptt_tests::client::endpoint(&relay.cert).expect("client endpoint");
    let mut set = tokio::task::JoinSet::new();
    for (terminal, secret) in logins {
        let (addr, endpoint) = (relay.addr, endpoint.clone());
        set.spawn(async move {
            let (_conn, answer) = hello(&endpoint, addr, terminal, &secret, b"").await?;
            anyhow::Ok(answer.err().map_or(0, |e| e.reason))
        });
    }
    let mut reasons = Vec::new();
    while let Some(joined) = set.join_next().await {
        reasons.push(joined.expect("login task").expect("login"));
    }
    reasons
}

fn count(reasons: &[i32], reason: pb::ErrorReason) -> usize {
    reasons.iter().filter(|&&r| r == i32::from(reason)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_wrong_secrets_hash_at_most_the_limit_in_bounded_memory()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let directory = TestDirectory::new().guards(100..102).group(10, 100..102);
    let directory = bystander::in_directory(directory);
    let toml = production_hashes(&directory.to_toml(), secret);
    let data = tempfile::tempdir()?;
    let relay = start_on(&toml, data.path(), None, |c| c.auth_hash_workers = 2).await?;
    // One good login first, so the allocator has seen a hash.
    Client::connect(relay.addr, &relay.cert, 101).await?;
    // Bystanders in a group of their own: quiet, then during the burst.
    let mut bystanders = Bystanders::start_on(&relay).await?;
    let quiet = bystanders.measure(BYSTANDER_FRAMES).await?;
    let mut talking = bystanders.spawn_measure(BYSTANDER_FRAMES);
    talking.started().await?;
    let verified_before = relay.metrics.auth_verifications.get();

    let measuring = start_measuring();
    let started = Instant::now();
    let guesses = (0..50).map(|_| (100, b"wrong".to_vec())).collect();
    let (reasons, neighbour) = tokio::join!(concurrent_logins(&relay, guesses), async {
        // The right secret of another terminal behind the same address,
        // during the burst.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let login = Client::connect(relay.addr, &relay.cert, 101).await;
        (login.is_ok(), started.elapsed())
    });
    let took = started.elapsed();
    let (heap_growth, hwm_growth) = measured(measuring);
    let verified = relay.metrics.auth_verifications.get() - verified_before;
    let (_bystanders, attacked) = talking.finish().await?;
    eprintln!("bystanders quiet:              {quiet}");
    eprintln!("bystanders under wrong logins: {attacked} (the burst lasted {took:?})");
    eprintln!(
        "50 concurrent wrong secrets: {verified} verified (the neighbour's included), {} \
         refused unchecked, in {took:?}; heap peak +{} MiB, VmHWM +{:?} MiB; \
         the neighbour logged in: {} in {:?}",
        count(&reasons, pb::ErrorReason::RateLimited),
        mib(heap_growth as u64),
        hwm_growth.map(mib),
        neighbour.0,
        neighbour.1,
    );
    attacked.holds_against(&quiet).map_err(anyhow::Error::msg)?;
    assert_eq!(reasons.len(), 50);
    assert!(neighbour.0, "terminal 101 was locked out by 100's guesses");
    let guesses_verified = verified - 1;
    assert!(
        guesses_verified <= 10,
        "{guesses_verified} guesses verified for a limit of 10"
    );
    assert_eq!(
        count(&reasons, pb::ErrorReason::AuthFailed) as u64,
        guesses_verified,
        "every verified guess was wrong"
    );
    assert_eq!(
        count(&reasons, pb::ErrorReason::RateLimited) as u64,
        50 - guesses_verified,
        "the rest were refused unchecked"
    );
    // Two workers at 19 MiB at most; unbounded, the 50 hashes took 1 GB.
    assert!(
        heap_growth < 2 * DEFAULT_HASH_BYTES + SLACK_BYTES,
        "the heap grew {} MiB",
        mib(heap_growth as u64)
    );
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secrets_for_fifty_terminals_wait_in_the_pool_or_are_turned_away()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let directory = TestDirectory::new().guards(100..150).group(10, 100..150);
    let toml = production_hashes(&directory.to_toml(), secret);
    let data = tempfile::tempdir()?;
    let relay = start_on(&toml, data.path(), None, |c| {
        c.auth_hash_workers = 2;
        c.auth_hash_queue = 4;
    })
    .await?;
    Client::connect(relay.addr, &relay.cert, 149).await?;
    let verified_before = relay.metrics.auth_verifications.get();

    let measuring = start_measuring();
    // One guess per terminal: the per-terminal limit does not stop them, the
    // pool does.
    let guesses = (100..150).map(|t| (t, b"wrong".to_vec())).collect();
    let reasons = concurrent_logins(&relay, guesses).await;
    let (heap_growth, hwm_growth) = measured(measuring);
    let verified = relay.metrics.auth_verifications.get() - verified_before;
    let busy = relay.metrics.auth_busy.get();
    eprintln!(
        "50 wrong secrets for 50 terminals: {verified} verified, {busy} turned away \
         (queue full); heap peak +{} MiB, VmHWM +{:?} MiB",
        mib(heap_growth as u64),
        hwm_growth.map(mib),
    );
    assert_eq!(verified + busy, 50);
    assert_eq!(
        count(&reasons, pb::ErrorReason::AuthFailed) as u64,
        verified
    );
    assert_eq!(count(&reasons, pb::ErrorReason::RateLimited) as u64, busy);
    assert!(
        heap_growth < 2 * DEFAULT_HASH_BYTES + SLACK_BYTES,
        "the heap grew {} MiB",
        mib(heap_growth as u64)
    );
    // Turned away is not locked out: the right secret still logs in.
    Client::connect(relay.addr, &relay.cert, 100).await?;
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_secret_logs_in_where_another_terminal_behind_the_address_was_locked_out()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let directory = TestDirectory::new().guards(100..102).group(10, 100..102);
    let relay = TestRelay::start_with(&directory, |c| c.auth_failures_per_minute = 3).await?;
    for _ in 0..3 {
        let refused = Client::login(relay.addr, &relay.cert, 100, b"guess").await?;
        assert_eq!(
            refused.err().map(|e| e.reason),
            Some(i32::from(pb::ErrorReason::AuthFailed))
        );
    }
    let locked = Client::login(relay.addr, &relay.cert, 100, b"secret-100").await?;
    assert_eq!(
        locked.err().map(|e| e.reason),
        Some(i32::from(pb::ErrorReason::RateLimited)),
        "the terminal guessed at is locked out from this address"
    );
    let neighbour = Client::connect(relay.addr, &relay.cert, 101).await?;
    assert_eq!(neighbour.hello.terminal_id, 101, "its neighbour is not");
    assert_eq!(relay.metrics.auth_rate_limited.get(), 1);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_global_failure_budget_failed_logins_are_answered_late() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    const DELAY: Duration = Duration::from_millis(800);
    let directory = TestDirectory::new().guards(100..104).group(10, 100..104);
    let relay = TestRelay::start_with(&directory, |c| {
        c.auth_global_failures_per_minute = 3;
        c.auth_failure_delay = DELAY;
    })
    .await?;
    let mut timings = Vec::new();
    for terminal in [100, 101, 102, 103] {
        let started = Instant::now();
        let refused = Client::login(relay.addr, &relay.cert, terminal, b"guess").await?;
        timings.push(started.elapsed());
        assert_eq!(
            refused.err().map(|e| e.reason),
            Some(i32::from(pb::ErrorReason::AuthFailed))
        );
    }
    eprintln!("failed logins answered after {timings:?}");
    assert!(
        timings[..3].iter().all(|t| *t < DELAY),
        "within the budget: {timings:?}"
    );
    assert!(timings[3] >= DELAY, "past the budget: {timings:?}");
    assert_eq!(relay.metrics.auth_slowed.get(), 1);
    // A right secret is not slowed down.
    let started = Instant::now();
    Client::connect(relay.addr, &relay.cert, 100).await?;
    assert!(started.elapsed() < DELAY, "{:?}", started.elapsed());
    relay.stop().await?;
    Ok(())
}
