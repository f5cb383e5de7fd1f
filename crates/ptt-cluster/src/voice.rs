//! Voice between relays: a group's frames on NATS core subjects.
//!
//! A relay with listeners of a group subscribes to the group's voice; a
//! relay whose terminal talks publishes each frame once, whatever the
//! number of relays or listeners, and NATS hands it to each subscribed
//! relay once, which fans it out to its own listeners. Core NATS, not
//! JetStream: voice is worth nothing late, so nothing is stored or
//! redelivered, like a QUIC datagram.
//!
//! Subjects are `ptt.voice.<group>.<relay>`: the talker's relay is in the
//! subject, so a relay subscribed to `ptt.voice.<group>.*` can drop its own
//! frames without parsing anything, and the payload stays the voice
//! datagram exactly as terminals send it (proto/voice.md §3).

use std::sync::Arc;

use async_nats::{Client, Subject, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::unavailable::NatsUnavailable;

/// Why voice could not go between relays.
#[derive(Debug, thiserror::Error)]
pub enum VoiceBusError {
    /// A relay id must be one NATS subject token.
    #[error("relay id {0:?} is not usable in NATS subjects: letters, digits, '-' and '_' only")]
    RelayId(String),
    /// NATS refused or could not take a publish or a subscription.
    #[error(transparent)]
    Unavailable(#[from] NatsUnavailable),
}

/// This relay's end of the voice between relays.
#[derive(Debug, Clone)]
pub struct VoiceBus {
    client: Client,
    relay: Arc<str>,
}

/// A voice datagram from another relay's talker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFrame {
    /// The subject it came on (the relay is its last token).
    subject: Subject,
    /// The voice datagram as the talker sent it.
    pub datagram: Bytes,
}

impl RemoteFrame {
    /// The relay the talker is on.
    pub fn relay(&self) -> &str {
        self.subject.rsplit('.').next().unwrap_or_default()
    }
}

impl VoiceBus {
    /// The voice bus of relay `relay` over `client`.
    pub fn new(client: Client, relay: &str) -> Result<Self, VoiceBusError> {
        let usable = !relay.is_empty()
            && relay
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !usable {
            return Err(VoiceBusError::RelayId(relay.to_owned()));
        }
        Ok(Self {
            client,
            relay: relay.into(),
        })
    }

    /// The subject this relay's talkers' frames of `group` go on; made once
    /// per group by a publisher that keeps it, so a frame costs no
    /// allocation of its own.
    pub fn subject(&self, group: u32) -> Subject {
        Subject::from(format!("ptt.voice.{group}.{}", self.relay))
    }

    /// Sends one of this relay's talkers' datagrams to every relay with
    /// listeners of `group`: one publish, however many relays listen.
    /// Returns once the client has it; it is written with the next batch.
    pub async fn publish(&self, group: u32, datagram: Bytes) -> Result<(), VoiceBusError> {
        self.publish_on(self.subject(group), datagram).await
    }

    /// [`VoiceBus::publish`] on a subject made by [`VoiceBus::subject`].
    pub async fn publish_on(&self, subject: Subject, datagram: Bytes) -> Result<(), VoiceBusError> {
        self.client
            .publish(subject, datagram)
            .await
            .map_err(|e| NatsUnavailable::new("sending a group's voice", e))?;
        Ok(())
    }

    /// Waits until what this relay published or subscribed so far has been
    /// written to NATS.
    pub async fn flush(&self) -> Result<(), VoiceBusError> {
        self.client
            .flush()
            .await
            .map_err(|e| NatsUnavailable::new("flushing to NATS", e))?;
        Ok(())
    }

    /// Starts hearing `group`'s voice from the other relays (this relay's
    /// own frames are left out). Dropping the [`GroupVoice`] stops it.
    pub async fn subscribe(&self, group: u32) -> Result<GroupVoice, VoiceBusError> {
        let subscriber = self
            .client
            .subscribe(format!("ptt.voice.{group}.*"))
            .await
            .map_err(|e| NatsUnavailable::new(format!("listening to group {group}'s voice"), e))?;
        Ok(GroupVoice {
            subscriber,
            own_suffix: format!(".{}", self.relay),
        })
    }
}

/// One group's voice from the other relays, as it arrives.
#[derive(Debug)]
pub struct GroupVoice {
    subscriber: Subscriber,
    own_suffix: String,
}

impl GroupVoice {
    /// The next datagram from another relay; `None` once the connection to
    /// NATS is gone for good.
    pub async fn next(&mut self) -> Option<RemoteFrame> {
        while let Some(message) = self.subscriber.next().await {
            if message.subject.as_str().ends_with(&self.own_suffix) {
                continue;
            }
            return Some(RemoteFrame {
                subject: message.subject,
                datagram: message.payload,
            });
        }
        None
    }
}
