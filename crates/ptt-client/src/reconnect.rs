//! Keeping the terminal connected: when the connection is lost, log in
//! again with exponential backoff and jitter, rejoin the user's groups, and
//! say so with [`Event::Disconnected`] and [`Event::Reconnected`].
//!
//! A relay that was killed and started again answers the terminal's next
//! packet (a keep-alive at the latest, see [`crate::config::KEEP_ALIVE`])
//! with a stateless reset, so the loss is noticed at once; the first attempt
//! then waits a random part of
//! [`first_attempt_spread`](crate::ReconnectPolicy::first_attempt_spread) so
//! that a whole fleet does not log in at the same instant.
//!
//! Not retried: a terminal an administrator disabled (`GoingAway`
//! AUTH_REVOKED or close code 2: [`ClientError::Disabled`]), a relay that
//! refuses the credentials (AUTH_FAILED), a certificate that is no longer the
//! pinned one, and a session taken over by another login of the same
//! terminal (`GoingAway` SESSION_REPLACED or close code 4:
//! [`ClientError::Replaced`]; reconnecting would only throw that one out in
//! turn). The client then ends for good: the last event is
//! [`Event::Disconnected`] with `will_reconnect: false` and the reason, every
//! later request fails with that error, and event streams end.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use tokio::task::JoinHandle;

use crate::answers::send_quality_report;
use crate::config::ReconnectPolicy;
use crate::connection::{self, CLOSE_NORMAL, Established, SessionEnd};
use crate::error::ClientError;
use crate::events::Event;
use crate::link::Link;
use crate::shared::{FloorSignal, Shared};

/// Exponential backoff with jitter: the delays between reconnect attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: ReconnectPolicy,
    next: Duration,
    random: RandomState,
    attempt: u64,
}

impl Backoff {
    /// Starts at the policy's initial delay.
    #[must_use]
    pub fn new(policy: ReconnectPolicy) -> Self {
        Self {
            policy,
            next: policy.initial_delay,
            random: RandomState::new(),
            attempt: 0,
        }
    }

    /// The delay before the first attempt: `hint` (the relay's
    /// `GoingAway.reconnect_after_ms`, zero without one) plus a uniformly
    /// random part of the policy's `first_attempt_spread`.
    pub fn first_delay(&mut self, hint: Duration) -> Duration {
        let unit = (self.uniform() + 1.0) / 2.0;
        hint + self.policy.first_attempt_spread.mul_f64(unit)
    }

    /// The delay before the next attempt: the current base spread by the
    /// jitter, never above the policy's maximum. The base then doubles.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next.min(self.policy.max_delay);
        self.next = (self.next * 2).min(self.policy.max_delay);
        let unit = self.uniform();
        let jitter = self.policy.jitter.clamp(0.0, 1.0);
        base.mul_f64((1.0 + unit * jitter).max(0.0))
            .min(self.policy.max_delay)
    }

    /// A uniform number in [-1, 1) from a randomly keyed hash: enough to
    /// spread terminals apart, no extra dependency.
    fn uniform(&mut self) -> f64 {
        self.attempt += 1;
        let bits = self.random.hash_one(self.attempt);
        (bits >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Watches the connection and re-establishes it until the client is shut
/// down or reconnecting is pointless.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    mut link: Arc<Link>,
    mut reader: JoinHandle<SessionEnd>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let end = tokio::select! {
            end = &mut reader => end.unwrap_or_else(|_| SessionEnd {
                reason: "control reader failed".into(),
                going_away: None,
                fatal: None,
            }),
            _ = shutdown.wait_for(|closed| *closed) => {
                link.conn.close(CLOSE_NORMAL.into(), b"client closed");
                return;
            }
        };
        shared.set_link(None);
        link.conn
            .close(CLOSE_NORMAL.into(), b"control stream ended");
        shared.signal_all(FloorSignal::Disconnected);
        if *shared.shutdown.borrow() {
            return;
        }
        if let Some(error) = end.fatal {
            tracing::warn!(%error, "disconnected from the relay for good; not reconnecting");
            shared.end_for_good(error);
            return;
        }
        let will_reconnect = shared.config.reconnect.enabled;
        tracing::warn!(reason = %end.reason, will_reconnect, "disconnected from the relay");
        if !will_reconnect {
            shared.end_for_good_with(ClientError::Closed(end.reason.clone()), end.reason);
            return;
        }
        shared.emit(Event::Disconnected {
            reason: end.reason.clone(),
            will_reconnect,
        });
        // In a cluster, the relay that just failed is the last one to try.
        shared.next_server();
        let hint = end.going_away.as_ref().map_or(Duration::ZERO, |g| {
            Duration::from_millis(u64::from(g.reconnect_after_ms))
        });
        let Some(established) = reconnect(&shared, hint, &mut shutdown).await else {
            return;
        };
        link = established.link;
        reader = established.reader;
    }
}

/// Tries to log in again until it works, the client is shut down (`None`),
/// or the relay refuses for good (`None`, after telling the user).
async fn reconnect(
    shared: &Arc<Shared>,
    hint: Duration,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Established> {
    let mut backoff = Backoff::new(shared.config.reconnect);
    let mut delay = backoff.first_delay(hint);
    let mut attempt = 0u32;
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|closed| *closed) => return None,
        }
        attempt += 1;
        let result = match connection::establish(shared).await {
            Ok(established) => rejoin(shared, &established.link)
                .await
                .map(|()| established),
            Err(error) => Err(error),
        };
        match result {
            Ok(established) => {
                if *shared.shutdown.borrow() {
                    established
                        .link
                        .conn
                        .close(CLOSE_NORMAL.into(), b"client closed");
                    return None;
                }
                shared.set_link(Some(established.link.clone()));
                shared.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                let groups = shared.joined();
                tracing::info!(attempt, ?groups, "reconnected to the relay");
                shared.emit(Event::Reconnected {
                    session_id: established.link.hello.session_id,
                    groups,
                });
                return Some(established);
            }
            Err(
                error @ (ClientError::AuthFailed
                | ClientError::CertificateNotTrusted(_)
                | ClientError::UnsupportedVersion(_)
                | ClientError::CertificateFile { .. }
                | ClientError::Config(_)
                | ClientError::Closed(_)
                | ClientError::Disabled
                | ClientError::Replaced { .. }),
            ) => {
                tracing::error!(%error, "giving up reconnecting");
                shared.end_for_good(error);
                return None;
            }
            Err(error) => {
                delay = backoff.next_delay();
                shared.next_server();
                tracing::debug!(%error, attempt, ?delay, "reconnect attempt failed");
                shared.emit(Event::ReconnectFailed {
                    attempt,
                    error,
                    retry_in: delay,
                });
            }
        }
    }
}

/// Makes a fresh login's group membership what the user asked for: the
/// relay auto-joins listenable groups, so groups the user left are left
/// again and groups the user joined that are not auto-joined are joined.
/// A group the user may no longer join is reported in the log and skipped.
async fn rejoin(shared: &Arc<Shared>, link: &Arc<Link>) -> Result<(), ClientError> {
    shared.logged_in(&link.hello);
    for (group, join) in shared.reconcile() {
        let request = if join {
            Request::JoinGroup(pb::JoinGroup { group_id: group })
        } else {
            Request::LeaveGroup(pb::LeaveGroup { group_id: group })
        };
        match link.request(request).await {
            Ok(Body::JoinOk(_)) | Ok(Body::LeaveOk(_)) => {
                shared.set_joined(group, join, false);
            }
            Ok(other) => {
                tracing::warn!(group, join, answer = ?other, "could not restore group membership");
            }
            Err(error @ (ClientError::Disconnected | ClientError::Timeout)) => {
                link.conn.close(CLOSE_NORMAL.into(), b"rejoin failed");
                return Err(error);
            }
            Err(error) => {
                tracing::warn!(group, join, %error, "could not restore group membership");
            }
        }
    }
    Ok(())
}

/// Sends the quality meter's report every `interval` while connected, when
/// there is something to report.
pub(crate) async fn report_quality(shared: Arc<Shared>, interval: Duration) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait_for(|closed| *closed) => return,
        }
        if shared.link().is_err() {
            continue;
        }
        if let Some(report) = shared.quality.take_report(interval)
            && let Err(error) = send_quality_report(&shared, report).await
        {
            tracing::debug!(%error, "quality report not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_bounded_jitter() {
        let policy = ReconnectPolicy {
            enabled: true,
            first_attempt_spread: Duration::from_millis(500),
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            jitter: 0.25,
        };
        let mut backoff = Backoff::new(policy);
        let mut base = 100.0;
        for _ in 0..12 {
            let delay = backoff.next_delay().as_secs_f64() * 1000.0;
            assert!(
                delay >= base * 0.75 - 1.0 && delay <= (base * 1.25).min(5000.0) + 1.0,
                "{delay} vs {base}"
            );
            base = (base * 2.0f64).min(5000.0);
        }
        let without_jitter = ReconnectPolicy {
            jitter: 0.0,
            ..policy
        };
        let mut backoff = Backoff::new(without_jitter);
        let delays: Vec<_> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800]);
    }

    #[test]
    fn first_attempts_spread_over_the_window_after_the_hint() {
        let policy = ReconnectPolicy::default();
        let spread = policy.first_attempt_spread;
        assert_eq!(spread, Duration::from_millis(500));
        let firsts: Vec<Duration> = (0..200)
            .map(|_| Backoff::new(policy).first_delay(Duration::ZERO))
            .collect();
        assert!(firsts.iter().all(|d| *d <= spread), "{firsts:?}");
        // A fleet is spread over the window, not bunched at one end.
        let early = firsts.iter().filter(|d| **d < spread / 4).count();
        let late = firsts.iter().filter(|d| **d > spread * 3 / 4).count();
        assert!(early > 10 && late > 10, "{early} early, {late} late");

        let hint = Duration::from_secs(1);
        let mut backoff = Backoff::new(policy);
        let first = backoff.first_delay(hint);
        assert!(first >= hint && first <= hint + spread, "{first:?}");
        // The retries then follow the exponential backoff from its start.
        let second = backoff.next_delay();
        assert!(
            second >= Duration::from_millis(75) && second <= Duration::from_millis(125),
            "{second:?}"
        );
    }
}
