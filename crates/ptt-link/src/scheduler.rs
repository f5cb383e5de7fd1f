//! The proxy's delay line: packets wait in one bounded heap until their
//! send time, so a packet with less jitter overtakes one with more.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::impairment::Direction;
use super::shared::Shared;
use super::stats::Counters;

/// Most packets waiting for their send time, both directions together;
/// more are dropped (counted as overflowed). At 1 ms of delay that is far
/// more than a test sends; it only bounds memory against a runaway test.
pub(crate) const MAX_WAITING: usize = 8192;

/// A packet to send at a given time.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// When to send it.
    pub(crate) at: Instant,
    /// Which way it goes (for the counters and the blackout check).
    pub(crate) direction: Direction,
    /// The socket to send it from.
    pub(crate) socket: Arc<UdpSocket>,
    /// Where to send it.
    pub(crate) to: SocketAddr,
    /// The packet.
    pub(crate) bytes: Bytes,
}

/// A waiting packet, ordered by send time and then arrival order.
struct Waiting {
    at: Instant,
    order: u64,
    packet: Outgoing,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// Sends every packet from `incoming` at its time until `cancel` fires.
/// A packet whose direction is blacked out when its time comes is dropped.
pub(crate) async fn run(
    mut incoming: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let mut heap: BinaryHeap<Reverse<Waiting>> = BinaryHeap::new();
    let mut order = 0u64;
    loop {
        let next = heap.peek().map(|w| w.0.at);
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            packet = incoming.recv() => {
                let Some(packet) = packet else { return };
                if heap.len() >= MAX_WAITING {
                    Counters::bump(&shared.lane(packet.direction).counters.overflowed);
                } else {
                    order += 1;
                    heap.push(Reverse(Waiting { at: packet.at, order, packet }));
                }
            }
            () = sleep => {
                let now = Instant::now();
                while heap.peek().is_some_and(|w| w.0.at <= now) {
                    let Some(Reverse(waiting)) = heap.pop() else { break };
                    send(&shared, waiting.packet).await;
                }
            }
        }
    }
}

/// Sends one packet now, unless its direction went dark meanwhile.
async fn send(shared: &Shared, packet: Outgoing) {
    let counters = &shared.lane(packet.direction).counters;
    if shared.blacked_out(packet.direction) {
        Counters::bump(&counters.blacked_out);
        return;
    }
    // A send error (peer gone, buffer full) is loss on a lossy link.
    if packet
        .socket
        .send_to(&packet.bytes, packet.to)
        .await
        .is_ok()
    {
        Counters::bump(&counters.forwarded);
    }
}
