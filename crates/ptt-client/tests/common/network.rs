//! A simulated, seeded one-way network for the jitter buffer tests: a
//! link with latency, jitter, loss and duplication, the frames it
//! delivers, and the buffer driven over it by a virtual clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ptt_client::jitter::{Arrival, JitterBuffer, Playout};

pub(crate) const FRAME: Duration = Duration::from_millis(20);

/// SplitMix64: the seeded randomness of the simulated link.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A one-way path: every frame is delayed by `base` plus a uniform share of
/// `jitter` (which reorders frames when it exceeds 20 ms), dropped with
/// probability `loss`, and duplicated with probability `dup`.
#[derive(Clone, Copy)]
pub(crate) struct Link {
    pub(crate) base: Duration,
    pub(crate) jitter: Duration,
    pub(crate) loss: f64,
    pub(crate) dup: f64,
}

/// A frame as it arrives.
#[derive(Clone, Debug)]
pub(crate) struct Datagram {
    pub(crate) at: Instant,
    pub(crate) seq: u16,
    pub(crate) burst: u32,
    pub(crate) sent_us: u64,
}

pub(crate) fn payload(burst: u32, seq: u16) -> Bytes {
    let mut p = burst.to_be_bytes().to_vec();
    p.extend_from_slice(&seq.to_be_bytes());
    Bytes::from(p)
}

pub(crate) fn unpack(p: &Bytes) -> (u32, u16) {
    (
        u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
        u16::from_be_bytes([p[4], p[5]]),
    )
}

/// Sends `count` frames of `burst` from `first_seq`, the first captured at
/// `start`, over `link`; returns what arrives, in arrival order.
pub(crate) fn transmit(
    link: Link,
    rng: &mut Rng,
    start: Instant,
    burst: u32,
    first_seq: u16,
    count: u32,
) -> Vec<Datagram> {
    let mut out = Vec::new();
    for i in 0..count {
        if rng.unit() < link.loss {
            continue;
        }
        let sent = start + FRAME * i;
        let copies = if rng.unit() < link.dup { 2 } else { 1 };
        for _ in 0..copies {
            let delay = link.base + link.jitter.mul_f64(rng.unit());
            out.push(Datagram {
                at: sent + delay,
                seq: first_seq.wrapping_add(i as u16),
                burst,
                // Sender clock: an arbitrary epoch plus capture time.
                sent_us: 1_700_000_000_000_000 + u64::from(i) * 20_000,
            });
        }
    }
    out.sort_by_key(|d| d.at);
    out
}

/// What came out of the buffer, and when.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) at: Instant,
    pub(crate) playout: Playout,
}

/// Runs the buffer event by event: each arrival at its time, each pop at the
/// buffer's own `poll_timeout`. Returns the outputs and the push results.
pub(crate) fn drive(jb: &mut JitterBuffer, arrivals: &[Datagram]) -> (Vec<Output>, Vec<Arrival>) {
    let mut outputs = Vec::new();
    let mut results = Vec::new();
    let mut clock = arrivals.first().map(|d| d.at);
    let mut next = 0;
    loop {
        let arrival = arrivals.get(next).map(|d| d.at);
        let timeout = jb.poll_timeout();
        let Some(now) = clock else { break };
        match (arrival, timeout) {
            (None, None) => break,
            (Some(a), t) if t.is_none_or(|t| a <= t) => {
                let d = &arrivals[next];
                let now = now.max(a);
                clock = Some(now);
                results.push(jb.push(now, d.seq, d.burst, d.sent_us, payload(d.burst, d.seq)));
                next += 1;
            }
            (_, Some(t)) => {
                let now = now.max(t);
                clock = Some(now);
                while let Some(playout) = jb.pop(now) {
                    outputs.push(Output { at: now, playout });
                }
                // A held tick pops nothing but moves the timeout on.
                assert_ne!(jb.poll_timeout(), Some(t), "livelock at {t:?}");
            }
            (Some(_), None) => unreachable!(),
        }
    }
    (outputs, results)
}

/// Checks the core contract on one burst and returns the played and lost
/// sequences: outputs are consecutive sequences, each once; a frame is played
/// only if it arrived by then; a loss is declared only if it had not; FEC is
/// offered exactly when the next frame was there.
pub(crate) fn check_contract(outputs: &[Output], arrivals: &[Datagram]) -> (Vec<u16>, Vec<u16>) {
    let mut first_arrival: HashMap<u16, Instant> = HashMap::new();
    for d in arrivals {
        first_arrival.entry(d.seq).or_insert(d.at);
    }
    let arrived_by = |seq: u16, t: Instant| first_arrival.get(&seq).is_some_and(|&a| a <= t);
    let (mut played, mut lost) = (Vec::new(), Vec::new());
    let mut expected: Option<u16> = None;
    for o in outputs {
        match &o.playout {
            Playout::Frame(p) => {
                let (_, seq) = unpack(p);
                if let Some(e) = expected {
                    assert_eq!(seq, e, "frames out of order or skipped");
                }
                assert!(arrived_by(seq, o.at));
                played.push(seq);
                expected = Some(seq.wrapping_add(1));
            }
            Playout::Lost { fec_from } => {
                let seq = expected.expect("a stream starts with a frame");
                assert!(!arrived_by(seq, o.at), "frame {seq} was there");
                let next = seq.wrapping_add(1);
                match fec_from {
                    Some(p) => assert_eq!(unpack(p).1, next),
                    None => assert!(!arrived_by(next, o.at), "FEC for {seq} not offered"),
                }
                lost.push(seq);
                expected = Some(next);
            }
        }
    }
    (played, lost)
}
