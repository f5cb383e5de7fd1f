//! What the ops routes share: the relay's view, and the port's own access rules.

use std::sync::Arc;

use ptt_relay_core::view::RelayView;

use crate::access::OpsAccess;
use crate::token::AdminToken;

/// The state behind every ops route.
#[derive(Debug)]
pub struct OpsState {
    /// The running relay, as the ops port may see and act on it.
    pub relay: RelayView,
    /// Who may use the port: allowed host names, the view token, throttled warnings.
    pub access: OpsAccess,
    /// Bearer token of the admin API; `None` disables it.
    pub admin_token: Option<AdminToken>,
}

impl OpsState {
    /// The ops state over `relay`, with its access rules and admin token.
    pub fn new(relay: RelayView, access: OpsAccess, admin_token: Option<AdminToken>) -> Arc<Self> {
        Arc::new(Self {
            relay,
            access,
            admin_token,
        })
    }
}
