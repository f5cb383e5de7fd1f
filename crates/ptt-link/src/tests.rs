//! The proxy over plain UDP sockets: loss rate, delay, jitter, blackout,
//! duplication, answers per client, replay by seed, stopping on drop.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::{Direction, Impairment, LossyProxy};

/// Longest any of these tests waits for anything.
const BOUND: Duration = Duration::from_secs(10);

async fn socket() -> UdpSocket {
    UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind loopback")
}

/// A "relay" (a bare socket), a proxy in front of it and a client socket.
async fn setup(seed: u64) -> (UdpSocket, LossyProxy, UdpSocket) {
    let relay = socket().await;
    let proxy = LossyProxy::start(relay.local_addr().unwrap(), seed)
        .await
        .expect("proxy");
    (relay, proxy, socket().await)
}

/// Sends packets tagged `0..count` to the proxy in chunks, waiting after
/// each chunk until the proxy has read it, so no packet is lost in the
/// kernel before the dice see it.
async fn send_numbered(client: &UdpSocket, proxy: &LossyProxy, count: u32) {
    let start = proxy.stats().to_relay.received;
    for n in 0..count {
        client
            .send_to(&n.to_be_bytes(), proxy.addr())
            .await
            .expect("send");
        if n % 64 == 63 || n + 1 == count {
            let want = start + u64::from(n) + 1;
            tokio::time::timeout(BOUND, async {
                while proxy.stats().to_relay.received < want {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .expect("proxy read the chunk");
        }
    }
}

/// Every packet that arrives on `socket` until it has been quiet for
/// `quiet`, with its arrival time.
async fn drain(socket: &UdpSocket, quiet: Duration) -> Vec<(u32, Instant)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok(Ok((len, _))) = tokio::time::timeout(quiet, socket.recv_from(&mut buf)).await {
        let tag = u32::from_be_bytes(buf[..len.min(4)].try_into().unwrap_or([0; 4]));
        got.push((tag, Instant::now()));
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_rate_matches_the_probability() {
    let (relay, proxy, client) = setup(7).await;
    proxy.set(Direction::ToRelay, Impairment::loss(0.2));
    let receiving = tokio::spawn(async move { drain(&relay, Duration::from_millis(500)).await });
    send_numbered(&client, &proxy, 10_000).await;
    let got = receiving.await.unwrap();
    let stats = proxy.stats().to_relay;
    let rate = stats.lost as f64 / 10_000.0;
    eprintln!(
        "seed 7: lost {} of 10000 ({rate:.4}); {stats:?}",
        stats.lost
    );
    // Binomial(10000, 0.2): σ = 0.4 %; ±1.5 % is nearly 4 σ.
    assert!((rate - 0.2).abs() < 0.015, "loss rate {rate}");
    assert_eq!(stats.received, 10_000);
    assert_eq!(stats.forwarded + stats.lost, 10_000);
    assert_eq!(got.len() as u64, stats.forwarded, "loopback lost nothing");
    assert_eq!(proxy.stats().to_client, Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_loses_the_same_packets() {
    let mut runs = Vec::new();
    for seed in [11, 11, 12] {
        let (relay, proxy, client) = setup(seed).await;
        proxy.set(Direction::ToRelay, Impairment::loss(0.3));
        let receiving =
            tokio::spawn(async move { drain(&relay, Duration::from_millis(300)).await });
        send_numbered(&client, &proxy, 1_000).await;
        let got: Vec<u32> = receiving.await.unwrap().into_iter().map(|g| g.0).collect();
        runs.push(got);
    }
    assert_eq!(runs[0], runs[1], "seed 11 replays");
    assert_ne!(runs[0], runs[2], "seed 12 differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_is_applied_and_jitter_reorders() {
    let (relay, proxy, client) = setup(3).await;
    let delay = Duration::from_millis(100);
    proxy.set(Direction::ToRelay, Impairment::NONE.with_delay(delay));
    let sent = Instant::now();
    client
        .send_to(&0u32.to_be_bytes(), proxy.addr())
        .await
        .unwrap();
    let got = drain(&relay, Duration::from_millis(400)).await;
    assert_eq!(got.len(), 1);
    let took = got[0].1 - sent;
    eprintln!("100 ms delay: arrived after {took:?}");
    assert!(
        took >= delay && took < delay + Duration::from_millis(80),
        "{took:?}"
    );

    let jitter = Duration::from_millis(60);
    proxy.set(Direction::ToRelay, Impairment::NONE.with_jitter(jitter));
    let sent = Instant::now();
    send_numbered(&client, &proxy, 50).await;
    let got = drain(&relay, Duration::from_millis(300)).await;
    let order: Vec<u32> = got.iter().map(|g| g.0).collect();
    assert_eq!(order.len(), 50, "jitter loses nothing");
    assert!(
        order.windows(2).any(|w| w[0] > w[1]),
        "reordered: {order:?}"
    );
    let last = got.iter().map(|g| g.1 - sent).max().unwrap();
    assert!(last < jitter + Duration::from_millis(80), "{last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackout_drops_everything_until_it_ends() {
    let (relay, proxy, client) = setup(5).await;
    // Queued packets are dropped too when the blackout starts.
    proxy.set(
        Direction::ToRelay,
        Impairment::NONE.with_delay(Duration::from_millis(200)),
    );
    send_numbered(&client, &proxy, 10).await;
    proxy.blackout(true);
    send_numbered(&client, &proxy, 100).await;
    assert!(drain(&relay, Duration::from_millis(400)).await.is_empty());
    let stats = proxy.stats().to_relay;
    assert_eq!((stats.blacked_out, stats.forwarded), (110, 0));

    proxy.blackout(false);
    proxy.set(Direction::ToRelay, Impairment::NONE);
    send_numbered(&client, &proxy, 100).await;
    assert_eq!(drain(&relay, Duration::from_millis(300)).await.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplication_sends_extra_copies() {
    let (relay, proxy, client) = setup(9).await;
    proxy.set(Direction::ToRelay, Impairment::NONE.with_duplicate(0.25));
    let receiving = tokio::spawn(async move { drain(&relay, Duration::from_millis(300)).await });
    send_numbered(&client, &proxy, 2_000).await;
    let got = receiving.await.unwrap();
    let stats = proxy.stats().to_relay;
    eprintln!("25 % duplication: {stats:?}");
    assert_eq!(got.len() as u64, 2_000 + stats.duplicated);
    // Binomial(2000, 0.25): σ ≈ 19; ±80 is over 4 σ.
    assert!(stats.duplicated.abs_diff(500) < 80, "{stats:?}");
    let distinct: HashSet<u32> = got.iter().map(|g| g.0).collect();
    assert_eq!(distinct.len(), 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_gets_its_own_answers_through_the_downlink() {
    let (relay, proxy, first) = setup(1).await;
    let second = socket().await;
    proxy.set(
        Direction::ToClient,
        Impairment::NONE.with_delay(Duration::from_millis(20)),
    );
    // The "relay" echoes each packet with its source port appended.
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((len, from)) = relay.recv_from(&mut buf).await {
            let mut answer = buf[..len].to_vec();
            answer.extend_from_slice(&from.port().to_be_bytes());
            let _ = relay.send_to(&answer, from).await;
        }
    });
    let mut ports = Vec::new();
    for (tag, client) in [(1u32, &first), (2, &second)] {
        client
            .send_to(&tag.to_be_bytes(), proxy.addr())
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let (len, from) = tokio::time::timeout(BOUND, client.recv_from(&mut buf))
            .await
            .expect("answer")
            .unwrap();
        assert_eq!(from, proxy.addr(), "answers come from the proxy");
        assert_eq!(len, 6);
        assert_eq!(u32::from_be_bytes(buf[..4].try_into().unwrap()), tag);
        ports.push(u16::from_be_bytes([buf[4], buf[5]]));
    }
    assert_ne!(ports[0], ports[1], "one upstream socket per client");
    let stats = proxy.stats();
    assert_eq!(
        (stats.to_relay.forwarded, stats.to_client.forwarded),
        (2, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_proxy_stops_it() {
    let (relay, proxy, client) = setup(2).await;
    let addr = proxy.addr();
    drop(proxy);
    // The listening socket is closed once its task has seen the cancel.
    tokio::time::timeout(BOUND, async {
        loop {
            if std::net::UdpSocket::bind(addr).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the proxy released its port");
    client.send_to(b"late", addr).await.unwrap();
    assert!(drain(&relay, Duration::from_millis(200)).await.is_empty());
}
