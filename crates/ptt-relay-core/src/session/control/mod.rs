//! The control requests of one authenticated terminal: checked against the
//! directory, then answered here or handed to the group's task.
//!
//! `session` holds a terminal's control state and the helpers every family
//! answers with; `lifecycle` starts the session, reads its requests and
//! finishes it; `requests` routes each request to its family: `floor`,
//! `membership` (and `regroup`, following membership changes made
//! elsewhere), `calls` (private calls), `alerts`, `reports` (location,
//! status, quality, presence). `limit` is a token bucket; `rate` holds the
//! per-family request limits every request is checked against first, and
//! `presence` coalesces the presence updates the control room is told.

mod alerts;
mod calls;
mod floor;
mod lifecycle;
mod limit;
mod membership;
mod presence;
pub(super) mod rate;
mod regroup;
mod reports;
mod requests;
pub(super) mod session;
