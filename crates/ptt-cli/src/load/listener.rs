//! One listener's receive side: every frame counted, classified (in order,
//! reordered, duplicate) and timed, at the kernel's receive stamp where it
//! is known; and, at the probes, played out for real.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ptt_client::jitter::{JitterBuffer, JitterConfig};
use ptt_client::{Client, Event};
use tokio::sync::watch;

use super::probe::Probe;
use super::stamp::{Arrivals, unix_us};
use super::stats::{Arrival, ListenerRx};
use super::totals::{Totals, duration_us};

/// One terminal's receive side: counts, classifies and times every frame.
pub(super) async fn listen(
    client: Client,
    totals: Arc<Totals>,
    mut stop: watch::Receiver<bool>,
    mut probe: Option<Probe>,
    arrivals: Option<Arc<Arrivals>>,
) {
    let me = client.terminal_id();
    let mut events = client.events();
    let mut rx = ListenerRx::default();
    let mut jitter: HashMap<u32, JitterBuffer> = HashMap::new();
    // The latest burst heard in each group.
    let mut bursts: HashMap<u32, u32> = HashMap::new();
    let mut played = Vec::new();
    loop {
        let due = probe
            .as_ref()
            .and_then(Probe::next_due)
            .unwrap_or_else(Probe::idle);
        let event = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            () = tokio::time::sleep_until(due.into()) => {
                if let Some(probe) = probe.as_mut() {
                    probe.play(Instant::now(), &mut played);
                    let mut hists = totals.hists();
                    for us in played.drain(..) {
                        hists.mouth_to_ear.record_us(us);
                    }
                }
                continue;
            }
            event = events.recv() => event,
        };
        let frame = match event {
            Some(Event::Voice(frame)) => frame,
            Some(Event::Lagged { missed }) => {
                totals.lagged.fetch_add(missed, Ordering::Relaxed);
                continue;
            }
            Some(_) => continue,
            None => break,
        };
        if frame.talker == me {
            continue;
        }
        let now = Instant::now();
        // The kernel's receive time of the frame's packet at the listener's
        // socket where it is known; else when the client library read it.
        let datagram_len = ptt_proto::voice::HEADER_LEN + frame.payload.len();
        let claimed = arrivals.as_ref().and_then(|a| a.claim(datagram_len));
        // A burst's first frame follows its floor message closely, which
        // may be of the same size: its claim only keeps the queue in step.
        let first_of_burst = bursts.insert(frame.group, frame.burst) != Some(frame.burst);
        let socket_stamp = claimed.filter(|_| !first_of_burst);
        let received_us = socket_stamp
            .unwrap_or_else(|| unix_us().saturating_sub(duration_us(now - frame.received_at)));
        match rx.arrive(frame.group, frame.burst, frame.sequence) {
            Arrival::Duplicate => {
                totals.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Arrival::Reordered => {
                totals.reordered.fetch_add(1, Ordering::Relaxed);
            }
            Arrival::InOrder => {}
        }
        totals.frames_received.fetch_add(1, Ordering::Relaxed);
        if let Some(probe) = probe.as_mut().filter(|p| p.group() == frame.group) {
            probe.arrive(&frame);
        }
        let one_way = received_us.saturating_sub(frame.sender_timestamp_us);
        // Mouth-to-ear approximation at every listener: one-way plus the
        // playout delay its jitter buffer applies to this burst.
        let jb = jitter
            .entry(frame.group)
            .or_insert_with(|| JitterBuffer::new(JitterConfig::default()));
        let _ = jb.push(
            frame.received_at,
            frame.sequence,
            frame.burst,
            frame.sender_timestamp_us,
            frame.payload.clone(),
        );
        let playout = jb.playout_delay().map(duration_us);
        while jb.pop(now).is_some() {}
        if frame.last {
            jb.end_burst();
        }
        let mut hists = totals.hists();
        hists.one_way.record_us(one_way);
        if socket_stamp.is_some() {
            hists.one_way_socket.record_us(one_way);
        }
        if let Some(delay) = playout {
            hists.mouth_to_ear_approx.record_us(one_way + delay);
        }
    }
    if let Some(arrivals) = &arrivals {
        totals
            .listener_socket_drops
            .fetch_add(arrivals.overflowed(), Ordering::Relaxed);
    }
    // How often this listener acknowledged the relay's packets: what each
    // voice datagram costs the relay in ACK processing.
    if let Some(quic) = client.quic_stats() {
        totals
            .listener_acks
            .fetch_add(quic.frame_tx.acks, Ordering::Relaxed);
        totals
            .listener_datagrams
            .fetch_add(quic.frame_rx.datagram, Ordering::Relaxed);
    }
    if let Some(probe) = probe {
        totals
            .decode_errors
            .fetch_add(probe.decode_errors, Ordering::Relaxed);
    }
}
