//! The cluster's control rooms: what one relay tells its dispatchers
//! (emergencies, positions, status messages, regroupings) reaches the
//! dispatchers on every relay.
//!
//! Core NATS on `ptt.control.<relay>`: like voice, a position or a status
//! line is worth nothing late. The payload is the group the message is
//! about (4 bytes, big-endian; 0 for none), then the framed message as the
//! relay's dispatchers get it, opaque here.

use std::sync::Arc;

use async_nats::Client;
use bytes::{BufMut, Bytes, BytesMut};

use crate::peers::OthersFeed;
use crate::unavailable::NatsUnavailable;

/// This relay's end of the control rooms' messages.
#[derive(Debug, Clone)]
pub struct ControlBus {
    client: Client,
    relay: Arc<str>,
}

/// The other relays' control-room messages, as they arrive.
#[derive(Debug)]
pub struct ControlFeed {
    others: OthersFeed,
}

/// One relay's message for the dispatchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMessage {
    /// The group it is about; 0 for none.
    pub about_group: u32,
    /// The framed message.
    pub frame: Bytes,
}

impl ControlBus {
    /// The control-room messages of relay `relay` over `client`.
    pub fn new(client: Client, relay: &str) -> Self {
        Self {
            client,
            relay: relay.into(),
        }
    }

    /// Sends one of this relay's messages for its dispatchers to the others.
    pub async fn publish(&self, about_group: u32, frame: &Bytes) -> Result<(), NatsUnavailable> {
        let mut payload = BytesMut::with_capacity(4 + frame.len());
        payload.put_u32(about_group);
        payload.put_slice(frame);
        self.client
            .publish(format!("ptt.control.{}", self.relay), payload.freeze())
            .await
            .map_err(|e| NatsUnavailable::new("sending a message for the control rooms", e))
    }

    /// Starts hearing the other relays' messages for the dispatchers.
    pub async fn subscribe(&self) -> Result<ControlFeed, NatsUnavailable> {
        let doing = "listening to the control rooms";
        let others = OthersFeed::subscribe(&self.client, "ptt.control.*", &self.relay, doing);
        Ok(ControlFeed {
            others: others.await?,
        })
    }
}

impl ControlFeed {
    /// The next message of another relay; `None` once NATS is gone for good.
    /// One too short to hold a group id is skipped.
    pub async fn next(&mut self) -> Option<ControlMessage> {
        while let Some(message) = self.others.next().await {
            let payload = message.payload;
            let Some(id) = payload.get(..4) else {
                continue;
            };
            let about_group = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
            return Some(ControlMessage {
                about_group,
                frame: payload.slice(4..),
            });
        }
        None
    }
}
