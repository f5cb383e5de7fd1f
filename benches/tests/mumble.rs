//! The bench's Mumble client against a real mumble-server (Debian's
//! `mumble-server`, which `.ci/run` installs): log-in over TLS, channels
//! made by the SuperUser, UDP voice under OCB2-AES128 both ways, and every
//! frame counted once in its own channel. Without it, the fan-out bench's
//! `mumble` row would compare the relay with a client that never talked.

use std::time::Duration;

use bytes::Bytes;
use ptt_benches::mumble::{self, MumbleLoad};

#[test]
fn every_frame_reaches_each_listener_of_its_channel_once() {
    let binary = mumble::server::binary()
        .expect("mumble-server is installed (apt-get install mumble-server, or MUMBLE_SERVER)");
    // Opus-sized frames of three lengths.
    let frames: Vec<Bytes> = [60usize, 80, 120]
        .iter()
        .map(|&len| Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>()))
        .collect();
    let load = MumbleLoad {
        channels: 2,
        listeners_per_channel: 3,
        fps: 50,
        duration: Duration::from_secs(1),
        pinned: false,
    };
    let run = mumble::run(&binary, &load, &frames).expect("a run against mumble-server");

    assert_eq!(
        run.frames_sent,
        2 * 50,
        "each talker sent a second of frames"
    );
    assert_eq!(run.frames_expected, 2 * 50 * 3);
    assert_eq!(run.bad_packets, 0, "every packet decrypted and parsed");
    // A listener hearing the other channel's talker would count 600.
    assert_eq!(
        run.frames_received, 300,
        "each frame once, in its own channel"
    );
    let one_way = run.one_way_socket_ms.expect("kernel-stamped frames");
    assert_eq!(one_way.count, 300);
    assert!(
        one_way.p50 > 0.0 && one_way.p50 < 100.0,
        "one-way at the socket on loopback: {one_way:?}"
    );
}
