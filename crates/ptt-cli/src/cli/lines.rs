//! One line of text per dispatch event (regrouping, status message,
//! location, private call, alert), worded the same wherever `ptt` shows
//! it: `ptt track` while replaying, `ptt monitor`, `ptt answer`.

use ptt_client::Event;
use ptt_proto::pb;

/// `+ terminal 301 joined group 31 Patrol 3 (zone Compound 17, ZoneEntered)`
/// or `- terminal 301 left group 31 (zone Compound 17, ZoneLeft)`.
#[must_use]
pub fn regrouped(r: &pb::Regrouped) -> String {
    let change = pb::RegroupChange::try_from(r.change).unwrap_or_default();
    let reason = pb::RegroupReason::try_from(r.reason).unwrap_or_default();
    let (sign, verb) = match change {
        pb::RegroupChange::Added => ('+', "joined"),
        pb::RegroupChange::Removed => ('-', "left"),
        pb::RegroupChange::Unspecified => ('?', "changed in"),
    };
    let name = r
        .group
        .as_ref()
        .filter(|g| !g.name.is_empty())
        .map_or_else(String::new, |g| format!(" {}", g.name));
    let why = if r.zone.is_empty() {
        format!("{reason:?}")
    } else {
        format!("zone {}, {reason:?}", r.zone)
    };
    format!(
        "{sign} terminal {} {verb} group {}{name} ({why})",
        r.terminal_id, r.group_id
    )
}

/// A status code with its label from the relay's table: `1 On scene`;
/// `42 (not in the table)` for a code the table lacks; empty for 0.
#[must_use]
pub fn code(code: u32, codes: &[pb::StatusCodeInfo]) -> String {
    if code == 0 {
        return String::new();
    }
    match codes.iter().find(|c| c.code == code) {
        Some(c) => format!("{code} {}", c.label),
        None => format!("{code} (not in the table)"),
    }
}

/// Who a status message went to: `dispatchers`, `group 11`, `terminal 102`.
#[must_use]
pub fn status_target(target: Option<&pb::status_message::Target>) -> String {
    use pb::status_message::Target;
    match target {
        Some(Target::TerminalId(t)) => format!("terminal {t}"),
        Some(Target::GroupId(g)) => format!("group {g}"),
        Some(Target::Dispatchers(_)) | None => "dispatchers".to_owned(),
    }
}

/// `status from 301 to dispatchers: 3 Need backup "gate 2"`.
#[must_use]
pub fn status(s: &pb::StatusMessage, codes: &[pb::StatusCodeInfo]) -> String {
    let mut line = format!(
        "status from {} to {}:",
        s.from_terminal_id,
        status_target(s.target.as_ref())
    );
    let code = code(s.code, codes);
    if !code.is_empty() {
        line.push(' ');
        line.push_str(&code);
    }
    if !s.text.is_empty() {
        line.push_str(&format!(" {:?}", s.text));
    }
    line
}

/// `31.230000, 121.470000 ±5 m, 4.2 m/s heading 90°`.
#[must_use]
pub fn position(l: &pb::LocationReport) -> String {
    let mut line = format!("{:.6}, {:.6}", l.latitude_deg, l.longitude_deg);
    if l.accuracy_m > 0.0 {
        line.push_str(&format!(" ±{:.0} m", l.accuracy_m));
    }
    if let Some(speed) = l.speed_mps {
        line.push_str(&format!(", {speed:.1} m/s"));
    }
    if let Some(heading) = l.heading_deg {
        line.push_str(&format!(" heading {heading:.0}°"));
    }
    line
}

/// The line of a private-call event; `None` for other events.
#[must_use]
pub fn call(event: &Event) -> Option<String> {
    Some(match event {
        Event::CallIncoming(setup) => format!(
            "call {}: {}incoming from {} {} (group {})",
            setup.call_id,
            if setup.emergency { "EMERGENCY " } else { "" },
            setup.caller_terminal_id,
            setup.caller_name,
            setup.group_id
        ),
        Event::CallAccepted { call_id, group } => {
            format!("call {call_id}: accepted, talk in group {group}")
        }
        Event::CallRejected { call_id, reason } => format!("call {call_id}: rejected ({reason:?})"),
        Event::CallEnded { call_id, reason } => format!("call {call_id}: ended ({reason:?})"),
        _ => return None,
    })
}

/// `ALERT 17 from 1 Console 1: Report status (answer: ptt respond --alert 17)`.
#[must_use]
pub fn alert(a: &pb::Alert) -> String {
    let mut line = format!(
        "ALERT {} from {} {}: {}",
        a.alert_id, a.from_terminal_id, a.from_name, a.text
    );
    if a.requires_ack {
        line.push_str(&format!(" (answer: ptt respond --alert {})", a.alert_id));
    }
    line
}

#[cfg(test)]
mod tests {
    use crate::cli::lines::*;

    fn codes() -> Vec<pb::StatusCodeInfo> {
        vec![pb::StatusCodeInfo {
            code: 1,
            label: "On scene".into(),
        }]
    }

    #[test]
    fn regroupings_read_as_joins_and_leaves_with_their_zone() {
        let mut r = pb::Regrouped {
            group_id: 31,
            terminal_id: 301,
            change: pb::RegroupChange::Added.into(),
            reason: pb::RegroupReason::ZoneEntered.into(),
            group: Some(pb::GroupInfo {
                name: "Patrol 3".into(),
                ..Default::default()
            }),
            zone: "Compound 17".into(),
        };
        assert_eq!(
            regrouped(&r),
            "+ terminal 301 joined group 31 Patrol 3 (zone Compound 17, ZoneEntered)"
        );
        r.change = pb::RegroupChange::Removed.into();
        r.reason = pb::RegroupReason::ZoneLeft.into();
        r.group = None;
        assert_eq!(
            regrouped(&r),
            "- terminal 301 left group 31 (zone Compound 17, ZoneLeft)"
        );
    }

    #[test]
    fn status_lines_name_the_code() {
        let s = pb::StatusMessage {
            from_terminal_id: 301,
            code: 1,
            text: "gate 2".into(),
            target: Some(pb::status_message::Target::Dispatchers(true)),
        };
        assert_eq!(
            status(&s, &codes()),
            "status from 301 to dispatchers: 1 On scene \"gate 2\""
        );
        assert_eq!(code(7, &codes()), "7 (not in the table)");
        assert_eq!(code(0, &codes()), "");
    }

    #[test]
    fn private_call_events_have_lines_and_others_none() {
        let incoming = Event::CallIncoming(pb::PrivateCallSetup {
            call_id: 9,
            caller_terminal_id: 101,
            caller_name: "Guard 101".into(),
            callee_terminal_id: 102,
            group_id: 90_001,
            emergency: true,
        });
        assert_eq!(
            call(&incoming).as_deref(),
            Some("call 9: EMERGENCY incoming from 101 Guard 101 (group 90001)")
        );
        let ended = Event::CallEnded {
            call_id: 9,
            reason: pb::PrivateCallEndReason::PeerDisconnected,
        };
        assert_eq!(
            call(&ended).as_deref(),
            Some("call 9: ended (PeerDisconnected)")
        );
        assert_eq!(call(&Event::Lagged { missed: 1 }), None);
    }
}
