//! Telling a dead relay from a quiet one, for a terminal with other relays
//! to go to.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ptt_proto::pb::{self, client_message::Body as Request};

use crate::clock::unix_us;
use crate::config::STALL_ANSWER;
use crate::link::Link;

/// In a cluster, watches that the relay still answers: when packets went
/// out (voice, a keep-alive, the probe of a stalled call) and nothing came
/// back for [`SILENCE_BEFORE_ASKING`], the relay is asked with a `Ping`; one
/// that answers none within [`STALL_ANSWER`] is taken for dead (killed, its
/// host gone: nothing would reset the connection) and this returns true;
/// the caller closes the connection, so the terminal moves to the next
/// relay of the cluster within about a second instead of at its idle
/// timeout. Returns false when the connection ends otherwise. Costs
/// nothing on the wire while the relay answers.
pub(crate) async fn relay_is_dead(link: Arc<Link>) -> bool {
    let mut ticks = tokio::time::interval(WATCH_EVERY);
    let counts = |link: &Link| {
        let stats = link.conn.stats();
        (stats.udp_rx.datagrams, stats.udp_tx.datagrams)
    };
    let (mut rx, mut tx_then) = counts(&link);
    let mut heard_at = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = link.conn.closed() => return false,
        }
        let (rx_now, tx_now) = counts(&link);
        if rx_now != rx {
            (rx, tx_then, heard_at) = (rx_now, tx_now, Instant::now());
            continue;
        }
        if tx_now == tx_then || heard_at.elapsed() < SILENCE_BEFORE_ASKING {
            continue;
        }
        let ping = Request::Ping(pb::Ping {
            client_send_time_us: unix_us(),
        });
        match tokio::time::timeout(STALL_ANSWER, link.request(ping)).await {
            Ok(_) => {
                (rx, tx_then) = counts(&link);
                heard_at = Instant::now();
            }
            Err(_) => {
                tracing::warn!("the relay answers nothing; moving to the next one");
                return true;
            }
        }
    }
}

/// How often [`relay_is_dead`] looks at the connection's packet counts.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// Packets sent and none received for this long: time to ask the relay.
/// A relay acknowledges within its ack delay (25 ms) plus a round trip.
const SILENCE_BEFORE_ASKING: Duration = Duration::from_millis(300);
