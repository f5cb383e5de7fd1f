//! `ptt monitor`: a live text view of this terminal's groups.
//!
//! Plain text redrawn every 500 ms (ANSI clear screen, no TUI library): per
//! group who holds the floor and since when, this terminal's queue position
//! when it waits, the emergency state; below, the latest events and the
//! round-trip time of a ping every two seconds.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::time::{Duration, Instant};

use clap::Args;
use ptt_client::{Client, Event};
use ptt_proto::pb;
use tokio::sync::watch;

use super::ConnArgs;

/// How often the view is redrawn.
const REDRAW: Duration = Duration::from_millis(500);
/// How often the relay is pinged.
const PING: Duration = Duration::from_secs(2);
/// Events kept in the view.
const RECENT: usize = 12;

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

/// Who holds a floor.
#[derive(Debug, Clone)]
struct Holder {
    id: u32,
    name: String,
    priority: pb::Priority,
    kind: pb::FloorKind,
    since: Instant,
}

/// What is known of one group.
#[derive(Debug, Clone, Default)]
struct GroupView {
    name: String,
    joined: bool,
    holder: Option<Holder>,
    /// This terminal's queued request: (position, length).
    queue: Option<(u32, u32)>,
    emergency: Option<pb::EmergencyState>,
}

/// The monitor's whole state; [`View::render`] turns it into text.
#[derive(Debug, Default)]
pub struct View {
    groups: BTreeMap<u32, GroupView>,
    recent: VecDeque<String>,
    rtt: Option<Duration>,
    connected: bool,
    started: Option<Instant>,
}

impl View {
    fn group(&mut self, id: u32) -> &mut GroupView {
        self.groups.entry(id).or_default()
    }

    fn note(&mut self, now: Instant, text: String) {
        let at = self
            .started
            .map_or(0.0, |s| now.duration_since(s).as_secs_f64());
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(format!("{at:7.1} s  {text}"));
    }

    fn on_join(&mut self, now: Instant, ok: pb::JoinOk) {
        let Some(info) = ok.group else { return };
        let view = self.group(info.group_id);
        view.name = info.name;
        view.joined = true;
        view.holder = ok.floor.map(|f| Holder {
            id: f.holder_terminal_id,
            name: f.holder_name,
            priority: pb::Priority::try_from(f.priority).unwrap_or_default(),
            kind: pb::FloorKind::try_from(f.kind).unwrap_or_default(),
            since: now,
        });
        view.emergency = ok.emergency.filter(|e| e.active);
    }

    /// Applies one event.
    pub fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::FloorTaken {
                group,
                holder,
                holder_name,
                priority,
                kind,
                ..
            } => {
                self.note(
                    now,
                    format!("group {group}: {holder} {holder_name} talks ({priority:?}, {kind:?})"),
                );
                self.group(group).holder = Some(Holder {
                    id: holder,
                    name: holder_name,
                    priority,
                    kind,
                    since: now,
                });
            }
            Event::FloorIdle { group, reason, .. } => {
                let view = self.group(group);
                let was = view.holder.take();
                let text = match was {
                    Some(h) => format!(
                        "group {group}: {} {} done after {:.1} s ({reason:?})",
                        h.id,
                        h.name,
                        now.duration_since(h.since).as_secs_f64()
                    ),
                    None => format!("group {group}: idle ({reason:?})"),
                };
                self.note(now, text);
            }
            Event::FloorQueued {
                group,
                position,
                queue_length,
            } => self.group(group).queue = Some((position, queue_length)),
            Event::FloorGranted { group, .. } | Event::FloorDenied { group, .. } => {
                self.group(group).queue = None;
            }
            Event::Emergency(state) => {
                let text = if state.active {
                    format!(
                        "group {}: EMERGENCY declared by {} {} {}",
                        state.group_id, state.declared_by, state.declared_by_name, state.text
                    )
                } else {
                    format!(
                        "group {}: emergency cleared by {}",
                        state.group_id, state.cleared_by
                    )
                };
                self.note(now, text);
                let group = state.group_id;
                self.group(group).emergency = state.active.then_some(state);
            }
            Event::Presence(p) => {
                let state = pb::PresenceState::try_from(p.state).unwrap_or_default();
                let text = match p.group_id {
                    0 => format!("{} {} {state:?}", p.terminal_id, p.name),
                    g => format!("{} {} {state:?} group {g}", p.terminal_id, p.name),
                };
                self.note(now, text);
            }
            Event::Alert(a) => self.note(
                now,
                format!(
                    "ALERT {} from {} {}: {}",
                    a.alert_id, a.from_terminal_id, a.from_name, a.text
                ),
            ),
            Event::Status(s) => self.note(
                now,
                format!("status from {}: {}", s.from_terminal_id, s.text),
            ),
            Event::Regrouped(r) => self.note(now, format!("regrouped: {r:?}")),
            Event::Disconnected { reason, .. } => {
                self.connected = false;
                self.note(now, format!("disconnected: {reason}"));
            }
            Event::Reconnected { groups, .. } => {
                self.connected = true;
                self.note(now, format!("reconnected, groups {groups:?}"));
            }
            Event::GoingAway { reason, detail, .. } => {
                self.note(now, format!("relay going away: {reason:?} {detail}"));
            }
            Event::ServerError { reason, detail } => {
                self.note(now, format!("relay error: {reason:?} {detail}"));
            }
            Event::Lagged { missed } => self.note(now, format!("(missed {missed} events)")),
            _ => {}
        }
    }

    /// The view as text (without the clear-screen sequence).
    #[must_use]
    pub fn render(&self, now: Instant) -> String {
        let mut out = String::new();
        let rtt = self.rtt.map_or_else(
            || "-".to_owned(),
            |r| format!("{:.1} ms", r.as_secs_f64() * 1e3),
        );
        let link = if self.connected {
            "connected"
        } else {
            "DISCONNECTED"
        };
        let _ = writeln!(out, "ptt monitor — {link}, ping RTT {rtt}\n");
        let _ = writeln!(
            out,
            "{:>6}  {:<24} {:<34} {:<8} emergency",
            "group", "name", "talking", "queue"
        );
        for (id, g) in &self.groups {
            if !g.joined {
                continue;
            }
            let talking = g.holder.as_ref().map_or_else(
                || "-".to_owned(),
                |h| {
                    format!(
                        "{} {} {:.1} s{}",
                        h.id,
                        h.name,
                        now.duration_since(h.since).as_secs_f64(),
                        match (h.kind, h.priority) {
                            (pb::FloorKind::Emergency, _) => " EMERG".to_owned(),
                            (pb::FloorKind::Broadcast, _) => " ALL-CALL".to_owned(),
                            (_, pb::Priority::Normal | pb::Priority::Unspecified) => String::new(),
                            (_, p) => format!(" {p:?}"),
                        }
                    )
                },
            );
            let queue = g
                .queue
                .map_or_else(|| "-".to_owned(), |(p, n)| format!("{p}/{n}"));
            let emergency = g.emergency.as_ref().map_or_else(
                || "-".to_owned(),
                |e| format!("ACTIVE by {} {}", e.declared_by, e.declared_by_name),
            );
            let _ = writeln!(
                out,
                "{id:>6}  {:<24} {talking:<34} {queue:<8} {emergency}",
                g.name
            );
        }
        let _ = writeln!(out, "\nrecent events:");
        for line in &self.recent {
            let _ = writeln!(out, "  {line}");
        }
        out
    }
}

/// Watches `client`'s groups, calling `draw` with the rendered view every
/// 500 ms, until `stop` resolves or `seconds` pass.
pub async fn run(
    client: &Client,
    seconds: Option<f64>,
    stop: impl Future<Output = ()>,
    mut draw: impl FnMut(&str),
) -> anyhow::Result<()> {
    let mut events = client.events();
    let now = Instant::now();
    let mut view = View {
        connected: client.is_connected(),
        started: Some(now),
        ..View::default()
    };
    for info in client.groups() {
        let group = view.group(info.group_id);
        group.name = info.name;
        group.joined = info.joined;
    }
    // Joining again answers with who talks now and any emergency.
    for id in client.joined() {
        if let Ok(ok) = client.join(id).await {
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
    let deadline = super::stop_after(seconds);
    tokio::pin!(stop, deadline);
    let mut redraw = tokio::time::interval(REDRAW);
    let result = loop {
        tokio::select! {
            () = &mut stop => break Ok(()),
            () = &mut deadline => break Ok(()),
            event = events.recv() => match event {
                Some(event) => view.on_event(Instant::now(), event),
                None => break Err(anyhow::anyhow!("connection to the relay closed")),
            },
            Ok(()) = rtt.changed() => view.rtt = *rtt.borrow_and_update(),
            _ = redraw.tick() => {
                view.connected = client.is_connected();
                draw(&view.render(Instant::now()));
            }
        }
    };
    pings.abort();
    draw(&view.render(Instant::now()));
    result
}

/// `ptt monitor` from the command line.
pub(crate) async fn main(args: MonitorArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    run(&client, args.seconds, super::ctrl_c(), |text| {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, "\x1b[2J\x1b[H{text}");
        let _ = stdout.flush();
    })
    .await?;
    client.close().await;
    Ok(())
}
