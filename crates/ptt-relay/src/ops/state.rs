//! What the ops routes share: the relay's view, and the port's own access rules.

use std::sync::Arc;

use crate::config::{AdminToken, Config};
use crate::view::RelayView;

use super::access::OpsAccess;

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
    /// The ops state over `relay` with the access rules of `config`.
    pub fn new(relay: RelayView, config: &Config) -> Arc<Self> {
        Arc::new(Self {
            relay,
            access: OpsAccess::from_config(config),
            admin_token: config.admin_token.clone(),
        })
    }
}
