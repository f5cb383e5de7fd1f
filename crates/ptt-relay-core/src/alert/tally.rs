//! The tally of one alert: every target's latest answer, and the counts the sender and the
//! control room see, in total and by target group and organisation. Pure data; nothing
//! here sends.

use std::collections::HashMap;

use ptt_proto::pb;

use super::share::AnswerElsewhere;

/// One group's or organisation's share of an alert's targets.
#[derive(Debug)]
pub(super) struct Part {
    /// The group, or 0 for an organisation.
    pub(super) group_id: u32,
    pub(super) name: String,
    /// Its targets, sorted.
    pub(super) targets: Vec<u32>,
}

/// The answers to one alert so far.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) answers: HashMap<u32, Answer>,
    pub(super) responding: u32,
    pub(super) unable: u32,
}

/// A recipient's latest answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Answer {
    pub(super) kind: pb::AlertAckKind,
    pub(super) status_code: Option<u16>,
    pub(super) at_us: u64,
    /// Arrival order (relay-wide).
    pub(super) order: u64,
}

impl Answer {
    /// This answer of `terminal` to alert `alert_id`, for the other relays.
    pub(super) fn elsewhere(&self, alert_id: u64, terminal: u32) -> AnswerElsewhere {
        AnswerElsewhere {
            alert_id,
            terminal,
            kind: self.kind,
            status_code: self.status_code,
            at_us: self.at_us,
        }
    }
}

impl Tally {
    /// Takes `answer` as `terminal`'s latest; false if nothing changed.
    ///
    /// A DELIVERED once anything is taken adds nothing (it is the client's
    /// automatic receipt), and the user's own answer always replaces a
    /// DELIVERED, whichever the relay numbered first: the client sends its
    /// receipt from a task of its own, so it may follow the user's answer.
    /// Between two user answers, one that arrived before the one taken is
    /// stale.
    pub(super) fn apply(&mut self, terminal: u32, answer: Answer) -> bool {
        use pb::AlertAckKind::Delivered;
        if let Some(previous) = self.answers.get(&terminal).copied() {
            let superseded = match (previous.kind, answer.kind) {
                (_, Delivered) => true,
                (Delivered, _) => false,
                _ => previous.order > answer.order,
            };
            let same = (previous.kind, previous.status_code) == (answer.kind, answer.status_code);
            if superseded || same {
                return false;
            }
            self.count(previous.kind, false);
        }
        self.count(answer.kind, true);
        self.answers.insert(terminal, answer);
        true
    }

    fn count(&mut self, kind: pb::AlertAckKind, add: bool) {
        let counter = match kind {
            pb::AlertAckKind::Responding => &mut self.responding,
            pb::AlertAckKind::Unable => &mut self.unable,
            _ => return,
        };
        *counter = if add {
            *counter + 1
        } else {
            counter.saturating_sub(1)
        };
    }

    pub(super) fn to_wire(
        &self,
        id: u64,
        targets: &[u32],
        parts: &[Part],
        entries: Vec<pb::AlertAckEntry>,
    ) -> pb::AlertTally {
        let (groups, organisations) = parts
            .iter()
            .map(|part| self.part(part))
            .partition(|part| part.group_id != 0);
        pb::AlertTally {
            alert_id: id,
            targets: count(targets.len()),
            // Every answer says the alert was shown.
            delivered: count(self.answers.len()),
            responding: self.responding,
            unable: self.unable,
            entries,
            groups,
            organisations,
        }
    }

    /// The counts of one part of the targets.
    pub(super) fn part(&self, part: &Part) -> pb::AlertTallyPart {
        let mut out = pb::AlertTallyPart {
            group_id: part.group_id,
            name: part.name.clone(),
            targets: count(part.targets.len()),
            ..Default::default()
        };
        for answer in part.targets.iter().filter_map(|t| self.answers.get(t)) {
            out.delivered += 1;
            match answer.kind {
                pb::AlertAckKind::Responding => out.responding += 1,
                pb::AlertAckKind::Unable => out.unable += 1,
                _ => {}
            }
        }
        out
    }
}

/// A count as the wire carries it.
pub(super) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(kind: pb::AlertAckKind, status_code: Option<u16>, order: u64) -> Answer {
        Answer {
            kind,
            status_code,
            at_us: order,
            order,
        }
    }

    #[test]
    fn latest_answer_wins_and_delivered_never_downgrades() {
        use pb::AlertAckKind::{Delivered, Responding, Unable};
        let mut tally = Tally::default();
        assert!(tally.apply(7, answer(Delivered, None, 1)));
        assert!(!tally.apply(7, answer(Delivered, None, 2)), "duplicate");
        assert!(tally.apply(7, answer(Responding, Some(8), 3)));
        assert!(!tally.apply(7, answer(Delivered, None, 4)), "no downgrade");
        assert!(tally.apply(7, answer(Unable, None, 5)));
        assert!(!tally.apply(7, answer(Responding, None, 4)), "stale");
        assert!(
            tally.apply(8, answer(Responding, Some(1), 6)),
            "first answer"
        );
        // The automatic receipt numbered after the user's answer but taken
        // first (its log write finished first) does not hide the answer.
        assert!(tally.apply(9, answer(Delivered, None, 11)));
        assert!(tally.apply(9, answer(Responding, None, 10)), "answer wins");
        assert!(!tally.apply(9, answer(Delivered, None, 12)));
        let parts = [
            Part {
                group_id: 10,
                name: "Compound".into(),
                targets: vec![7, 9],
            },
            Part {
                group_id: 0,
                name: "Station".into(),
                targets: vec![8],
            },
        ];
        let wire = tally.to_wire(1, &[7, 8, 9], &parts, Vec::new());
        assert_eq!(
            (wire.targets, wire.delivered, wire.responding, wire.unable),
            (3, 3, 2, 1)
        );
        let compound = &wire.groups[0];
        assert_eq!(
            (
                compound.targets,
                compound.delivered,
                compound.responding,
                compound.unable
            ),
            (2, 2, 1, 1)
        );
        let station = &wire.organisations[0];
        assert_eq!((station.name.as_str(), station.responding), ("Station", 1));
    }
}
