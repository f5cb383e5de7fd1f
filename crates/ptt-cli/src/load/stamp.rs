//! Listener sockets that note when the kernel received each packet
//! (`SO_TIMESTAMPNS`), so a listener's one-way latency ends where the relay's
//! part of it ends: at the listener's socket, not after the generator got
//! round to decrypting the packet.
//!
//! Each listener has a client endpoint of its own over a [`StampingSocket`]:
//! quinn sends through its own socket code, and receives through this one,
//! which reads one datagram per `recvmsg` and queues the kernel's receive
//! time and the packet's length in the listener's [`Arrivals`]. The packets
//! are encrypted, so which one carried a frame is told by order and size: a
//! relay's voice packet is a QUIC short header, one DATAGRAM frame and the
//! AEAD tag, [`VOICE_PACKET_OVERHEAD`] bytes more than the voice datagram.
//! The listener takes the oldest queued packet of that size, dropping the
//! packets before it (acknowledgements, control messages). A frame whose
//! packet carried more (two frames in one packet) finds none and is stamped
//! when the client library read it, which errs long; so is a burst's first
//! frame, whose packet could be mistaken for the floor message just before
//! it. The report says how many frames were stamped each way.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::io::Interest;

/// Bytes a relay's voice packet adds to its voice datagram: flags (1), the
/// destination connection id (8, quinn's default length for the ids this
/// endpoint issues), packet number (1–4), DATAGRAM frame type (1) and length
/// (1–2), AEAD tag (16); and on about half of them an acknowledgement of the
/// listener's own packets riding along (up to 12). Acknowledgement-only
/// packets are far smaller than any voice packet.
pub(crate) const VOICE_PACKET_OVERHEAD: RangeInclusive<usize> = 28..=44;

/// Packets queued per listener at most: a listener this far behind has its
/// oldest forgotten (their frames are then stamped when read).
const QUEUED: usize = 32;

/// The kernel's receive times and lengths of a listener's packets not yet
/// matched to a frame. Written by its socket and read by its listener, both
/// on the same lane thread: the lock is never contended.
#[derive(Debug, Default)]
pub(crate) struct Arrivals {
    queue: Mutex<VecDeque<Packet>>,
    /// Packets the kernel dropped because the socket's receive buffer was
    /// full (`SO_RXQ_OVFL`): lost because the generator did not read in
    /// time, not on the relay's side. The kernel tells the count with each
    /// packet queued after a drop, so this is the count as of the latest
    /// such packet read.
    overflowed: AtomicU64,
}

/// One received packet.
#[derive(Debug, Clone, Copy)]
struct Packet {
    stamp_us: u64,
    len: usize,
}

impl Arrivals {
    /// The kernel's receive time (unix µs) of the packet that carried a
    /// `datagram_len`-byte voice datagram: the oldest queued packet of a
    /// voice packet's size; the packets before it are dropped. `None` if
    /// there is none (or the kernel gave no stamp).
    pub(crate) fn claim(&self, datagram_len: usize) -> Option<u64> {
        let fits = (datagram_len + VOICE_PACKET_OVERHEAD.start())
            ..=(datagram_len + VOICE_PACKET_OVERHEAD.end());
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(packet) = queue.pop_front() {
            if fits.contains(&packet.len) {
                return (packet.stamp_us > 0).then_some(packet.stamp_us);
            }
        }
        None
    }

    /// Packets the kernel dropped at this listener's socket so far.
    pub(crate) fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Notes a `len`-byte packet the kernel received at `stamp_us`.
    fn arrived(&self, stamp_us: u64, len: usize) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() == QUEUED {
            queue.pop_front();
        }
        queue.push_back(Packet { stamp_us, len });
    }
}

/// A client endpoint whose socket stamps every received packet into the
/// returned [`Arrivals`]. Made inside the runtime that drives it.
pub(crate) fn stamping_endpoint() -> io::Result<(quinn::Endpoint, Arc<Arrivals>)> {
    let arrivals = Arc::new(Arrivals::default());
    let socket = StampingSocket::bind(arrivals.clone())?;
    let endpoint = quinn::Endpoint::new_with_abstract_socket(
        quinn::EndpointConfig::default(),
        None,
        Arc::new(socket),
        Arc::new(quinn::TokioRuntime),
    )?;
    Ok((endpoint, arrivals))
}

/// One UDP socket, one file descriptor: quinn-udp's socket code sends
/// through it, and it is read here with `recvmsg` for the receive
/// timestamps. (A duplicate descriptor per listener would halve the
/// terminals a generator can run under the process's file limit.)
struct StampingSocket {
    io: tokio::net::UdpSocket,
    state: quinn::udp::UdpSocketState,
    arrivals: Arc<Arrivals>,
}

impl fmt::Debug for StampingSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StampingSocket")
            .field("local", &self.io.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl StampingSocket {
    fn bind(arrivals: Arc<Arrivals>) -> io::Result<Self> {
        let socket = std::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        socket.set_nonblocking(true)?;
        let state = quinn::udp::UdpSocketState::new((&socket).into())?;
        // quinn-udp turns on receive offload (several datagrams in one
        // read); this socket reads them one at a time, each with its stamp.
        let _ = setsockopt(&socket, sockopt::UdpGroSegment, &false);
        stamp_arrivals(&socket)?;
        Ok(Self {
            io: tokio::net::UdpSocket::from_std(socket)?,
            state,
            arrivals,
        })
    }

    /// Reads one datagram into `buf`: its length, sender and kernel
    /// receive time (unix µs, 0 if the kernel gave none).
    fn read_one(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, u64)> {
        let read = recv_stamped(&self.io, buf)?;
        if let Some(dropped) = read.overflowed {
            self.arrivals.overflowed.store(dropped, Ordering::Relaxed);
        }
        let from = read
            .from
            .ok_or_else(|| io::Error::other("datagram without a sender address"))?;
        Ok((read.len, from, read.stamp_us))
    }
}

/// Now, in µs since the Unix epoch: the clock (`CLOCK_REALTIME`) the
/// kernel's receive stamps are on, so a send time taken here and a
/// [`recv_stamped`] stamp on this machine make a one-way latency.
#[must_use]
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Asks the kernel to stamp each datagram `socket` receives with its
/// receive time (`SO_TIMESTAMPNS`) and to count the datagrams it drops for
/// a full receive buffer (`SO_RXQ_OVFL`); [`recv_stamped`] reads both.
pub fn stamp_arrivals(socket: &impl AsFd) -> io::Result<()> {
    setsockopt(socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)?;
    setsockopt(socket, sockopt::RxqOvfl, &1).map_err(io::Error::from)?;
    Ok(())
}

/// One datagram read by [`recv_stamped`].
#[derive(Debug, Clone, Copy)]
pub struct Stamped {
    /// Its length.
    pub len: usize,
    /// Its sender.
    pub from: Option<SocketAddr>,
    /// When the kernel received it, unix µs; 0 if the kernel gave no stamp.
    pub stamp_us: u64,
    /// The datagrams the kernel dropped at this socket so far, when it told.
    pub overflowed: Option<u64>,
}

/// Reads one datagram of a socket set up with [`stamp_arrivals`], with
/// its kernel receive time: a one-way latency measured to this stamp ends
/// at the listener's socket, whatever the reading thread was doing.
pub fn recv_stamped(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<Stamped> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut control = [0u8; 512];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let mut stamp_us = 0;
    let mut overflowed = None;
    if let Ok(cmsgs) = message.cmsgs() {
        for cmsg in cmsgs {
            match cmsg {
                ControlMessageOwned::ScmTimestampns(ts) => {
                    let us = ts.tv_sec() * 1_000_000 + ts.tv_nsec() / 1_000;
                    stamp_us = u64::try_from(us).unwrap_or(0);
                }
                ControlMessageOwned::RxqOvfl(dropped) => overflowed = Some(u64::from(dropped)),
                _ => {}
            }
        }
    }
    let from = message.address.and_then(|a| {
        a.as_sockaddr_in()
            .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
            .or_else(|| {
                a.as_sockaddr_in6()
                    .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
            })
    });
    Ok(Stamped {
        len: message.bytes,
        from,
        stamp_us,
        overflowed,
    })
}

impl AsyncUdpSocket for StampingSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable(self))
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.io.try_io(Interest::WRITABLE, || {
            self.state.send((&self.io).into(), transmit)
        })
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(slot)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            match self.io.try_io(Interest::READABLE, || self.read_one(buf)) {
                Ok((len, addr, stamp_us)) => {
                    self.arrivals.arrived(stamp_us, len);
                    *slot = RecvMeta {
                        addr,
                        len,
                        stride: len,
                        ecn: None,
                        dst_ip: None,
                    };
                    return Poll::Ready(Ok(1));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    fn max_transmit_segments(&self) -> usize {
        self.state.max_gso_segments()
    }
}

/// Tells quinn when the socket can take another packet.
#[derive(Debug)]
struct Writable(Arc<StampingSocket>);

impl UdpPoller for Writable {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.io.poll_send_ready(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_takes_the_oldest_packet_of_its_size() {
        let arrivals = Arrivals::default();
        assert_eq!(arrivals.claim(100), None, "nothing yet");
        arrivals.arrived(1_000, 130);
        assert_eq!(arrivals.claim(100), Some(1_000));
        assert_eq!(arrivals.claim(100), None, "claimed once");
        // An acknowledgement, then the frame's packet, then the next frame's.
        arrivals.arrived(2_000, 40);
        arrivals.arrived(2_100, 129);
        arrivals.arrived(2_200, 128);
        assert_eq!(arrivals.claim(100), Some(2_100), "the ack is skipped");
        assert_eq!(arrivals.claim(99), Some(2_200));
        // A frame whose packet also carried an ack finds none of its size.
        arrivals.arrived(3_000, 160);
        assert_eq!(arrivals.claim(100), None);
        arrivals.arrived(0, 130);
        assert_eq!(arrivals.claim(100), None, "the kernel gave no stamp");
    }

    #[test]
    fn a_listener_far_behind_forgets_the_oldest() {
        let arrivals = Arrivals::default();
        for n in 0..(QUEUED as u64 + 5) {
            arrivals.arrived(1_000 + n, 130);
        }
        assert_eq!(arrivals.claim(100), Some(1_005));
    }

    /// A listener that does not read in time: the kernel drops what its
    /// receive buffer cannot hold, and the next read says how many.
    #[tokio::test]
    async fn packets_the_kernel_dropped_at_the_socket_are_counted() {
        let arrivals = Arc::new(Arrivals::default());
        let socket = Arc::new(StampingSocket::bind(arrivals.clone()).expect("bound"));
        setsockopt(&socket.io, sockopt::RcvBuf, &4096).expect("small buffer");
        let to = socket.local_addr().expect("address");
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("sender");
        for _ in 0..200 {
            sender.send_to(&[0x5a_u8; 1000], to).expect("sent");
        }
        // The kernel tells the count with the packets queued after the
        // drops: read what the buffer held, then one more.
        let mut buf = [0u8; 2048];
        while socket.read_one(&mut buf).is_ok() {}
        assert_eq!(arrivals.overflowed(), 0, "the queued packets came first");
        sender.send_to(&[0x5a_u8; 1000], to).expect("sent");
        let mut meta = [RecvMeta::default()];
        std::future::poll_fn(|cx| {
            let mut bufs = [IoSliceMut::new(&mut buf)];
            socket.poll_recv(cx, &mut bufs, &mut meta)
        })
        .await
        .expect("read");
        let dropped = arrivals.overflowed();
        assert!(
            (100..200).contains(&dropped),
            "a 4 KiB buffer holds a few of 200 packets: {dropped} dropped"
        );
    }

    /// A real socket pair on loopback: the stamp is the kernel's, so it
    /// is no later than when the datagram was read, and no earlier than
    /// when it was sent.
    #[tokio::test]
    async fn the_kernel_stamps_each_datagram_between_send_and_read() {
        let arrivals = Arc::new(Arrivals::default());
        let socket = Arc::new(StampingSocket::bind(arrivals.clone()).expect("bound"));
        let to = socket.local_addr().expect("address");
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("sender");
        let before = unix_us();
        // The size of a relay's packet carrying a 100-byte voice datagram.
        let packet = [0x5a_u8; 130];
        sender.send_to(&packet, to).expect("sent");
        let mut buf = [0u8; 256];
        let mut meta = [RecvMeta::default()];
        let read = std::future::poll_fn(|cx| {
            let mut bufs = [IoSliceMut::new(&mut buf)];
            socket.poll_recv(cx, &mut bufs, &mut meta)
        })
        .await
        .expect("read");
        let after = unix_us();
        assert_eq!(read, 1);
        assert_eq!(meta[0].len, 130);
        assert_eq!(buf[..130], packet);
        assert_eq!(meta[0].addr, sender.local_addr().expect("sender address"));
        let stamp = arrivals.claim(100).expect("stamped");
        assert!(
            before <= stamp && stamp <= after,
            "{before} <= {stamp} <= {after}"
        );
    }
}
