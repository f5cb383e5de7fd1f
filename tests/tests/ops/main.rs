//! End-to-end tests of the operations port: metrics, the history API, the admin API,
//! the dashboard in a real browser, and the deploy files against the metrics.
//!
//! One test binary for the whole area: each binary links the whole relay, so one
//! link instead of one per file keeps an incremental rebuild short.

#[path = "../admin_port/mod.rs"]
mod admin_port;
#[path = "../browser/mod.rs"]
mod browser;
#[path = "../ops_port/mod.rs"]
mod ops_port;

mod console_page;
mod dashboard_feed;
mod dashboard_page;
mod dashboard_zones;
mod deploy;
mod ops_access;
mod ops_admin_auth;
mod ops_admin_disable;
mod ops_admin_emergency;
mod ops_admin_membership;
mod ops_api_history;
mod ops_api_metrics;
mod ops_api_zones;
mod ops_limits;
