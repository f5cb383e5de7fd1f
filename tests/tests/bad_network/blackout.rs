//! A 5 s blackout of one terminal: afterwards it is back in its group (its
//! connection survived or it reconnected) and hears the talker, within a
//! stated time.

use std::sync::Arc;
use std::sync::atomic::AtomicU16;
use std::time::{Duration, Instant};

use ptt_client::Event;
use ptt_proto::pb;
use ptt_tests::lossy::{LossyProxy, seed_or};
use ptt_tests::{TestRelay, opus};
use tokio_util::sync::CancellationToken;

use crate::{GROUP, directory, next_event, talk_paced, terminal};

/// How long the terminal's link is dark.
const BLACKOUT: Duration = Duration::from_secs(5);
/// Longest time from the end of the blackout until the terminal hears the
/// talker again. The relay's 5 s QUIC idle timeout ends the dark connection
/// about when the blackout ends; the client then retries every ≤ 1 s, and an
/// attempt started in the dark gives up after its 3 s connect timeout (or
/// its handshake's next retransmission, 1–2 s, gets through). So ≤ 3 s +
/// 1 s + a handshake on loopback; 10 s leaves room for a slow machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_back_from_a_5s_blackout_is_in_its_group_again() -> anyhow::Result<()> {
    let _shared = crate::LATENCY_BAR.read().await;
    let seed = seed_or(5);
    let relay = TestRelay::start(&directory(100..102)).await?;
    let proxy = LossyProxy::start(relay.addr, seed).await?;
    let talker = terminal(&relay, relay.addr, 100).await?;
    let victim = terminal(&relay, proxy.addr(), 101).await?;
    let mut events = victim.events();

    proxy.blackout(true);
    tokio::time::sleep(BLACKOUT).await;
    proxy.blackout(false);
    let back = Instant::now();
    let dark = proxy.stats();
    assert!(
        dark.to_relay.blacked_out > 0 && dark.to_client.blacked_out > 0,
        "the blackout dropped packets both ways: {dark:?}"
    );

    // The talker talks from the end of the blackout on, until heard.
    let press = talker.press(GROUP, pb::Priority::Normal, pb::FloorKind::Normal);
    let burst = tokio::time::timeout(Duration::from_secs(5), press.granted())
        .await??
        .burst;
    let stop = CancellationToken::new();
    let talking = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for sequence in 0u16.. {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {
                        if press.push_frame(opus::packet(sequence, 60)).is_err() {
                            break;
                        }
                    }
                }
            }
            press.release().await
        }
    });

    let mut lost_and_back = Vec::new();
    let heard = next_event(&mut events, RECOVERY_BOUND, |e| match e {
        Event::Voice(frame) if frame.burst == burst => Some(frame),
        Event::Disconnected { reason, .. } => {
            lost_and_back.push(format!("disconnected ({reason}) at +{:?}", back.elapsed()));
            None
        }
        Event::Reconnected { groups, .. } => {
            lost_and_back.push(format!(
                "reconnected to {groups:?} at +{:?}",
                back.elapsed()
            ));
            None
        }
        _ => None,
    })
    .await;
    let recovery = back.elapsed();
    stop.cancel();
    talking.await?;
    eprintln!(
        "seed {seed}: {BLACKOUT:?} blackout; heard the talker {recovery:?} after it ended; \
         {lost_and_back:?}; reconnects {}; proxy {:?}",
        victim.stats().reconnects,
        proxy.stats()
    );
    let frame = heard.ok_or_else(|| {
        anyhow::anyhow!("not heard within {RECOVERY_BOUND:?} of the blackout's end")
    })?;
    assert_eq!(frame.talker, 100);
    assert!(victim.is_connected());
    assert_eq!(victim.joined(), vec![GROUP], "back in its group");

    // And the next burst is heard from its start.
    let pushed = Arc::new(AtomicU16::new(0));
    let frames = (0..25).map(|s| opus::packet(s, 60)).collect();
    let next = talk_paced(&talker, frames, pushed).await?;
    let first = next_event(&mut events, Duration::from_secs(3), |e| match e {
        Event::Voice(frame) if frame.burst == next => Some(frame.sequence),
        _ => None,
    })
    .await;
    assert!(first.is_some(), "the next burst {next} was not heard");
    relay.stop().await?;
    Ok(())
}
