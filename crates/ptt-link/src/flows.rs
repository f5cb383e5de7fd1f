//! Reading both sides: the terminals' packets on the proxy's socket, each
//! source address with its own upstream socket to the relay, and the
//! relay's answers on those upstream sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::impairment::Direction;
use super::scheduler::Outgoing;
use super::shared::Shared;
use super::stats::Counters;

/// Most distinct terminal addresses one proxy serves; packets from more are
/// dropped. Each flow costs a socket (a file descriptor) and a task: enough
/// for `ptt load`'s largest loopback scenario (3,040 terminals).
pub(crate) const MAX_FLOWS: usize = 4096;

/// Largest UDP payload read from a terminal.
const MAX_DATAGRAM: usize = 65_535;

/// Largest UDP payload read from the relay on a flow: above any QUIC packet
/// quinn sends (its path MTU search stops at 1,452 bytes), and small
/// enough that thousands of flows cost little memory.
const MAX_RELAY_DATAGRAM: usize = 4096;

/// What both readers need to hand packets to the delay line.
#[derive(Clone)]
pub(crate) struct Forwarder {
    pub(crate) shared: Arc<Shared>,
    pub(crate) queue: mpsc::Sender<Outgoing>,
    pub(crate) cancel: CancellationToken,
}

impl Forwarder {
    /// Rolls the fate of `bytes` going `direction` and queues its copies to
    /// be sent from `socket` to `to`.
    fn forward(&self, direction: Direction, bytes: Bytes, socket: &Arc<UdpSocket>, to: SocketAddr) {
        for at in self.shared.admit(direction, Instant::now()) {
            let packet = Outgoing {
                at,
                direction,
                socket: socket.clone(),
                to,
                bytes: bytes.clone(),
            };
            if self.queue.try_send(packet).is_err() {
                Counters::bump(&self.shared.lane(direction).counters.overflowed);
            }
        }
    }
}

/// Reads the terminals' packets on `listen` and forwards them to `relay`,
/// opening an upstream socket (and its reader) per source address.
pub(crate) async fn serve_terminals(
    listen: Arc<UdpSocket>,
    relay: SocketAddr,
    forwarder: Forwarder,
) {
    let mut flows: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = tokio::select! {
            () = forwarder.cancel.cancelled() => return,
            got = listen.recv_from(&mut buf) => match got {
                Ok(got) => got,
                // ICMP errors from a vanished peer surface here; keep going.
                Err(_) => continue,
            },
        };
        let upstream = match flows.get(&from) {
            Some(socket) => socket.clone(),
            None if flows.len() >= MAX_FLOWS => {
                Counters::bump(
                    &forwarder
                        .shared
                        .lane(Direction::ToRelay)
                        .counters
                        .overflowed,
                );
                continue;
            }
            None => {
                let Ok(socket) = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
                else {
                    continue;
                };
                let socket = Arc::new(socket);
                tokio::spawn(serve_relay(
                    socket.clone(),
                    listen.clone(),
                    from,
                    forwarder.clone(),
                ));
                flows.insert(from, socket.clone());
                socket
            }
        };
        let bytes = Bytes::copy_from_slice(&buf[..len]);
        forwarder.forward(Direction::ToRelay, bytes, &upstream, relay);
    }
}

/// Reads the relay's answers to terminal `terminal` on `upstream` and
/// forwards them from `listen`, the address the terminal talks to.
async fn serve_relay(
    upstream: Arc<UdpSocket>,
    listen: Arc<UdpSocket>,
    terminal: SocketAddr,
    forwarder: Forwarder,
) {
    let mut buf = vec![0u8; MAX_RELAY_DATAGRAM];
    loop {
        let len = tokio::select! {
            () = forwarder.cancel.cancelled() => return,
            got = upstream.recv_from(&mut buf) => match got {
                Ok((len, _)) => len,
                Err(_) => continue,
            },
        };
        let bytes = Bytes::copy_from_slice(&buf[..len]);
        forwarder.forward(Direction::ToClient, bytes, &listen, terminal);
    }
}
