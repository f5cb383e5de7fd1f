//! What the login tests share: directories whose secrets are hashed at
//! production strength (argon2's defaults), a relay on a data directory the
//! test keeps (to restart on it), a raw `Hello` that can present a
//! resumption credential, and the process's memory figures.

#![allow(dead_code)] // each test binary uses a different subset

pub(crate) mod heap;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use ptt_directory::{HashParams, hash_secret};
use ptt_proto::framing::{self, Decoder};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_relay::config::Config;
use ptt_tests::{PATIENCE, TestDirectory, TestRelay};
use tokio::sync::Mutex;

/// The admin token of relays started by [`start_on`].
pub(crate) const ADMIN_TOKEN: &str = "login-cost-admin-token-0123456789";

/// Held by each test of a binary: they measure memory and time, and hash at
/// production strength on a shared two-core machine.
pub(crate) static SERIAL: Mutex<()> = Mutex::const_new(());

/// `toml` (a directory) with every `secret-hash` replaced by a hash of
/// `secret_of(id)` made with argon2's default parameters (19 MiB, t=2), the
/// strength an operator's directory has. Hashed on every core.
pub(crate) fn production_hashes(toml: &str, secret_of: impl Fn(u32) -> String + Sync) -> String {
    let mut lines: Vec<String> = toml.lines().map(str::to_owned).collect();
    let mut id = 0u32;
    let mut jobs = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        if let Some(value) = line.strip_prefix("id = ") {
            if let Ok(n) = value.trim().parse() {
                id = n;
            }
        } else if line.starts_with("secret-hash") {
            jobs.push((at, id));
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = jobs.len().div_ceil(cores).max(1);
    let hashed: Vec<(usize, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                let secret_of = &secret_of;
                s.spawn(move || {
                    part.iter()
                        .map(|&(at, id)| {
                            let hash = hash_secret(secret_of(id).as_bytes(), HashParams::DEFAULT)
                                .expect("hash");
                            (at, format!("secret-hash = \"{hash}\""))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("hashing thread"))
            .collect()
    });
    for (at, line) in hashed {
        lines[at] = line;
    }
    lines.join("\n") + "\n"
}

/// Starts a relay serving the directory `toml` on the data directory `data`
/// (the resumption key and the certificate live there), on `listen` if
/// given, with the admin API on ([`ADMIN_TOKEN`]), after `tweak`. A port
/// the previous relay still holds is tried again for a while: its socket is
/// released once its last connection is gone.
pub(crate) async fn start_on(
    toml: &str,
    data: &Path,
    listen: Option<SocketAddr>,
    tweak: impl Fn(&mut Config),
) -> anyhow::Result<TestRelay> {
    let path = data.join("directory.toml");
    std::fs::write(&path, toml)?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (data, path) = (data.to_owned(), path.clone());
        let started = TestRelay::start_with(&TestDirectory::new(), |config| {
            config.data_dir = data;
            config.directory = Some(path);
            config.admin_token = Some(ADMIN_TOKEN.parse().expect("token"));
            if let Some(listen) = listen {
                config.listen = listen;
            }
            tweak(config);
        })
        .await;
        match started {
            Err(error)
                if listen.is_some()
                    && tokio::time::Instant::now() < deadline
                    && format!("{error:#}").contains("in use") =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// Connects from `endpoint` and says `Hello` as `terminal` with `secret`
/// and `token` (either may be empty). Returns the connection (dropping it
/// ends the session) and the relay's answer.
pub(crate) async fn hello(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    terminal: u32,
    secret: &[u8],
    token: &[u8],
) -> anyhow::Result<(quinn::Connection, Result<pb::HelloOk, pb::Error>)> {
    let conn = endpoint
        .connect(addr, "localhost")?
        .await
        .context("QUIC handshake")?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let frame = framing::encode_to_bytes(&pb::ClientMessage {
        request_id: 1,
        body: Some(Request::Hello(pb::Hello {
            protocol_version: 1,
            terminal_id: terminal,
            secret: Bytes::copy_from_slice(secret),
            client_version: "ptt-tests/login".into(),
            capabilities: Some(pb::Capabilities {
                datagrams: true,
                ..Default::default()
            }),
            resume_token: Bytes::copy_from_slice(token),
        })),
    })?;
    send.write_all(&frame).await?;
    let mut decoder = Decoder::new();
    let answer = tokio::time::timeout(PATIENCE, async {
        loop {
            while let Some(message) = decoder.decode::<pb::ServerMessage>()? {
                if message.request_id == 1 {
                    return anyhow::Ok(message.body);
                }
            }
            match recv.read_chunk(framing::MAX_MESSAGE_SIZE, true).await {
                Ok(Some(chunk)) => decoder.extend(&chunk.bytes),
                Ok(None) => bail!("control stream ended before the hello answer"),
                // Under load the relay may close (code 2, the reason in the
                // close) before its `Error` is read: the close says it too.
                Err(error) => match refusal_in_close(&conn) {
                    Some(refusal) => return Ok(Some(Body::Error(refusal))),
                    None => return Err(error.into()),
                },
            }
        }
    })
    .await
    .context("no hello answer in time")??;
    let answer = match answer {
        Some(Body::HelloOk(ok)) => Ok(ok),
        Some(Body::Error(error)) => Err(error),
        other => bail!("unexpected answer to hello: {other:?}"),
    };
    Ok((conn, answer))
}

/// The refusal a connection closed with application code 2 (voice.md §1)
/// stands for, read from the close reason as the client library does.
fn refusal_in_close(conn: &quinn::Connection) -> Option<pb::Error> {
    match conn.close_reason()? {
        quinn::ConnectionError::ApplicationClosed(close) if u64::from(close.error_code) == 2 => {
            let detail = String::from_utf8_lossy(&close.reason).into_owned();
            let reason = if detail.contains("rate") {
                pb::ErrorReason::RateLimited
            } else {
                pb::ErrorReason::AuthFailed
            };
            Some(pb::Error {
                reason: reason.into(),
                detail,
            })
        }
        _ => None,
    }
}

/// One `kB` figure of /proc/self/status (`VmRSS`, `VmHWM`).
pub(crate) fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the process's peak resident memory (`VmHWM`) to its current
/// resident memory; false where the kernel does not allow it.
pub(crate) fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
