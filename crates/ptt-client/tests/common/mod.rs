//! What the client's end-to-end tests share: the patience of a test, test
//! secrets, and waiting for one event; the session tests' relay (`relay`)
//! and talk bursts (`burst`); the jitter tests' simulated network
//! (`network`).
#![allow(dead_code)]

use std::time::Duration;

use anyhow::{Context, bail};
use ptt_client::{Event, Events};

pub(crate) mod burst;
pub(crate) mod network;
pub(crate) mod relay;

/// How long a test waits for something that should happen at once on
/// loopback (generous: the machine is shared).
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// The secret of test terminal `id`.
pub(crate) fn secret(id: u32) -> String {
    format!("secret-{id}")
}

/// The first event `pick` accepts, within [`PATIENCE`].
pub(crate) async fn expect<T>(
    events: &mut Events,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Some(event) => {
                    if let Some(found) = pick(&event) {
                        return Ok(found);
                    }
                }
                None => bail!("event stream closed"),
            }
        }
    })
    .await
    .context("expected event did not arrive")?
}
