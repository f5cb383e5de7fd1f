//! What the relays keep on JetStream streams (admin actions, call-log
//! records): one file-stored stream per kind, and one durable consumer per
//! relay that hands it, after a restart too, what it has not acknowledged.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::unavailable::NatsUnavailable;

/// How much a stream keeps: the oldest messages go first past either.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kept {
    /// Past this age.
    pub(crate) age: Duration,
    /// Past this many bytes on NATS's disk (-1: no bound).
    pub(crate) bytes: i64,
}

/// Opens the stream `name` of `subjects` kept as `kept` says, creating it
/// if this relay is the first.
pub(crate) async fn open_stream(
    jetstream: &jetstream::Context,
    name: &str,
    subjects: &str,
    kept: Kept,
    doing: &str,
) -> Result<(), NatsUnavailable> {
    jetstream
        .get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![subjects.to_owned()],
            storage: stream::StorageType::File,
            max_age: kept.age,
            max_bytes: kept.bytes,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        })
        .await
        .map_err(|e| NatsUnavailable::new(doing, e))?;
    Ok(())
}

/// The messages of stream `name` that the durable consumer `durable` has
/// not acknowledged, from the oldest.
pub(crate) async fn follow_durable(
    jetstream: &jetstream::Context,
    name: &str,
    durable: String,
    doing: &str,
) -> Result<consumer::pull::Stream, NatsUnavailable> {
    let stream = jetstream
        .get_stream(name)
        .await
        .map_err(|e| NatsUnavailable::new(doing, e))?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &durable,
            consumer::pull::Config {
                durable_name: Some(durable.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| NatsUnavailable::new(doing, e))?;
    consumer
        .messages()
        .await
        .map_err(|e| NatsUnavailable::new(doing, e))
}

/// What a kept stream's entries say of themselves: the relay that wrote one
/// (a relay skips its own).
pub trait Written: serde::de::DeserializeOwned {
    /// The relay that wrote it.
    fn relay(&self) -> &str;
}

/// Another relay's entry of a kept stream, to acknowledge once this relay
/// has taken it in (stored, applied): until then NATS hands it over again.
#[derive(Debug)]
pub struct Pending<T> {
    /// The entry.
    pub entry: T,
    message: jetstream::Message,
}

impl<T> Pending<T> {
    /// Tells NATS this relay has the entry: it is not handed over again.
    pub async fn done(self) -> Result<(), NatsUnavailable> {
        self.message
            .ack()
            .await
            .map_err(|e| NatsUnavailable::new("acknowledging a kept entry", e))
    }
}

/// The other relays' entries of a kept stream, in the order they were
/// published, from the oldest this relay has not acknowledged.
pub struct Feed<T> {
    messages: consumer::pull::Stream,
    relay: std::sync::Arc<str>,
    entries: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Feed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("relay", &self.relay).finish()
    }
}

impl<T: Written> Feed<T> {
    /// Follows stream `name` with relay `relay`'s durable consumer
    /// `durable`.
    pub(crate) async fn follow(
        jetstream: &jetstream::Context,
        name: &str,
        durable: String,
        relay: std::sync::Arc<str>,
        doing: &str,
    ) -> Result<Self, NatsUnavailable> {
        Ok(Self {
            messages: follow_durable(jetstream, name, durable, doing).await?,
            relay,
            entries: std::marker::PhantomData,
        })
    }

    /// The next entry of another relay; `None` once NATS is gone for good.
    /// This relay's own entries and unreadable ones (written by a version
    /// this one cannot read) are acknowledged and skipped.
    pub async fn next(&mut self) -> Option<Pending<T>> {
        use futures_util::StreamExt;
        while let Some(message) = self.messages.next().await {
            let Ok(message) = message else {
                continue;
            };
            match serde_json::from_slice::<T>(&message.payload) {
                Ok(entry) if entry.relay() != &*self.relay => {
                    return Some(Pending { entry, message });
                }
                Ok(_) | Err(_) => {}
            }
            let _ = message.ack().await;
        }
        None
    }
}
