//! Private calls between terminals of two relays: the caller's relay keeps
//! the call (its no-answer timer and its call-log row), the callee's relay
//! rings and hears the answer, and each tells the other what its own
//! terminal did.
//!
//! Core NATS request/reply on `ptt.call.<relay>`, the relay told. Each
//! relay takes its notes in one task, in the order each other relay sent
//! them. The call's voice and floor need nothing here: its temporary group
//! is an ordinary group of the cluster (its floor owned by one relay, its
//! voice on the group's subject).

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, Subject, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::peers::{Asked, answer_on, ask};
use crate::unavailable::NatsUnavailable;

/// What one relay tells another about a call between their terminals.
/// Reasons are the terminal protocol's numbers
/// (`PrivateCallRejectReason`, `PrivateCallEndReason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "note")]
pub enum CallNote {
    /// Ring the told relay's terminal `callee` (answered with
    /// [`CallReply::Ringing`] or [`CallReply::Refused`]).
    Ring {
        /// The call, as both parties are told it.
        call_id: u64,
        /// The caller, a terminal of the telling relay.
        caller: u32,
        /// Its name, as the callee is shown it.
        caller_name: String,
        /// The callee.
        callee: u32,
        /// The call's temporary group (one of the caller's relay's).
        group: u32,
        /// An emergency call: it takes the callee out of another call.
        emergency: bool,
    },
    /// The callee accepted and joined the call's group on its relay; the
    /// caller's relay joins the caller ([`CallReply::Done`]) or says the
    /// call is over ([`CallReply::UnknownCall`]).
    Accepted {
        /// The call.
        call_id: u64,
    },
    /// The callee did not take the call (declined, busy, no answer).
    Rejected {
        /// The call.
        call_id: u64,
        /// Why, as the caller is told it.
        reason: i32,
    },
    /// The telling relay's party ended the call (hung up, lost its
    /// connection, was pre-empted) or the caller's relay gave up ringing.
    Ended {
        /// The call.
        call_id: u64,
        /// Why, as the other party is told it.
        reason: i32,
    },
    /// Does the told relay still have the call? ([`CallReply::Done`] or
    /// [`CallReply::UnknownCall`].) Asked every second of every call
    /// between relays, so a call one relay ended without the other hearing
    /// it (a lost note, a relay restarted) ends on both.
    Held {
        /// The call.
        call_id: u64,
    },
}

/// The told relay's answer to a [`CallNote`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reply")]
pub enum CallReply {
    /// The callee's terminal rings.
    Ringing,
    /// The callee cannot take the call (`PrivateCallRejectReason`).
    Refused {
        /// Why, as the caller is told it.
        reason: i32,
    },
    /// Done as told.
    Done,
    /// The told relay has no such call (it ended meanwhile).
    UnknownCall,
}

/// A note as it travels: who sent it, and what it says.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    relay: String,
    #[serde(flatten)]
    note: CallNote,
}

/// Why a note to another relay went unanswered.
#[derive(Debug, thiserror::Error)]
pub enum CallBusError {
    /// Relay `relay` takes no notes (not running, or not in the cluster).
    #[error("relay {relay} is not taking private calls")]
    NotThere {
        /// The relay told.
        relay: String,
    },
    /// The relay did not answer in time.
    #[error("relay {relay} did not answer within {timeout:?}")]
    TimedOut {
        /// The relay told.
        relay: String,
        /// How long the teller waited.
        timeout: Duration,
    },
    /// A message that is not a note or reply.
    #[error("unreadable private-call message: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// NATS did not take the note.
    #[error(transparent)]
    Unavailable(#[from] NatsUnavailable),
}

/// This relay's end of the private calls between relays.
#[derive(Debug, Clone)]
pub struct CallBus {
    client: Client,
    relay: Arc<str>,
}

fn subject(relay: &str) -> String {
    format!("ptt.call.{relay}")
}

impl CallBus {
    /// The notes of relay `relay` over `client`.
    pub fn new(client: Client, relay: &str) -> Self {
        Self {
            client,
            relay: relay.into(),
        }
    }

    /// Tells relay `relay` `note` and waits at most `timeout` for its reply.
    pub async fn tell(
        &self,
        relay: &str,
        note: CallNote,
        timeout: Duration,
    ) -> Result<CallReply, CallBusError> {
        let envelope = Envelope {
            relay: self.relay.to_string(),
            note,
        };
        let payload = Bytes::from(serde_json::to_vec(&envelope)?);
        let message = match ask(&self.client, subject(relay), payload, timeout).await {
            Asked::Answered(message) => message,
            Asked::NobodyListens => {
                return Err(CallBusError::NotThere {
                    relay: relay.to_owned(),
                });
            }
            Asked::TimedOut => {
                return Err(CallBusError::TimedOut {
                    relay: relay.to_owned(),
                    timeout,
                });
            }
            Asked::Failed(e) => {
                return Err(NatsUnavailable::new(format!("telling {relay} of a call"), e).into());
            }
        };
        Ok(serde_json::from_slice(&message.payload)?)
    }

    /// Starts taking the other relays' notes to this one.
    pub async fn serve(&self) -> Result<CallInbox, NatsUnavailable> {
        let doing = "taking private calls from the other relays";
        let subscriber = answer_on(&self.client, subject(&self.relay), doing).await?;
        Ok(CallInbox {
            client: self.client.clone(),
            subscriber,
        })
    }
}

/// The notes other relays send this one.
#[derive(Debug)]
pub struct CallInbox {
    client: Client,
    subscriber: Subscriber,
}

/// A note waiting for its reply.
#[derive(Debug)]
pub struct PendingNote {
    /// The relay that sent it.
    pub relay: String,
    /// What it says.
    pub note: CallNote,
    reply_to: Subject,
    client: Client,
}

impl CallInbox {
    /// The next note; `None` once the NATS connection is gone for good.
    /// A message with nowhere to answer to is skipped (it cannot have come
    /// from a relay); one this relay cannot read (a newer relay's note) is
    /// answered [`CallReply::UnknownCall`] at once, so its sender need not
    /// wait.
    pub async fn next(&mut self) -> Option<PendingNote> {
        while let Some(message) = self.subscriber.next().await {
            let Some(reply_to) = message.reply else {
                continue;
            };
            let Ok(envelope) = serde_json::from_slice::<Envelope>(&message.payload) else {
                let unknown = serde_json::to_vec(&CallReply::UnknownCall).unwrap_or_default();
                let _ = self.client.publish(reply_to, unknown.into()).await;
                continue;
            };
            return Some(PendingNote {
                relay: envelope.relay,
                note: envelope.note,
                reply_to,
                client: self.client.clone(),
            });
        }
        None
    }
}

impl PendingNote {
    /// Answers the relay that sent the note.
    pub async fn reply(self, reply: CallReply) -> Result<(), CallBusError> {
        let payload = Bytes::from(serde_json::to_vec(&reply)?);
        self.client
            .publish(self.reply_to, payload)
            .await
            .map_err(|e| NatsUnavailable::new("answering a private-call note", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reads_back_as_sent() {
        let note = CallNote::Ring {
            call_id: 7,
            caller: 100,
            caller_name: "Guard 100".into(),
            callee: 101,
            group: 42,
            emergency: true,
        };
        let envelope = Envelope {
            relay: "relay-a".into(),
            note: note.clone(),
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert!(text.contains(r#""note":"ring""#), "{text}");
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!((back.relay.as_str(), back.note), ("relay-a", note));
        let reply: CallReply = serde_json::from_str(r#"{"reply":"refused","reason":2}"#).unwrap();
        assert_eq!(reply, CallReply::Refused { reason: 2 });
    }
}
