//! What every core-NATS bus between relays does alike: publish a value as
//! JSON, ask another relay, and hear the other relays on subjects whose last token names the
//! sending relay, this relay's own messages left out.

use std::time::Duration;

use async_nats::{Client, Message, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;

use crate::unavailable::NatsUnavailable;

/// Publishes `value` as JSON on `subject` (`doing` says what for, in an
/// error).
pub(crate) async fn publish_json(
    client: &Client,
    subject: String,
    value: &impl Serialize,
    doing: &str,
) -> Result<(), NatsUnavailable> {
    let payload =
        Bytes::from(serde_json::to_vec(value).map_err(|e| NatsUnavailable::new(doing, e))?);
    client
        .publish(subject, payload)
        .await
        .map_err(|e| NatsUnavailable::new(doing, e))
}

/// How a request to another relay went.
pub(crate) enum Asked {
    /// Its answer.
    Answered(Message),
    /// Nobody listens on the subject.
    NobodyListens,
    /// No answer in time.
    TimedOut,
    /// NATS did not take the request.
    Failed(async_nats::RequestError),
}

/// Sends `payload` on `subject` and waits at most `timeout` for one answer.
pub(crate) async fn ask(
    client: &Client,
    subject: String,
    payload: Bytes,
    timeout: Duration,
) -> Asked {
    match tokio::time::timeout(timeout, client.request(subject, payload)).await {
        Err(_) => Asked::TimedOut,
        Ok(Ok(message)) => Asked::Answered(message),
        Ok(Err(e)) => match e.kind() {
            async_nats::RequestErrorKind::NoResponders => Asked::NobodyListens,
            async_nats::RequestErrorKind::TimedOut => Asked::TimedOut,
            _ => Asked::Failed(e),
        },
    }
}

/// Subscribes to `subject` and waits until the server has the
/// subscription, so a request sent from then on finds this relay listening
/// (`doing` says what for, in an error).
pub(crate) async fn answer_on(
    client: &Client,
    subject: String,
    doing: &str,
) -> Result<Subscriber, NatsUnavailable> {
    let subscriber = client
        .subscribe(subject)
        .await
        .map_err(|e| NatsUnavailable::new(doing, e))?;
    client
        .flush()
        .await
        .map_err(|e| NatsUnavailable::new(doing, e))?;
    Ok(subscriber)
}

/// The other relays' messages on one subject pattern whose last token is
/// the sending relay's id.
#[derive(Debug)]
pub(crate) struct OthersFeed {
    subscriber: Subscriber,
    own_suffix: String,
}

impl OthersFeed {
    /// Hears `pattern` as relay `relay` (`doing` says what for, in an
    /// error).
    pub(crate) async fn subscribe(
        client: &Client,
        pattern: &str,
        relay: &str,
        doing: &str,
    ) -> Result<Self, NatsUnavailable> {
        let subscriber = client
            .subscribe(pattern.to_owned())
            .await
            .map_err(|e| NatsUnavailable::new(doing, e))?;
        Ok(Self {
            subscriber,
            own_suffix: format!(".{relay}"),
        })
    }

    /// The next message of another relay; `None` once NATS is gone for good.
    pub(crate) async fn next(&mut self) -> Option<Message> {
        while let Some(message) = self.subscriber.next().await {
            if !message.subject.as_str().ends_with(&self.own_suffix) {
                return Some(message);
            }
        }
        None
    }
}
