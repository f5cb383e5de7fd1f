//! What the private call tests share: a squad of guards who may call each
//! other, the options of `ptt call` and `ptt answer`, and what a client
//! still knows of a call's group.

use std::fmt::Write as _;

use ptt_cli::cli::answer::AnswerArgs;
use ptt_cli::cli::call::CallArgs;
use ptt_client::{Client, Event};

use super::{PATIENCE, Relay, terminal_toml};

pub(crate) const CALLER: u32 = 100;
pub(crate) const CALLEE: u32 = 101;
/// A third guard: calls the callee first (busy) or pre-empts its call.
pub(crate) const THIRD: u32 = 102;
/// A guard that never answers.
pub(crate) const SLEEPER: u32 = 103;
/// In the directory, never logged in.
pub(crate) const OFFLINE: u32 = 104;
pub(crate) const SQUAD: u32 = 20;

/// Guards 100–104 sharing squad 20 (so each may call the others).
pub(crate) fn call_directory_toml() -> String {
    let guards = [CALLER, CALLEE, THIRD, SLEEPER, OFFLINE];
    let mut out = String::new();
    for id in guards {
        out.push_str(&terminal_toml(
            id,
            &format!("Guard {id}"),
            "guard",
            "normal",
        ));
    }
    let _ = write!(
        out,
        "[[group]]\nid = {SQUAD}\nname = \"Squad\"\nkind = \"other\"\n\n"
    );
    for id in guards {
        let _ = write!(out, "[[group.members]]\nterminal = {id}\n\n");
    }
    out
}

pub(crate) fn call_args(relay: &Relay, from: u32, to: u32, tone: f32) -> CallArgs {
    CallArgs {
        conn: relay.conn(from),
        callee: to,
        tone: Some(tone),
        wav: None,
        emergency: false,
        answer_timeout: PATIENCE.as_secs_f64(),
    }
}

pub(crate) fn answer_args(relay: &Relay, id: u32, reject: bool) -> AnswerArgs {
    AnswerArgs {
        conn: relay.conn(id),
        seconds: Some(PATIENCE.as_secs_f64()),
        wav: None,
        reject,
    }
}

/// Whether `client` still knows `group` in any way (joined, listed, or as
/// the group of call `call_id`).
pub(crate) fn knows(client: &Client, group: u32, call_id: u64) -> bool {
    client.joined().contains(&group)
        || client.groups().iter().any(|g| g.group_id == group)
        || client.call_group(call_id).is_some()
}

/// The relay's unsolicited join of this terminal to `group`, among `events`.
pub(crate) fn joined_by_relay(events: &[Event], group: u32) -> bool {
    events.iter().any(|e| {
        matches!(e, Event::Joined(ok)
            if ok.group.as_ref().is_some_and(|g| g.group_id == group && g.dynamic))
    })
}
