//! Alerts with roll call ("one call, a hundred answers"): a dispatcher's
//! alert reaches every joined member of the target groups once, each
//! recipient answers, and the sender and the control room watch the tally.
//!
//! The life of an alert:
//! 1. [`send`] checks the request on the sender's control task and hands the
//!    [`ptt_calllog::AlertSentRecord`] to the call log without waiting for the disk.
//! 2. Once the record is committed, the alert is registered, the sender gets
//!    the first `AlertTally` as its answer (the control room gets it as an
//!    event), and only then is the `Alert` delivered. What the relay
//!    answered, and what the recipients saw, is on disk.
//! 3. [`acknowledge`] checks an `AlertAck` and logs it durably; once it is
//!    committed the tally takes the answer, every change goes out as an
//!    `AlertTally` event with just the changed entry, and the answer is `Ack`.
//!
//! Alert ids are a hybrid logical clock: `max(unix µs now, last id + 1)`,
//! where the last id starts at the largest id in the call log. So ids rise
//! within a run, roughly say when the alert was sent, and stay unique across
//! restarts even if the wall clock was set back meanwhile (1 µs per alert:
//! a million alerts a second before the ids run ahead of the clock). They
//! stay below 2^53, so JSON consumers read them exactly.
//!
//! Memory stays bounded: an alert is forgotten [`ALERT_TTL`] after it was
//! sent, and at most [`MAX_ALERTS`] are kept (the oldest go first). An answer
//! to a forgotten alert is refused with `UNKNOWN_ALERT`.
//!
//! In a cluster, every relay delivers an alert to its own targets and keeps
//! a copy of its tally: each answer, once logged, goes to every relay
//! ([`share`], [`elsewhere`]); the sending dispatcher's relay tells the
//! dispatcher and every relay's control room of each change.
//!
//! [`registry`] keeps the alerts and their ids, [`tally`] counts the answers, and
//! [`delivery`] does the sending, logging and telling.

pub mod delivery;
pub mod elsewhere;
pub mod registry;
pub mod share;
mod tally;

pub use delivery::{Alerting, MAX_TEXT, acknowledge, send};
pub use elsewhere::{answer_from_elsewhere, deliver_from_elsewhere};
pub use registry::{ALERT_TTL, Alerts, MAX_ALERTS};
pub use share::{AlertShare, AnswerElsewhere};
