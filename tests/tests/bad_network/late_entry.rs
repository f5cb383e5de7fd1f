//! Late entry under loss: a terminal that joins its group while a burst
//! runs, through 10 % loss both ways, is told who talks and hears the rest
//! of the burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use ptt_client::Event;
use ptt_tests::lossy::{Impairment, LossyProxy, seed_or};
use ptt_tests::{TestRelay, opus};

use crate::{GROUP, directory, next_event, talk_paced, terminal};

/// Longest time from sending the join to hearing the burst's next frame:
/// the join's round trip (retransmitted after a probe timeout if lost)
/// plus one 20 ms frame, or two or three when the next frames are lost.
const FIRST_FRAME_BOUND: Duration = Duration::from_secs(2);
/// Frames of the burst: 4 s.
const FRAMES: u16 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_joining_mid_burst_through_loss_hears_the_rest() -> anyhow::Result<()> {
    let _shared = crate::LATENCY_BAR.read().await;
    let seed = seed_or(4);
    let relay = TestRelay::start(&directory(100..102)).await?;
    let proxy = LossyProxy::start(relay.addr, seed).await?;
    let talker = terminal(&relay, relay.addr, 100).await?;
    let late = terminal(&relay, proxy.addr(), 101).await?;
    late.leave(GROUP).await?;
    proxy.set_both(Impairment::loss(0.1));

    let pushed = Arc::new(AtomicU16::new(0));
    let talking = tokio::spawn({
        let (talker, pushed) = (talker.clone(), pushed.clone());
        let frames = (0..FRAMES).map(|s| opus::packet(s, 60)).collect();
        async move { talk_paced(&talker, frames, pushed).await }
    });
    // One second into the burst, the late terminal joins.
    tokio::time::timeout(Duration::from_secs(10), async {
        while pushed.load(Ordering::Relaxed) < 50 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await?;
    let mut events = late.events();
    let asked = Instant::now();
    let at_join = pushed.load(Ordering::Relaxed);
    let joined = tokio::time::timeout(Duration::from_secs(5), late.join(GROUP)).await??;
    let join_took = asked.elapsed();
    let floor = joined
        .floor
        .ok_or_else(|| anyhow::anyhow!("JoinOk without the holder"))?;
    assert_eq!(floor.holder_terminal_id, 100, "told who talks");

    let first = next_event(&mut events, FIRST_FRAME_BOUND, |e| match e {
        Event::Voice(frame) if frame.burst == floor.burst_id => Some(frame.sequence),
        _ => None,
    })
    .await;
    let first_took = asked.elapsed();
    let first = first
        .ok_or_else(|| anyhow::anyhow!("nothing heard within {FIRST_FRAME_BOUND:?} of the join"))?;
    let mut heard = std::collections::BTreeSet::from([first]);
    while let Some(sequence) = next_event(&mut events, Duration::from_millis(500), |e| match e {
        Event::Voice(frame) if frame.burst == floor.burst_id => Some(frame.sequence),
        _ => None,
    })
    .await
    {
        heard.insert(sequence);
    }
    talking.await??;
    // The rest of the burst: from the frame being pushed when the join was
    // sent (the join took effect at the relay somewhat later).
    let rest = FRAMES - at_join;
    let heard_of_rest = heard.range(at_join..).count();
    eprintln!(
        "seed {seed}: joined at frame {at_join} in {join_took:?}; first frame (#{first}) after \
         {first_took:?}; heard {heard_of_rest} of the {rest} frames after the join; proxy {:?}",
        proxy.stats()
    );
    assert!(
        heard_of_rest * 4 >= usize::from(rest) * 3,
        "heard only {heard_of_rest} of {rest} frames at 10 % loss"
    );
    assert!(proxy.stats().to_client.lost > 0, "loss really happened");
    relay.stop().await?;
    Ok(())
}
