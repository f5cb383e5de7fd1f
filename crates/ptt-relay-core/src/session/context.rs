//! What a terminal's session works with: every subsystem a request can reach, handed in
//! by the relay at start. The session serves every request family, so it holds the most
//! handles of any part; each handle is a subsystem's own, and none of them holds the
//! session back.

use std::sync::Arc;

use ptt_directory::Directory;
use tokio_util::sync::CancellationToken;

use crate::alert::Alerting;
use crate::auth::login::Authenticator;
use crate::clock::Clock;
use crate::dispatch::Dispatch;
use crate::fanout::Fanout;
use crate::group::Groups;
use crate::log_sink::LogSink;
use crate::metrics::Metrics;
use crate::online::Online;
use crate::private_call::PrivateCalls;
use crate::roster::Roster;
use crate::session::control::rate::RateLimits;

/// The handles every session shares.
#[derive(Debug)]
pub struct SessionContext {
    /// Terminals, groups, ACLs, status codes.
    pub directory: Arc<Directory>,
    /// Runtime changes to the directory: who is disabled, who is a member of what now.
    pub roster: Arc<Roster>,
    /// Every group of the relay.
    pub groups: Arc<Groups>,
    /// Who is online; a session registers itself here.
    pub online: Arc<Online>,
    /// The voice hot path.
    pub fanout: Fanout,
    /// Roll calls and their tallies.
    pub alerts: Arc<Alerting>,
    /// Zone logic: positions, relay patrols, backup calls.
    pub dispatch: Arc<Dispatch>,
    /// Private calls.
    pub private_calls: Arc<PrivateCalls>,
    /// Login checks: failed logins per (address, terminal), the bounded
    /// hashing pool, resumption credentials.
    pub auth: Authenticator,
    /// The call log.
    pub log: LogSink,
    /// The relay's clock.
    pub clock: Clock,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Each session's request limits (settings; the defaults suit any real
    /// terminal).
    pub rate_limits: RateLimits,
    /// Cancelled when the relay shuts down.
    pub shutdown: CancellationToken,
}

impl SessionContext {
    /// The relay clock's wall time in milliseconds since the Unix epoch, as
    /// the call log records it.
    pub(super) fn unix_ms(&self) -> i64 {
        i64::try_from(self.clock.unix_us_now() / 1000).unwrap_or(i64::MAX)
    }
}
