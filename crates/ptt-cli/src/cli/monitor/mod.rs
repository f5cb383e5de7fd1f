//! `ptt monitor`: a live text view of this terminal's groups.
//!
//! Plain text redrawn every 500 ms (ANSI clear screen, no TUI library): per
//! group who holds the floor and since when, this terminal's queue position
//! when it waits, the emergency state; below, the latest events (floor,
//! alerts, regroupings, status messages with their labels, private calls),
//! the latest position of each terminal that reports one (dispatchers get
//! them), and the round-trip time of a ping every two seconds.
//!
//! Positions have a section of their own instead of event lines: a patrol
//! reports every second and would push everything else off the screen.

use std::future::Future;
use std::time::{Duration, Instant};

use clap::Args;
use ptt_client::Client;
use tokio::sync::watch;

use super::args::ConnArgs;

mod view;

pub use view::View;

/// How often the view is redrawn.
const REDRAW: Duration = Duration::from_millis(500);
/// How often the relay is pinged.
const PING: Duration = Duration::from_secs(2);
/// Groups rejoined at once at start, and the pace of the rest: a console
/// hears dozens of groups, and the relay refuses membership requests beyond
/// its limit (by default 20 a second, in bursts of up to 50).
const REJOIN_BURST: usize = 40;
const REJOIN_PACE: Duration = Duration::from_millis(100);
/// A rejoin refused for its rate is tried again after this long, a few times.
const REJOIN_BACKOFF: Duration = Duration::from_millis(500);
const REJOIN_TRIES: usize = 6;

/// Joins `group` again for its state (holder, emergency), trying again
/// when the relay refuses it for its rate (a relay with a tighter limit);
/// `None` if it cannot be had.
async fn rejoin(client: &Client, group: u32) -> Option<ptt_proto::pb::JoinOk> {
    for _ in 0..REJOIN_TRIES {
        match client.join(group).await {
            Ok(ok) => return Some(ok),
            Err(ptt_client::ClientError::RateLimited) => tokio::time::sleep(REJOIN_BACKOFF).await,
            Err(error) => {
                tracing::debug!(group, %error, "rejoin for the group's state failed");
                return None;
            }
        }
    }
    None
}

/// Options of `ptt monitor`.
#[derive(Debug, Clone, Args)]
pub struct MonitorArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Stop after this many seconds (default: at ctrl-c).
    #[arg(long, value_name = "N")]
    pub seconds: Option<f64>,
}

/// Watches `client`'s groups, calling `draw` with the view every 500 ms and
/// once at the end, until `stop` resolves or `seconds` pass.
pub async fn run(
    client: &Client,
    seconds: Option<f64>,
    stop: impl Future<Output = ()>,
    mut draw: impl FnMut(&View),
) -> anyhow::Result<()> {
    let mut events = client.events();
    let now = Instant::now();
    let mut view = View::new(
        client.terminal_id(),
        client.status_codes(),
        client.is_connected(),
        now,
    );
    for info in client.groups() {
        let group = view.group(info.group_id);
        group.name = info.name;
        group.joined = info.joined;
    }
    // Joining again answers with who talks now and any emergency.
    for (n, id) in client.joined().into_iter().enumerate() {
        if n >= REJOIN_BURST {
            tokio::time::sleep(REJOIN_PACE).await;
        }
        if let Some(ok) = rejoin(client, id).await {
            view.on_join(now, ok);
        }
    }
    let (rtt_tx, mut rtt) = watch::channel(None);
    let pinger = client.clone();
    let pings = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PING);
        loop {
            ticks.tick().await;
            let measured = pinger.ping().await.ok();
            if rtt_tx.send(measured).is_err() {
                break;
            }
        }
    });
    let deadline = super::stop::stop_after(seconds);
    tokio::pin!(stop, deadline);
    let mut redraw = tokio::time::interval(REDRAW);
    let result = loop {
        tokio::select! {
            () = &mut stop => break Ok(()),
            () = &mut deadline => break Ok(()),
            event = events.recv() => match event {
                Some(event) => view.on_event(Instant::now(), event),
                None => break Err(super::describe::ended(&events)),
            },
            Ok(()) = rtt.changed() => view.rtt = *rtt.borrow_and_update(),
            _ = redraw.tick() => {
                view.connected = client.is_connected();
                draw(&view);
            }
        }
    };
    pings.abort();
    draw(&view);
    result
}

/// `ptt monitor` from the command line: on a terminal the view redrawn in
/// place; into a file or a pipe, the view once and then each event as a
/// line of its own.
pub(crate) async fn main(args: MonitorArgs) -> anyhow::Result<()> {
    use std::io::{IsTerminal as _, Write as _};
    let client = args.conn.connect().await?;
    let redraw = std::io::stdout().is_terminal();
    let mut printed: Option<u64> = None;
    let result = run(&client, args.seconds, super::stop::ctrl_c(), |view| {
        let mut stdout = std::io::stdout().lock();
        if redraw {
            let _ = write!(stdout, "\x1b[2J\x1b[H{}", view.render(Instant::now()));
        } else if let Some(seen) = printed {
            let (lines, noted) = view.lines_after(seen);
            for line in lines {
                let _ = writeln!(stdout, "{line}");
            }
            printed = Some(noted);
        } else {
            let _ = write!(stdout, "{}", view.render(Instant::now()));
            printed = Some(view.lines_after(0).1);
        }
        let _ = stdout.flush();
    })
    .await;
    client.close().await;
    result
}
