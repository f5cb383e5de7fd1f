//! The control requests of one authenticated terminal: checked against the
//! directory, then answered here or handed to the group's task.
//!
//! `session` holds a terminal's control state and the helpers every family
//! answers with; `lifecycle` starts the session, reads its requests and
//! finishes it; `requests` routes each request to its family: `floor`,
//! `membership` (and `regroup`, following membership changes made
//! elsewhere), `calls` (private calls), `alerts`, `reports` (location,
//! status, quality, presence). `limit` rate-limits the reports.

mod alerts;
mod calls;
mod floor;
mod lifecycle;
mod limit;
mod membership;
mod regroup;
mod reports;
mod requests;
pub(super) mod session;
