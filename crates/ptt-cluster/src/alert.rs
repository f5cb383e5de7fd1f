//! Alerts with roll call across the relays of a cluster: a dispatcher's
//! alert reaches the target groups' members on every relay, and every
//! answer reaches every relay's copy of the tally (the dispatcher's relay
//! tells the dispatcher and the control rooms; the others' dashboards show
//! the same roll call).
//!
//! Core NATS: an alert on `ptt.alert.sent.<relay>` (the sender's relay);
//! an answer on `ptt.alert.answer.<relay>` (the answering terminal's).
//! Alerts and answers are in the call log (the cluster's, see
//! [`crate::CallLogStream`]) before they go out, so a relay that missed
//! one while away from NATS still has its record.

use std::sync::Arc;

use async_nats::Client;
use serde::{Deserialize, Serialize};

use crate::peers::{OthersFeed, publish_json};
use crate::unavailable::NatsUnavailable;

/// An alert as the relays share it: the `Alert` its targets get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedAlert {
    /// The id answers name.
    pub alert_id: u64,
    /// The dispatcher who sent it.
    pub from: u32,
    /// Its name, as the targets are shown it.
    pub from_name: String,
    /// What it says.
    pub text: String,
    /// The groups it went to.
    pub groups: Vec<u32>,
    /// Whether the dispatcher asks for answers.
    pub requires_ack: bool,
    /// When it was sent (Unix µs).
    pub sent_at_us: u64,
}

/// A target's answer to an alert, taken by its relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedAnswer {
    /// The alert answered.
    pub alert_id: u64,
    /// Who answered.
    pub terminal: u32,
    /// The answer's kind as the wire numbers it (`AlertAckKind`).
    pub kind: i32,
    /// The status code sent with it.
    pub status_code: Option<u16>,
    /// When its relay took it (Unix µs).
    pub at_us: u64,
}

/// What [`AlertFeed::next`] hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertNews {
    /// Another relay's dispatcher's alert, for this relay's targets; the
    /// answers go to `relay`.
    Alert {
        /// The relay keeping its tally.
        relay: String,
        /// The alert.
        alert: SharedAlert,
    },
    /// An answer taken by another relay.
    Answer(SharedAnswer),
}

/// This relay's end of the alerts between relays.
#[derive(Debug, Clone)]
pub struct AlertBus {
    client: Client,
    relay: Arc<str>,
}

/// The other relays' alerts and answers.
#[derive(Debug)]
pub struct AlertFeed {
    others: OthersFeed,
}

impl AlertBus {
    /// The alerts of relay `relay` over `client`.
    pub fn new(client: Client, relay: &str) -> Self {
        Self {
            client,
            relay: relay.into(),
        }
    }

    /// Sends one of this relay's alerts to the other relays' targets.
    pub async fn publish_alert(&self, alert: &SharedAlert) -> Result<(), NatsUnavailable> {
        let subject = format!("ptt.alert.sent.{}", self.relay);
        publish_json(&self.client, subject, alert, "sharing an alert").await
    }

    /// Sends an answer this relay took to every other relay.
    pub async fn publish_answer(&self, answer: &SharedAnswer) -> Result<(), NatsUnavailable> {
        let subject = format!("ptt.alert.answer.{}", self.relay);
        publish_json(&self.client, subject, answer, "sending an alert's answer").await
    }

    /// Starts hearing the other relays' alerts and answers.
    pub async fn subscribe(&self) -> Result<AlertFeed, NatsUnavailable> {
        let doing = "listening to the relays' alerts";
        let others = OthersFeed::subscribe(&self.client, "ptt.alert.*.*", &self.relay, doing);
        Ok(AlertFeed {
            others: others.await?,
        })
    }
}

impl AlertFeed {
    /// The next alert or answer of another relay; `None` once NATS is gone
    /// for good. This relay's own and unreadable messages are skipped.
    pub async fn next(&mut self) -> Option<AlertNews> {
        while let Some(message) = self.others.next().await {
            let mut tokens = message.subject.as_str().splitn(4, '.').skip(2);
            let (Some(what), Some(relay)) = (tokens.next(), tokens.next()) else {
                continue;
            };
            let news =
                match what {
                    "sent" => serde_json::from_slice(&message.payload).ok().map(|alert| {
                        AlertNews::Alert {
                            relay: relay.to_owned(),
                            alert,
                        }
                    }),
                    "answer" => serde_json::from_slice(&message.payload)
                        .ok()
                        .map(AlertNews::Answer),
                    _ => None,
                };
            if news.is_some() {
                return news;
            }
        }
        None
    }
}
