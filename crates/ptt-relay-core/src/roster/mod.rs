//! The directory as changed at run time: terminals disabled and group memberships changed
//! through the admin API of the ops port, on top of the directory file loaded at start.
//!
//! The file stays the truth of what exists (terminals, groups, their static members); the
//! roster holds what an administrator changed since. Each change is written to the call log
//! (`admin_actions`) before it is applied and replayed from there at start, so a disabled
//! terminal stays disabled across a restart. Sessions ask the roster, not the file, who may
//! log in and which groups a terminal belongs to.
//!
//! On top of both, zone logic (`crate::dispatch`) adds members for a while: the guards of a
//! compound a patrol is passing, the guards pulled into a backup call. Those grants live
//! only in memory (the call log records each change in `regroups`, but a restart starts
//! without them: patrols report their positions again, emergencies are declared again).
//!
//! Reads take a short read lock (never held across an await) at login, join and regroup —
//! never on the voice path.

mod admin;
mod dynamic_grant;
mod error;
mod locks;
mod membership;
mod refusals;
mod state;
#[cfg(test)]
mod tests;
mod zone_grants;

pub use dynamic_grant::DynamicGrant;
pub use error::RosterError;
pub use refusals::REFUSAL_LOG_INTERVAL;
pub use state::Roster;
