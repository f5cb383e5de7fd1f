//! The jitter buffer over a simulated, seeded network: latency, jitter,
//! loss, reordering and duplication, driven by a virtual clock. Edge cases
//! and arbitrary arrivals are in `jitter_cases.rs`.

use crate::common;

use std::time::{Duration, Instant};

use common::network::{Link, Rng, check_contract, drive, payload, transmit};
use ptt_client::jitter::{Arrival, JitterBuffer, JitterConfig, JitterStats, Playout};

#[test]
fn lossy_reordering_link_1000_frames() {
    let t0 = Instant::now();
    let link = Link {
        base: Duration::from_millis(40),
        jitter: Duration::from_millis(60),
        loss: 0.05,
        dup: 0.03,
    };
    for seed in 1..=5 {
        let mut rng = Rng(seed);
        let arrivals = transmit(link, &mut rng, t0, 7, 0, 1000);
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let (outputs, results) = drive(&mut jb, &arrivals);
        let (played, lost) = check_contract(&outputs, &arrivals);
        let stats = jb.stats();
        eprintln!("seed {seed}: {stats:?}");

        // Every frame between the first and the last played is accounted
        // for exactly once.
        let span = u32::from(played.last().unwrap() - played[0]) + 1;
        assert_eq!(played.len() + lost.len(), span as usize);
        assert!(span >= 990, "span {span}");
        // Most frames play; 5 % are lost by the link, a few more come late.
        assert!(played.len() > 900, "{} played", played.len());

        // The counters agree with what was seen.
        let count = |a: Arrival| results.iter().filter(|&&r| r == a).count() as u64;
        assert_eq!(stats.lost, lost.len() as u64);
        assert_eq!(stats.concealed + stats.recovered_fec, stats.lost);
        assert_eq!(stats.duplicates, count(Arrival::Duplicate));
        assert_eq!(stats.late, count(Arrival::Late));
        assert!(stats.duplicates > 10, "duplicates {}", stats.duplicates);
        assert!(stats.recovered_fec > stats.concealed, "{stats:?}");
        assert_eq!(
            stats.received,
            arrivals.len() as u64 - stats.duplicates,
            "received counts unique frames, in time or late"
        );
        // The estimate sees the 60 ms spread (a third of it for uniform
        // delays) and the target delay covers it.
        assert!((12_000..30_000).contains(&stats.jitter_us), "{stats:?}");
        assert!(stats.target_delay_us >= 60_000, "{stats:?}");
        // The burst started at the cold-start delay and stretched to what
        // the link needs, so hardly any frame missed its slot.
        assert!(stats.late <= 5, "{stats:?}");
        let delay = jb.playout_delay().unwrap();
        assert!(delay >= Duration::from_millis(60), "{delay:?}");
    }
}

/// Duplicates and late frames are dropped and counted under their name.
#[test]
fn duplicates_and_late_frames_are_counted() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    assert_eq!(jb.push(ms(0), 0, 1, 0, payload(1, 0)), Arrival::NewBurst);
    assert_eq!(jb.push(ms(1), 0, 1, 0, payload(1, 0)), Arrival::Duplicate);
    assert_eq!(
        jb.push(ms(40), 2, 1, 40_000, payload(1, 2)),
        Arrival::Buffered
    );
    assert_eq!(
        jb.push(ms(41), 2, 1, 40_000, payload(1, 2)),
        Arrival::Duplicate
    );
    // Play 0, then 1 is due and missing with 2 here: lost, FEC from 2.
    let mut outs = Vec::new();
    let mut now = t0;
    while outs.len() < 2 {
        now = jb.poll_timeout().unwrap();
        while let Some(p) = jb.pop(now) {
            outs.push(p);
        }
    }
    assert_eq!(outs[0], Playout::Frame(payload(1, 0)));
    assert_eq!(
        outs[1],
        Playout::Lost {
            fec_from: Some(payload(1, 2))
        }
    );
    // 1 arrives after its playout: late. 0 again: a duplicate of a played frame.
    assert_eq!(jb.push(now, 1, 1, 20_000, payload(1, 1)), Arrival::Late);
    assert_eq!(jb.push(now, 0, 1, 0, payload(1, 0)), Arrival::Duplicate);
    let s = jb.stats();
    assert_eq!(
        (
            s.received,
            s.duplicates,
            s.late,
            s.lost,
            s.recovered_fec,
            s.concealed
        ),
        (3, 3, 1, 1, 1, 0)
    );
}

/// One burst over `link`; returns the stats after it and the delay between
/// the first arrival and the first playout.
fn burst_over(
    jb: &mut JitterBuffer,
    link: Link,
    rng: &mut Rng,
    start: Instant,
    burst: u32,
) -> (JitterStats, Duration) {
    let arrivals = transmit(link, rng, start, burst, 0, 250);
    let (outputs, _) = drive(jb, &arrivals);
    check_contract(&outputs, &arrivals);
    let initial = outputs[0].at - arrivals[0].at;
    (jb.stats(), initial)
}

#[test]
fn target_delay_follows_jitter() {
    let t0 = Instant::now();
    let mut rng = Rng(99);
    let calm = Link {
        base: Duration::from_millis(30),
        jitter: Duration::from_millis(4),
        loss: 0.0,
        dup: 0.0,
    };
    let rough = Link {
        jitter: Duration::from_millis(80),
        ..calm
    };
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let second = Duration::from_secs(10);
    let (s1, _) = burst_over(&mut jb, calm, &mut rng, t0, 1);
    let (s2, d2) = burst_over(&mut jb, rough, &mut rng, t0 + second, 2);
    let (s3, d3) = burst_over(&mut jb, rough, &mut rng, t0 + second * 2, 3);
    let (s4, d4) = burst_over(&mut jb, calm, &mut rng, t0 + second * 3, 4);
    let (s5, d5) = burst_over(&mut jb, calm, &mut rng, t0 + second * 4, 5);
    for s in [s1, s2, s3, s4, s5] {
        eprintln!("jitter {} µs target {} µs", s.jitter_us, s.target_delay_us);
    }
    eprintln!("initial delays {d2:?} {d3:?} {d4:?} {d5:?}");
    assert!(s1.target_delay_us < 30_000, "{s1:?}");
    assert!(s2.target_delay_us > 60_000, "grows with jitter: {s2:?}");
    assert!(
        s4.target_delay_us < s3.target_delay_us / 2,
        "shrinks: {s4:?}"
    );
    assert!(s5.target_delay_us < 30_000, "{s5:?}");
    // The next burst starts with the delay learnt: long after a rough
    // burst, short after a calm one.
    assert!(d3 >= Duration::from_millis(60), "{d3:?}");
    assert!(d5 < Duration::from_millis(40), "{d5:?}");
    // A rough burst with a calm-sized delay would have lost many frames.
    assert!(
        s3.late - s2.late < 15,
        "late in the adapted burst: {}",
        s3.late - s2.late
    );
}
