//! Who is where: each relay announces, every second, the terminals it
//! serves, the groups whose floors it decides and the groups whose voice it
//! takes from the others, on `ptt.presence.<relay>`; a relay that starts
//! taking a group's voice says so at once, on `ptt.presence.<relay>.hears`,
//! so a talker's relay publishes only what some relay hears.
//!
//! Core NATS, nothing stored: an announcement is worth only its second, and
//! a relay that stopped announcing is gone (killed, cut off) after a few
//! missed ones, which is what the other relays need to know about it. The
//! ops API of any relay answers for the cluster from these.

use std::sync::Arc;

use async_nats::{Client, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::peers::publish_json;
use crate::unavailable::NatsUnavailable;

/// One relay's announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayPresence {
    /// The relay.
    pub relay: String,
    /// The terminals logged in to it now.
    pub terminals: Vec<u32>,
    /// The groups whose floors it decides now (holds the lease of).
    pub decides: Vec<u32>,
    /// The groups whose voice it takes from the other relays now (it has
    /// listeners of them, or decides their floor); `None` from a relay that
    /// does not say (an older version), which is taken to hear every group.
    #[serde(default)]
    pub hears: Option<Vec<u32>>,
}

/// What [`PresenceFeed::next`] hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceNews {
    /// Another relay's announcement.
    Presence(RelayPresence),
    /// Another relay started taking a group's voice.
    Hears {
        /// The relay.
        relay: String,
        /// The group.
        group: u32,
    },
}

/// This relay's end of the presence announcements.
#[derive(Debug, Clone)]
pub struct PresenceBus {
    client: Client,
    relay: Arc<str>,
}

/// The other relays' announcements, as they arrive.
#[derive(Debug)]
pub struct PresenceFeed {
    subscriber: Subscriber,
    relay: Arc<str>,
}

impl PresenceBus {
    /// The announcements of relay `relay` over `client`.
    pub fn new(client: Client, relay: &str) -> Self {
        Self {
            client,
            relay: relay.into(),
        }
    }

    /// Announces this relay's terminals, floors and the voice it takes.
    pub async fn announce(
        &self,
        terminals: Vec<u32>,
        decides: Vec<u32>,
        hears: Vec<u32>,
    ) -> Result<(), NatsUnavailable> {
        let doing = "announcing this relay's terminals";
        let presence = RelayPresence {
            relay: self.relay.to_string(),
            terminals,
            decides,
            hears: Some(hears),
        };
        let subject = format!("ptt.presence.{}", self.relay);
        publish_json(&self.client, subject, &presence, doing).await
    }

    /// Says at once that this relay takes `group`'s voice from now on (it
    /// is subscribed to it already), so the relays with talkers in it start
    /// publishing before the next announcement.
    pub async fn announce_hearing(&self, group: u32) -> Result<(), NatsUnavailable> {
        self.client
            .publish(
                format!("ptt.presence.{}.hears", self.relay),
                Bytes::copy_from_slice(&group.to_be_bytes()),
            )
            .await
            .map_err(|e| NatsUnavailable::new(format!("announcing group {group}'s listeners"), e))
    }

    /// Starts hearing the other relays' announcements.
    pub async fn subscribe(&self) -> Result<PresenceFeed, NatsUnavailable> {
        let subscriber = self
            .client
            .subscribe("ptt.presence.>")
            .await
            .map_err(|e| NatsUnavailable::new("listening to the relays' announcements", e))?;
        Ok(PresenceFeed {
            subscriber,
            relay: self.relay.clone(),
        })
    }
}

impl PresenceFeed {
    /// The next announcement of another relay; `None` once NATS is gone for
    /// good. This relay's own and unreadable ones are skipped.
    pub async fn next(&mut self) -> Option<PresenceNews> {
        while let Some(message) = self.subscriber.next().await {
            let mut tokens = message.subject.as_str().split('.').skip(2);
            let (Some(relay), what) = (tokens.next(), tokens.next()) else {
                continue;
            };
            if relay == &*self.relay {
                continue;
            }
            let news = match what {
                None => serde_json::from_slice::<RelayPresence>(&message.payload)
                    .ok()
                    .filter(|presence| presence.relay == relay)
                    .map(PresenceNews::Presence),
                Some("hears") => <[u8; 4]>::try_from(&message.payload[..]).ok().map(|group| {
                    PresenceNews::Hears {
                        relay: relay.to_owned(),
                        group: u32::from_be_bytes(group),
                    }
                }),
                Some(_) => None,
            };
            if news.is_some() {
                return news;
            }
        }
        None
    }
}
