//! The goal of login cost under control, measured: a fleet of 1,000
//! terminals whose secrets are hashed at production strength (argon2's
//! defaults) logs in again within 5 s after a relay restart, presenting the
//! resumption credentials of its previous login. For comparison, the same
//! fleet's first login with secrets is timed too.
//!
//! Ignored by default (hashing 1,000 production secrets takes a while on two
//! cores); run it with
//! `cargo test -p ptt-tests --test login_fleet -- --ignored --nocapture`.

mod login_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use login_support::{SERIAL, hello, production_hashes, start_on};
use ptt_proto::pb;
use tokio::sync::Semaphore;

const TERMINALS: usize = 1000;
/// Client sockets the fleet shares (a depot's NAT has few addresses too).
const ENDPOINTS: usize = 8;

/// One terminal's login: its id, what it presents, and the connection kept
/// open once logged in.
struct Login {
    terminal: u32,
    secret: Vec<u8>,
    token: Bytes,
}

/// Logs every terminal in, at most `at_once` at a time, retrying refusals
/// for load (RATE_LIMITED); returns each terminal's fresh credential, the
/// connections (open until dropped), and how many tries were turned away.
async fn log_in_all(
    endpoints: &[quinn::Endpoint],
    addr: SocketAddr,
    logins: Vec<Login>,
    at_once: usize,
) -> anyhow::Result<(HashMap<u32, Bytes>, Vec<quinn::Connection>, u64)> {
    let permits = Arc::new(Semaphore::new(at_once));
    let mut set = tokio::task::JoinSet::new();
    for (i, login) in logins.into_iter().enumerate() {
        let endpoint = endpoints[i % endpoints.len()].clone();
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let mut turned_away = 0u64;
            loop {
                let secret = if login.token.is_empty() {
                    &login.secret[..]
                } else {
                    &b""[..]
                };
                let (conn, answer) =
                    hello(&endpoint, addr, login.terminal, secret, &login.token).await?;
                match answer {
                    Ok(ok) => {
                        return anyhow::Ok((login.terminal, ok.resume_token, conn, turned_away));
                    }
                    Err(e) if e.reason == i32::from(pb::ErrorReason::RateLimited) => {
                        turned_away += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => anyhow::bail!("login of {} refused: {e:?}", login.terminal),
                }
            }
        });
    }
    let (mut tokens, mut conns, mut turned_away) = (HashMap::new(), Vec::new(), 0);
    while let Some(joined) = set.join_next().await {
        let (terminal, token, conn, retries) = joined??;
        tokens.insert(terminal, token);
        conns.push(conn);
        turned_away += retries;
    }
    Ok((tokens, conns, turned_away))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: hashes 1,000 secrets at production strength"]
async fn a_fleet_of_1000_with_production_hashes_logs_in_again_within_5s_after_a_restart()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let generated = ptt_directory::generate(TERMINALS, 10, 7)?;
    let secrets: HashMap<u32, String> = generated
        .secrets
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (id, secret) = l.split_once(' ')?;
            Some((id.parse().ok()?, secret.to_owned()))
        })
        .collect();
    let started = Instant::now();
    let toml = production_hashes(&generated.toml, |id| secrets[&id].clone());
    eprintln!(
        "hashed {TERMINALS} secrets at argon2's defaults in {:?}",
        started.elapsed()
    );
    let data = tempfile::tempdir()?;

    // First login, with secrets: every one an argon2 verification.
    let relay = start_on(&toml, data.path(), None, |_| {}).await?;
    let endpoints = (0..ENDPOINTS)
        .map(|_| ptt_tests::client::endpoint(&relay.cert))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let with_secrets: Vec<Login> = (1..=TERMINALS as u32)
        .map(|terminal| Login {
            terminal,
            secret: secrets[&terminal].clone().into_bytes(),
            token: Bytes::new(),
        })
        .collect();
    let started = Instant::now();
    let (tokens, conns, turned_away) = log_in_all(&endpoints, relay.addr, with_secrets, 64).await?;
    let first = started.elapsed();
    eprintln!(
        "first login of {TERMINALS} with secrets: {first:?} ({} verifications, {turned_away} \
         tries turned away by the full queue)",
        relay.metrics.auth_verifications.get()
    );
    drop(conns);
    relay.stop().await?;

    // Restarted on the same data directory: every terminal presents its
    // credential, all at once, as a fleet does when the relay comes back.
    let relay = start_on(&toml, data.path(), None, |_| {}).await?;
    let endpoints = (0..ENDPOINTS)
        .map(|_| ptt_tests::client::endpoint(&relay.cert))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let with_tokens: Vec<Login> = tokens
        .into_iter()
        .map(|(terminal, token)| Login {
            terminal,
            secret: Vec::new(),
            token,
        })
        .collect();
    let started = Instant::now();
    let (_, conns, turned_away) =
        log_in_all(&endpoints, relay.addr, with_tokens, TERMINALS).await?;
    let resumed = started.elapsed();
    eprintln!(
        "after the restart, {TERMINALS} with credentials: {resumed:?} ({} resumed, {} \
         verifications, {turned_away} turned away)",
        relay.metrics.auth_resumed.get(),
        relay.metrics.auth_verifications.get()
    );
    assert_eq!(relay.metrics.auth_resumed.get(), TERMINALS as u64);
    assert_eq!(relay.metrics.auth_verifications.get(), 0);
    assert!(resumed < Duration::from_secs(5), "took {resumed:?}");
    drop(conns);
    relay.stop().await?;
    Ok(())
}
