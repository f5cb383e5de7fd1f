//! `ptt alert`: a dispatcher's alert with roll call, and its live tally.

use std::time::Duration;

use clap::Args;
use ptt_client::{Client, Event};
use ptt_proto::pb;

use super::args::ConnArgs;

/// Options of `ptt alert`.
#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// Connection and identity (a dispatcher's).
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Alert every all-call group (the whole district).
    #[arg(long, conflicts_with = "group", required_unless_present = "group")]
    pub all: bool,
    /// Alert this group (repeat for several).
    #[arg(long, value_name = "G")]
    pub group: Vec<u32>,
    /// Do not ask recipients to acknowledge (an announcement, not a roll call).
    #[arg(long)]
    pub no_ack: bool,
    /// How long to show the tally as answers come in, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub wait: f64,
    /// The alert text shown on every terminal.
    pub text: String,
}

/// The roll call at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Terminals the alert was addressed to (online or not).
    pub targets: u32,
    /// Answered at least "delivered".
    pub delivered: u32,
    /// Answered "responding".
    pub responding: u32,
    /// Answered "unable".
    pub unable: u32,
}

impl Tally {
    fn of(tally: &pb::AlertTally) -> Self {
        Self {
            targets: tally.targets,
            delivered: tally.delivered,
            responding: tally.responding,
            unable: tally.unable,
        }
    }

    /// One line for the console.
    pub fn line(&self, alert_id: u64) -> String {
        format!(
            "alert {alert_id}: {} targets, {} delivered, {} responding, {} unable, {} not reached",
            self.targets,
            self.delivered,
            self.responding,
            self.unable,
            self.targets.saturating_sub(self.delivered)
        )
    }
}

/// Each target's latest answer, from the tallies: the first names every
/// target (not answered yet), later ones what changed.
#[derive(Debug, Default)]
struct Answers(std::collections::BTreeMap<u32, pb::AlertAckEntry>);

/// How many not-reached terminals the closing line names before "and N more".
const NAMED: usize = 20;

impl Answers {
    fn note(&mut self, tally: &pb::AlertTally) {
        for entry in &tally.entries {
            self.0.insert(entry.terminal_id, entry.clone());
        }
    }

    /// "not reached: 303 Guard 303, …" for the targets that never answered,
    /// if any.
    fn not_reached(&self) -> Option<String> {
        let silent: Vec<&pb::AlertAckEntry> = self
            .0
            .values()
            .filter(|e| e.kind() == pb::AlertAckKind::Unspecified)
            .collect();
        if silent.is_empty() {
            return None;
        }
        let named: Vec<String> = silent
            .iter()
            .take(NAMED)
            .map(|e| format!("{} {}", e.terminal_id, e.name))
            .collect();
        let more = silent.len().saturating_sub(NAMED);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        Some(format!("  not reached: {}{tail}", named.join(", ")))
    }
}

/// One line per target group, then per organisation, of the tally: where the
/// answers are missing.
pub fn breakdown(tally: &pb::AlertTally) -> Vec<String> {
    let line = |label: String, part: &pb::AlertTallyPart| {
        format!(
            "  {label}: {} of {} delivered, {} responding, {} unable, {} not reached",
            part.delivered,
            part.targets,
            part.responding,
            part.unable,
            part.targets.saturating_sub(part.delivered)
        )
    };
    let groups = tally
        .groups
        .iter()
        .map(|part| line(format!("group {} {}", part.group_id, part.name), part));
    let organisations = tally
        .organisations
        .iter()
        .map(|part| line(part.name.clone(), part));
    groups.chain(organisations).collect()
}

/// Sends the alert and follows its tally for `wait`, printing each change
/// with `print`; returns the alert id, the last tally and its breakdown by
/// group and organisation ([`breakdown`]).
pub async fn run(
    client: &Client,
    args: &AlertArgs,
    mut print: impl FnMut(&str),
) -> anyhow::Result<(u64, Tally, Vec<String>)> {
    let mut events = client.events();
    let groups = if args.all {
        Vec::new()
    } else {
        args.group.clone()
    };
    let first = client
        .send_alert(args.text.clone(), groups, !args.no_ack)
        .await?;
    let alert_id = first.alert_id;
    let mut tally = Tally::of(&first);
    let mut answers = Answers::default();
    answers.note(&first);
    let mut last = first;
    print(&tally.line(alert_id));
    let wait = Duration::from_secs_f64(args.wait.clamp(0.0, 3600.0));
    print(&format!(
        "following the answers for {} s (--wait; ctrl-c stops); recipients answer with \
         `ptt respond --alert {alert_id}`",
        wait.as_secs_f64()
    ));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = tokio::time::sleep_until(deadline) => break,
            () = super::stop::ctrl_c() => break,
        };
        match event {
            Some(Event::AlertTally(update)) if update.alert_id == alert_id => {
                answers.note(&update);
                let next = Tally::of(&update);
                if next != tally {
                    tally = next;
                    print(&tally.line(alert_id));
                }
                last = update;
            }
            Some(_) => {}
            None if events.ended().is_some() => return Err(super::describe::ended(&events)),
            None => break,
        }
    }
    let mut lines = breakdown(&last);
    lines.extend(answers.not_reached());
    Ok((alert_id, tally, lines))
}

pub(crate) async fn main(args: AlertArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    let result = run(&client, &args, |line| println!("{line}")).await;
    client.close().await;
    let (_, _, parts) = result?;
    for line in parts {
        println!("{line}");
    }
    Ok(())
}
