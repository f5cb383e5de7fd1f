//! A listener whose link goes dark mid-burst does not slow the others: the
//! relay keeps sending it datagrams that are never acknowledged, its
//! congestion window fills and its queue drops the oldest, while every other
//! listener — on its shard and on the other — hears every frame in time.

use std::collections::BTreeSet;
use std::time::Duration;

use ptt_tests::bystander::Bystanders;
use ptt_tests::lossy::{LossyProxy, seed_or};
use ptt_tests::{Client, TestDirectory, TestRelay};

const GROUP: u32 = 900;
const TALKER: u32 = 900;
const LISTENERS: std::ops::RangeInclusive<u32> = 901..=920;
const DARK: u32 = 921;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_gone_dark_mid_burst_does_not_slow_the_others() -> anyhow::Result<()> {
    let _alone = crate::LATENCY_BAR.write().await;
    let everyone = TALKER..=DARK;
    let directory = TestDirectory::new()
        .guards(everyone.clone())
        .group(GROUP, everyone);
    let relay = TestRelay::start_with(&directory, |config| config.shards = 2).await?;
    let proxy = LossyProxy::start(relay.addr, seed_or(9)).await?;
    let dark = Client::connect(proxy.addr(), &relay.cert, DARK).await?;
    let mut bystanders =
        Bystanders::start(relay.addr, &relay.cert, GROUP, TALKER, LISTENERS).await?;
    let shards: BTreeSet<u8> = relay
        .groups
        .get(GROUP)
        .expect("group")
        .listeners()
        .iter()
        .map(|link| link.shard)
        .collect();
    assert_eq!(shards, BTreeSet::from([0, 1]), "listeners on both shards");

    let quiet = bystanders.measure(100).await?;
    println!("quiet, the dark listener still listening: {quiet}");

    let mut measuring = bystanders.spawn_measure(150);
    measuring.started().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.blackout(true);
    let (_bystanders, dark_figures) = measuring.finish().await?;
    let stats = proxy.stats();
    println!("while one listener is dark: {dark_figures}; proxy {stats:?}");
    assert!(
        stats.to_client.blacked_out > 0,
        "the relay went on sending to the dark listener: {stats:?}"
    );
    if let Err(why) = dark_figures.holds_against(&quiet) {
        panic!("{why}");
    }
    drop(dark);
    relay.stop().await?;
    Ok(())
}
