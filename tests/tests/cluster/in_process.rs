//! Relays of one cluster in the test's own process (`TestRelay`), for the
//! tests that need no process of their own to kill.

use ptt_relay::config::Config;
use ptt_tests::nats::NatsServer;
use ptt_tests::{TestDirectory, TestRelay};

/// Relay `id` of the cluster on `nats`, serving `directory`, after `tweak`
/// adjusted its config.
pub(crate) async fn relay(
    nats: &NatsServer,
    directory: &TestDirectory,
    id: &str,
    tweak: impl FnOnce(&mut Config),
) -> anyhow::Result<TestRelay> {
    TestRelay::start_with(directory, |config| {
        config.cluster = Some(nats.url());
        config.relay_id = Some(id.to_owned());
        tweak(config);
    })
    .await
}

/// Relays `ids` of the cluster on `nats`, each serving `directory`.
pub(crate) async fn relays(
    nats: &NatsServer,
    directory: &TestDirectory,
    ids: &[&str],
) -> anyhow::Result<Vec<TestRelay>> {
    let mut relays = Vec::new();
    for id in ids {
        relays.push(relay(nats, directory, id, |_| {}).await?);
    }
    Ok(relays)
}
