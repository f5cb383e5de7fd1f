//! When a subcommand stops: at ctrl-c, or after its `--seconds`.

use std::time::Duration;

/// Resolves when ctrl-c is pressed (never, if the handler cannot be set).
pub async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves after `seconds` (if given) or at ctrl-c, whichever is first.
pub(crate) async fn stop_after(seconds: Option<f64>) {
    match seconds.filter(|s| s.is_finite() && *s >= 0.0) {
        Some(s) => {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(s.min(1e7))) => {}
                () = ctrl_c() => {}
            }
        }
        None => ctrl_c().await,
    }
}
