//! Keeping a floor lease: a task renews it while the relay owns the group,
//! and the group asks [`HeldFloor::may_grant`] before each grant.
//!
//! The renewals and the grants never wait on each other: the task writes the
//! lease's deadline into a watch channel, and a grant only reads it. A
//! renewal NATS does not answer leaves the deadline where it was, so the
//! floor stops being granted when it passes, without anyone telling the
//! group. A renewal NATS refuses (the key is no longer the one this relay
//! wrote: the lease ran out during an outage, or another relay owns it now)
//! ends the lease at once, and the keeper never takes it back by itself:
//! the group must take the floor anew, under a new token. A renewal that
//! gets through after the deadline passed makes the floor grantable again,
//! which is safe: the key was still this relay's, so no one else could have
//! taken the floor meanwhile.

use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::lease::{FloorLeases, Lease, LeaseError};

/// A floor lease kept alive by a renewing task; released when dropped.
#[derive(Debug)]
pub struct HeldFloor {
    group: u32,
    token: u64,
    deadline: watch::Receiver<Option<Instant>>,
    task: JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl HeldFloor {
    /// Starts renewing `lease` every [`LeaseConfig::renew_every`](crate::LeaseConfig::renew_every).
    pub fn keep(leases: FloorLeases, lease: Lease) -> Self {
        let (deadline_tx, deadline) = watch::channel(Some(lease.valid_until()));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (group, token) = (lease.group(), lease.token());
        let task = tokio::spawn(renew(leases, lease, deadline_tx, stopped));
        Self {
            group,
            token,
            deadline,
            task,
            stop: Some(stop),
        }
    }

    /// The group whose floor this is.
    pub fn group(&self) -> u32 {
        self.group
    }

    /// The lease's fencing token.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Whether the floor may be granted now: the lease is neither lost nor
    /// past the deadline its last successful renewal set.
    pub fn may_grant(&self) -> bool {
        self.deadline
            .borrow()
            .is_some_and(|deadline| Instant::now() < deadline)
    }

    /// Until when the floor may be granted, as the last successful renewal
    /// set it; `None` once the lease is gone for good. A task that must stop
    /// granting on time sleeps until then and asks [`HeldFloor::may_grant`]
    /// again.
    pub fn grantable_until(&self) -> Option<Instant> {
        *self.deadline.borrow()
    }

    /// Whether the lease is gone for good (refused by NATS, or released).
    pub fn is_lost(&self) -> bool {
        self.deadline.borrow().is_none()
    }

    /// Waits until the lease is gone for good.
    pub async fn lost(&mut self) {
        // An error means the task ended, which it does only once the lease
        // is gone.
        let _ = self.deadline.wait_for(Option::is_none).await;
    }

    /// Gives the floor up now, so another relay may take it at once, and
    /// waits until NATS has been told (or could not be).
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for HeldFloor {
    /// Dropped without [`HeldFloor::release`], the task still releases the
    /// lease on its way out.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The renewing task: renews until told to stop (then releases) or until
/// the lease is lost.
async fn renew(
    leases: FloorLeases,
    mut lease: Lease,
    deadline: watch::Sender<Option<Instant>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(leases.config().renew_every());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is now: the lease was just taken
    loop {
        tokio::select! {
            _ = &mut stop => {
                deadline.send_replace(None);
                let _ = leases.release(lease).await;
                return;
            }
            _ = ticker.tick() => {}
        }
        match leases.renew(&mut lease).await {
            Ok(()) => {
                deadline.send_replace(Some(lease.valid_until()));
            }
            Err(LeaseError::Lost { .. } | LeaseError::Unreadable { .. }) => {
                deadline.send_replace(None);
                return;
            }
            // The deadline stays: the floor stops at it unless a later
            // renewal gets through.
            Err(LeaseError::Unavailable(_)) => {}
        }
    }
}
