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
