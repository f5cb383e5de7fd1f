//! The budget of unauthenticated connections: at most `max-unauthenticated`
//! in total and `max-unauthenticated-per-address` from one source, each held
//! as a [`PreAuthSlot`] that gives its place back when dropped.
//!
//! Both limits are semaphores, taken in the same order (the address's, then
//! the total's) so waiters never deadlock; a waiter is served first come,
//! first served, and one that gives up (its time ran out) leaves its queue
//! at once. A source's semaphore exists only while someone holds or waits
//! for it, so the map is bounded by the slots and the waiting room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::address::SourceKey;
use crate::metrics::Metrics;
use crate::metrics::admission::AdmissionRefusal;

/// The places unauthenticated connections may hold.
#[derive(Debug)]
pub(super) struct PreAuthBudget {
    total: Arc<Semaphore>,
    max_total: usize,
    per_address: usize,
    sources: Mutex<HashMap<SourceKey, Arc<Semaphore>>>,
    metrics: Arc<Metrics>,
}

/// Which limit kept a connection from a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shortage {
    /// Every slot of the relay is taken.
    Total,
    /// Every slot of the connection's source is taken.
    Address,
}

impl Shortage {
    /// The refusal it becomes when the connection cannot wait.
    pub(super) fn refusal(self) -> AdmissionRefusal {
        match self {
            Shortage::Total => AdmissionRefusal::UnauthenticatedTotal,
            Shortage::Address => AdmissionRefusal::PerAddress,
        }
    }
}

impl PreAuthBudget {
    /// A budget of `max_total` slots, `per_address` of them per source;
    /// the slots held now are shown in `metrics`.
    pub(super) fn new(max_total: usize, per_address: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            per_address,
            sources: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// Slots held now.
    pub(super) fn in_use(&self) -> usize {
        self.max_total - self.total.available_permits()
    }

    /// A slot for a connection from `key` if one is free now.
    pub(super) fn try_take(self: &Arc<Self>, key: SourceKey) -> Result<PreAuthSlot, Shortage> {
        let taken = (|| {
            let address = self
                .source(key)
                .try_acquire_owned()
                .map_err(|_| Shortage::Address)?;
            let total = self
                .total
                .clone()
                .try_acquire_owned()
                .map_err(|_| Shortage::Total)?;
            Ok((address, total))
        })();
        self.slot_or_forget(key, taken)
    }

    /// A slot for a connection from `key`, waiting for one until `until`;
    /// the error names the limit still full then.
    pub(super) async fn take_until(
        self: &Arc<Self>,
        key: SourceKey,
        until: Instant,
    ) -> Result<PreAuthSlot, Shortage> {
        let source = self.source(key);
        let taken = async {
            let address = tokio::time::timeout_at(until, source.acquire_owned())
                .await
                .map_err(|_| Shortage::Address)?
                .map_err(|_| Shortage::Address)?;
            let total = tokio::time::timeout_at(until, self.total.clone().acquire_owned())
                .await
                .map_err(|_| Shortage::Total)?
                .map_err(|_| Shortage::Total)?;
            Ok((address, total))
        }
        .await;
        self.slot_or_forget(key, taken)
    }

    /// The slot made of both permits; without them, the source is
    /// forgotten if nobody else holds or waits for it.
    fn slot_or_forget(
        self: &Arc<Self>,
        key: SourceKey,
        taken: Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), Shortage>,
    ) -> Result<PreAuthSlot, Shortage> {
        match taken {
            Ok((address, total)) => Ok(self.slot(key, address, total)),
            Err(shortage) => {
                self.forget_if_idle(key);
                Err(shortage)
            }
        }
    }

    fn slot(
        self: &Arc<Self>,
        key: SourceKey,
        address: OwnedSemaphorePermit,
        total: OwnedSemaphorePermit,
    ) -> PreAuthSlot {
        self.metrics.admission.unauthenticated.inc();
        PreAuthSlot {
            budget: self.clone(),
            key,
            permits: Some((address, total)),
        }
    }

    /// The semaphore of `key`'s source, made on first use.
    fn source(&self, key: SourceKey) -> Arc<Semaphore> {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        sources
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_address)))
            .clone()
    }

    /// Forgets `key`'s semaphore if nobody holds or waits for it (only the
    /// map refers to it then).
    fn forget_if_idle(&self, key: SourceKey) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        if sources.get(&key).is_some_and(|s| Arc::strong_count(s) == 1) {
            sources.remove(&key);
        }
    }

    /// Sources with a slot held or awaited now.
    #[cfg(test)]
    fn sources(&self) -> usize {
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One unauthenticated connection's place; given back when dropped.
#[derive(Debug)]
pub(super) struct PreAuthSlot {
    budget: Arc<PreAuthBudget>,
    key: SourceKey,
    /// The source's permit and the total's, until dropped.
    permits: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

impl Drop for PreAuthSlot {
    fn drop(&mut self) {
        // The gauge goes down before the permits are given back: another
        // connection may take a permit on another thread the moment it is
        // free, and the gauge must never show more places than the limit
        // (it showed 9 of 8 when it went down after).
        self.budget.metrics.admission.unauthenticated.dec();
        // The permits go before the source is looked at, so its semaphore
        // is idle when nobody else holds or waits for it.
        drop(self.permits.take());
        self.budget.forget_if_idle(self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::*;

    fn key(ip: &str) -> SourceKey {
        SourceKey::of(ip.parse::<IpAddr>().unwrap())
    }

    fn budget(total: usize, per_address: usize) -> (Arc<PreAuthBudget>, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        (
            PreAuthBudget::new(total, per_address, metrics.clone()),
            metrics,
        )
    }

    #[test]
    fn one_address_holds_at_most_its_share_and_slots_return_on_drop() {
        let (budget, metrics) = budget(4, 2);
        let a1 = budget.try_take(key("192.0.2.1")).unwrap();
        let a2 = budget.try_take(key("192.0.2.1")).unwrap();
        assert_eq!(
            budget.try_take(key("192.0.2.1")).unwrap_err(),
            Shortage::Address
        );
        let b1 = budget.try_take(key("192.0.2.2")).unwrap();
        let b2 = budget.try_take(key("192.0.2.2")).unwrap();
        // The total is full: a third address is refused on the total.
        assert_eq!(
            budget.try_take(key("192.0.2.3")).unwrap_err(),
            Shortage::Total
        );
        assert_eq!(budget.in_use(), 4);
        assert_eq!(metrics.admission.unauthenticated.get(), 4);
        // A refused attempt holds nothing: the third address was never counted.
        assert_eq!(budget.sources(), 2);

        drop(a1);
        assert_eq!(budget.in_use(), 3);
        assert_eq!(metrics.admission.unauthenticated.get(), 3);
        let a3 = budget.try_take(key("192.0.2.1")).unwrap();
        drop((a2, a3, b1, b2));
        assert_eq!(budget.in_use(), 0);
        assert_eq!(metrics.admission.unauthenticated.get(), 0);
        assert_eq!(budget.sources(), 0, "idle sources are forgotten");
    }

    #[test]
    fn the_gauge_never_shows_more_places_than_the_limit() {
        // Two threads take one address's only place in turn: whoever holds
        // it must never see the gauge count the other's as still held.
        let (budget, metrics) = budget(4, 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let takers: Vec<_> = (0..2)
            .map(|_| {
                let (budget, metrics) = (budget.clone(), metrics.clone());
                std::thread::spawn(move || {
                    let (mut most, mut taken) = (0, 0);
                    for _ in 0..200_000 {
                        if std::time::Instant::now() > deadline {
                            break;
                        }
                        if let Ok(slot) = budget.try_take(key("192.0.2.1")) {
                            most = most.max(metrics.admission.unauthenticated.get());
                            taken += 1;
                            drop(slot);
                        }
                    }
                    (most, taken)
                })
            })
            .collect();
        for taker in takers {
            let (most, taken) = taker.join().unwrap();
            assert!(taken > 0, "each thread held the place at least once");
            assert!(most <= 1, "the gauge showed {most} of 1");
        }
    }

    #[tokio::test]
    async fn a_waiter_gets_the_slot_its_address_gives_back_and_gives_up_in_time() {
        let (budget, _) = budget(8, 1);
        let held = budget.try_take(key("192.0.2.1")).unwrap();
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move {
                let until = Instant::now() + Duration::from_secs(10);
                budget.take_until(key("192.0.2.1"), until).await.is_ok()
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert!(waiter.await.unwrap(), "the waiter got the freed slot");

        let held = budget.try_take(key("192.0.2.1")).unwrap();
        let until = Instant::now() + Duration::from_millis(50);
        let late = budget.take_until(key("192.0.2.1"), until).await;
        assert_eq!(late.unwrap_err(), Shortage::Address);
        drop(held);
        assert_eq!(budget.in_use(), 0);
        assert_eq!(budget.sources(), 0);
    }

    #[tokio::test]
    async fn a_waiter_for_the_total_names_the_total() {
        let (budget, _) = budget(1, 1);
        let _held = budget.try_take(key("192.0.2.1")).unwrap();
        let until = Instant::now() + Duration::from_millis(50);
        let other = budget.take_until(key("192.0.2.2"), until).await;
        assert_eq!(other.unwrap_err(), Shortage::Total);
        // The other address's semaphore went with its waiter.
        assert_eq!(budget.sources(), 1);
    }
}
