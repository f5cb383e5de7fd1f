//! What the ops routes share: the relay's view, the port's own access rules and limits,
//! and its counters.

use std::sync::Arc;

use ptt_relay_core::view::RelayView;

use crate::access::OpsAccess;
use crate::counters::OpsCounters;
use crate::limits::OpsLimits;
use crate::tiles::TileUrl;
use crate::token::AdminTokens;
use crate::token_limit::TokenLimit;

/// The state behind every ops route.
#[derive(Debug)]
pub struct OpsState {
    /// The running relay, as the ops port may see and act on it.
    pub relay: RelayView,
    /// Who may use the port: allowed host names, the view token, throttled warnings.
    pub access: OpsAccess,
    /// Bearer tokens of the admin API, each naming its operator or not; none (or
    /// a blank one) disables it.
    pub admin_tokens: AdminTokens,
    /// Connection cap, timeouts and the wrong-token rate limit.
    pub limits: OpsLimits,
    /// Wrong tokens counted against [`OpsLimits`].
    pub(crate) token_limit: TokenLimit,
    /// What the port counts about its clients.
    pub(crate) counters: OpsCounters,
    /// The console map's tile server, if the site has one (`console-tiles`).
    pub console_tiles: Option<TileUrl>,
}

impl OpsState {
    /// The ops state over `relay`, with its access rules, admin tokens and limits, and
    /// the console map's tile server if there is one.
    pub fn new(
        relay: RelayView,
        access: OpsAccess,
        admin_tokens: AdminTokens,
        limits: OpsLimits,
        console_tiles: Option<TileUrl>,
    ) -> Arc<Self> {
        Arc::new(Self {
            relay,
            access,
            admin_tokens,
            token_limit: TokenLimit::new(
                limits.token_failures_per_minute,
                limits.token_failures_per_minute_total,
            ),
            limits,
            counters: OpsCounters::default(),
            console_tiles,
        })
    }
}
