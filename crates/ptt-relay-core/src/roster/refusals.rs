//! Bookkeeping of refused logins: a disabled terminal retrying without end is logged
//! once a minute, not at every attempt.

use std::time::{Duration, Instant};

use ptt_directory::TerminalId;

use super::locks::lock;
use super::state::Roster;

/// A disabled terminal's refused logins are logged at most this often.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

impl Roster {
    /// Notes a refused login of the disabled `terminal` at `now`; whether to log it (call
    /// log row and warning): once per [`REFUSAL_LOG_INTERVAL`] per terminal, so a terminal
    /// retrying without end costs no disk. The map holds disabled terminals only.
    pub fn note_refused_login(&self, terminal: TerminalId, now: Instant) -> bool {
        let mut logged = lock(&self.refusals_logged);
        match logged.get(&terminal) {
            Some(last) if now.saturating_duration_since(*last) < REFUSAL_LOG_INTERVAL => false,
            _ if !self.is_disabled(terminal) => false,
            _ => {
                logged.insert(terminal, now);
                true
            }
        }
    }
}
