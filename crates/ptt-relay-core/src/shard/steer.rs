//! One UDP socket per shard on the same address, and the kernel program
//! that hands each packet to the socket of the shard that owns its
//! connection.
//!
//! The shards' sockets form one `SO_REUSEPORT` group, in shard order. The
//! kernel would pick a socket by hashing the packet's addresses, which is
//! stable only while the terminal's address is: after a NAT rebinding, or a
//! handset moving from Wi-Fi to cellular, the same connection would land on
//! another shard that does not know it. So the group runs a classic BPF
//! program (`SO_ATTACH_REUSEPORT_CBPF`) that reads the first byte of the
//! packet's destination connection id instead: every id the relay issues
//! starts with its shard's index ([`crate::quic`]), so the kernel delivers
//! each packet of a connection to its owner whatever address it comes from.
//! A new connection's first packets carry an id the terminal chose at
//! random: its first byte, modulo the number of shards, spreads them.

use std::net::{SocketAddr, UdpSocket};

use nix::libc;
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};

use crate::quic::SOCKET_BUFFER;

/// Where the destination connection id starts in a short-header packet
/// (RFC 9000 §17.3): after the one flags byte.
const SHORT_HEADER_DCID: u32 = 1;

/// Where it starts in a long-header packet (§17.2): after the flags byte,
/// the 4-byte version and the 1-byte id length.
const LONG_HEADER_DCID: u32 = 6;

/// The flags byte's "long header" bit.
const LONG_HEADER_BIT: u32 = 0x80;

// Classic BPF opcodes (linux/filter.h), as the kernel reads them.
/// `BPF_LD | BPF_B | BPF_ABS`: A = the packet's byte at k.
const LD_B_ABS: u16 = 0x30;
/// `BPF_JMP | BPF_JSET | BPF_K`: if A & k, skip jt, else skip jf.
const JMP_JSET_K: u16 = 0x45;
/// `BPF_JMP | BPF_JA`: skip k.
const JMP_JA: u16 = 0x05;
/// `BPF_ALU | BPF_MOD | BPF_K`: A = A % k.
const ALU_MOD_K: u16 = 0x94;
/// `BPF_RET | BPF_A`: return A.
const RET_A: u16 = 0x16;

/// The steering program for `shards` sockets: the index of the socket that
/// gets a packet is the first byte of its destination connection id modulo
/// `shards`. A packet too short to hold the byte makes the program fail,
/// and the kernel then gives it to socket 0; quinn drops it there.
fn program(shards: u32) -> [libc::sock_filter; 7] {
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    [
        // A = flags byte.
        op(LD_B_ABS, 0, 0, 0),
        // Long header? Then the next instruction, else skip two.
        op(JMP_JSET_K, 0, 2, LONG_HEADER_BIT),
        op(LD_B_ABS, 0, 0, LONG_HEADER_DCID),
        op(JMP_JA, 0, 0, 1),
        op(LD_B_ABS, 0, 0, SHORT_HEADER_DCID),
        op(ALU_MOD_K, 0, 0, shards),
        op(RET_A, 0, 0, 0),
    ]
}

/// Binds `shards` UDP sockets on `addr` with large buffers, ready for
/// quinn: with one shard a plain socket, with more a `SO_REUSEPORT` group
/// steered by connection id. Port 0 is resolved once: every shard's socket
/// gets the port the first one was given.
pub fn bind(addr: SocketAddr, shards: usize) -> std::io::Result<Vec<UdpSocket>> {
    let count = u32::try_from(shards)
        .ok()
        .filter(|n| (1..=u32::from(u8::MAX) + 1).contains(n))
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{shards} shards: between 1 and 256"),
            )
        })?;
    let grouped = count > 1;
    let mut sockets: Vec<UdpSocket> = Vec::with_capacity(shards);
    let mut at = addr;
    for _ in 0..count {
        let socket = Socket::new(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP))?;
        if at.is_ipv6() {
            // Serve IPv4-mapped peers too when bound to [::].
            let _ = socket.set_only_v6(false);
        }
        // Best effort: a smaller buffer still works, only less robustly.
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        if grouped {
            setsockopt(&socket, sockopt::ReusePort, &true)?;
        }
        socket.bind(&at.into())?;
        let socket: UdpSocket = socket.into();
        at = socket.local_addr()?;
        sockets.push(socket);
    }
    if let (true, Some(last)) = (grouped, sockets.last()) {
        let mut filter = program(count);
        let program = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_mut_ptr(),
        };
        // The program belongs to the group: attaching it through any member
        // steers them all, and the kernel copies it.
        setsockopt(last, sockopt::AttachReusePortCbpf, &program)?;
    }
    Ok(sockets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A packet whose destination connection id starts with `first`.
    fn packet(long_header: bool, first: u8) -> Vec<u8> {
        if long_header {
            // Initial, version 1, 8-byte DCID.
            let mut p = vec![0xc0, 0, 0, 0, 1, 8, first];
            p.extend_from_slice(&[0xaa; 40]);
            p
        } else {
            let mut p = vec![0x40, first];
            p.extend_from_slice(&[0xbb; 40]);
            p
        }
    }

    /// Which of `sockets` got the one datagram sent.
    fn receiver(sockets: &[UdpSocket]) -> Option<usize> {
        let mut buf = [0u8; 128];
        for _ in 0..200 {
            for (index, socket) in sockets.iter().enumerate() {
                if socket.recv(&mut buf).is_ok() {
                    return Some(index);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    #[test]
    fn each_packet_reaches_the_shard_its_connection_id_names_from_any_address() {
        let sockets = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 3).unwrap();
        let addr = sockets[0].local_addr().unwrap();
        for socket in &sockets {
            assert_eq!(socket.local_addr().unwrap(), addr, "one port for all");
            socket.set_nonblocking(true).unwrap();
        }
        // A terminal whose address changes (a new source port each time) is
        // still delivered to its shard: the kernel's hash alone would spread
        // these over the three sockets.
        for attempt in 0..30u8 {
            let shard = attempt % 3;
            let from = UdpSocket::bind("127.0.0.1:0").unwrap();
            let long = attempt % 2 == 0;
            from.send_to(&packet(long, shard), addr).unwrap();
            assert_eq!(
                receiver(&sockets),
                Some(usize::from(shard)),
                "attempt {attempt}: shard {shard}, long header {long}"
            );
        }
        // A terminal's own random id spreads by its first byte modulo 3.
        let from = UdpSocket::bind("127.0.0.1:0").unwrap();
        from.send_to(&packet(true, 200), addr).unwrap();
        assert_eq!(receiver(&sockets), Some(200 % 3));
        // Too short to name a shard: socket 0, nothing else happens.
        from.send_to(&[0x40], addr).unwrap();
        assert_eq!(receiver(&sockets), Some(0));
    }

    #[test]
    fn one_shard_is_a_plain_socket_and_the_count_is_bounded() {
        let sockets = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 1).unwrap();
        assert_eq!(sockets.len(), 1);
        let addr = sockets[0].local_addr().unwrap();
        // Without SO_REUSEPORT nobody else can bind the port.
        assert!(UdpSocket::bind(addr).is_err());
        assert!(bind(addr, 0).is_err());
        assert!(bind(SocketAddr::from(([127, 0, 0, 1], 0)), 257).is_err());
    }
}
