//! Floor leases: which relay owns each group's floor, on JetStream
//! key-value.
//!
//! One bucket, [`BUCKET`], one key per group (`group.<id>`). The bucket's
//! entries live [`LeaseConfig::ttl`] after they were written (the stream's
//! `max_age`), so a lease nobody renews disappears on its own: a relay that
//! died, or lost NATS, gives its floors up without a word.
//!
//! - **Take** is a key-value `create`: it succeeds for exactly one relay
//!   while the key is absent. The create's revision is the lease's fencing
//!   token, and revisions only grow, so every later owner has a higher one.
//! - **Renew** is an `update` expecting the revision the owner last wrote:
//!   it fails once anyone else wrote the key, which can only happen after
//!   the lease expired or was released.
//! - **Release** deletes the key expecting that revision, so the next relay
//!   may take the floor at once instead of waiting for the expiry.
//!
//! Safety does not rest on renewals arriving: an owner counts its lease as
//! valid only until `ttl - margin` after it *sent* its last successful
//! write. The server stored that write no earlier, and removes it no
//! earlier than `ttl` after storing it, so the owner stops granting at least
//! `margin` before any other relay could create the key, whatever the
//! network between them and NATS does (the margin absorbs the two clocks'
//! rate difference). The bucket is stored on disk: a NATS server that
//! restarts keeps the leases, so a restart cannot hand a floor to a second
//! relay while the first still counts on its lease.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::stream::StorageType;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::unavailable::NatsUnavailable;

/// The key-value bucket of floor leases.
pub const BUCKET: &str = "ptt-floor-leases";

/// How long leases live and how early their owner stops trusting them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a lease lives after its last write: the longest a group's
    /// floor stays with a relay that died.
    pub ttl: Duration,
    /// How much sooner than `ttl` the owner stops granting: room for the
    /// owner's and the NATS server's clocks to run at different rates.
    pub margin: Duration,
}

impl Default for LeaseConfig {
    /// A floor moves within about a second of its owner's death (the
    /// issue's goal), while an owner renewing every `ttl / 4` survives
    /// two lost renewals before its lease runs out.
    fn default() -> Self {
        Self {
            ttl: Duration::from_millis(750),
            margin: Duration::from_millis(150),
        }
    }
}

impl LeaseConfig {
    /// How often an owner should renew: four times per `ttl`.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 4
    }
}

/// Why a lease operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// NATS did not answer, or answered with an error: the lease (if any)
    /// stays valid until its deadline and no longer.
    #[error(transparent)]
    Unavailable(#[from] NatsUnavailable),
    /// Someone else wrote the group's key: the lease expired (its owner
    /// could not renew in time) or was released, and may be owned by
    /// another relay now. Stop granting at once.
    #[error("lease of group {group} lost: it expired or was released")]
    Lost {
        /// The group whose lease was lost.
        group: u32,
    },
    /// A lease entry this relay cannot read (written by another version).
    #[error("lease entry of group {group} unreadable: {source}")]
    Unreadable {
        /// The group whose entry is unreadable.
        group: u32,
        /// Why it could not be parsed.
        #[source]
        source: serde_json::Error,
    },
}

/// What a lease entry says.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// The owning relay's id.
    relay: String,
    /// The fencing token; absent in the entry that took the lease, whose
    /// own revision is the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<u64>,
}

/// A floor lease this relay holds.
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    group: u32,
    token: u64,
    revision: u64,
    valid_until: Instant,
}

impl Lease {
    /// The group whose floor this is.
    pub fn group(&self) -> u32 {
        self.group
    }

    /// The fencing token: higher for every later owner of the group's
    /// floor, so a message from an older owner can be told and ignored.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Whether the owner may still grant the floor at `now`: true only
    /// before the deadline that the last successful write set.
    pub fn may_grant(&self, now: Instant) -> bool {
        now < self.valid_until
    }

    /// When the lease stops being valid unless renewed.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("group", &self.group)
            .field("token", &self.token)
            .field("revision", &self.revision)
            .field(
                "valid_for",
                &self.valid_until.saturating_duration_since(Instant::now()),
            )
            .finish()
    }
}

/// Who holds a floor lease this relay could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The owning relay's id (this relay's own, if an earlier run of it
    /// took the lease and it has not expired yet).
    pub relay: String,
    /// Its fencing token.
    pub token: u64,
}

/// The outcome of [`FloorLeases::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// This relay owns the group's floor now.
    Owned(Lease),
    /// Another relay does.
    Held(Holder),
}

/// This relay's handle on the cluster's floor leases.
#[derive(Clone)]
pub struct FloorLeases {
    store: kv::Store,
    relay: Arc<str>,
    config: LeaseConfig,
}

impl fmt::Debug for FloorLeases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FloorLeases")
            .field("relay", &self.relay)
            .field("config", &self.config)
            .finish()
    }
}

/// How many times [`FloorLeases::take`] looks again when the key vanished
/// between a failed create and the read of its holder.
const TAKE_ATTEMPTS: usize = 3;

impl FloorLeases {
    /// Opens (creating it if this is the first relay) the lease bucket as
    /// relay `relay`. Every relay of a cluster must use the same `config`.
    pub async fn open(
        jetstream: &async_nats::jetstream::Context,
        relay: &str,
        config: LeaseConfig,
    ) -> Result<Self, LeaseError> {
        let store = jetstream
            .create_key_value(kv::Config {
                bucket: BUCKET.to_owned(),
                description: "which relay owns each group's floor".to_owned(),
                history: 1,
                max_age: config.ttl,
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("opening the floor lease bucket", e))?;
        Ok(Self {
            store,
            relay: relay.into(),
            config,
        })
    }

    /// This relay's id, as its leases name it.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// The lease timings.
    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    /// Takes the floor of `group` if no relay owns it, else says who does.
    pub async fn take(&self, group: u32) -> Result<Taken, LeaseError> {
        let key = key(group);
        let value = encode(&self.relay, None);
        for _ in 0..TAKE_ATTEMPTS {
            let sent = Instant::now();
            match self.store.create(&key, value.clone()).await {
                Ok(revision) => {
                    return Ok(Taken::Owned(Lease {
                        group,
                        token: revision,
                        revision,
                        valid_until: self.deadline(sent),
                    }));
                }
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                    if let Some(holder) = self.holder(group).await? {
                        return Ok(Taken::Held(holder));
                    }
                    // Expired or released in between: try again.
                }
                Err(e) => {
                    return Err(unavailable(
                        &format!("taking the lease of group {group}"),
                        e,
                    ));
                }
            }
        }
        Err(NatsUnavailable::new(
            format!("taking the lease of group {group}"),
            "the lease kept changing hands",
        )
        .into())
    }

    /// Renews `lease` for another `ttl`. On [`LeaseError::Lost`] the lease
    /// is gone; on [`LeaseError::Unavailable`] it stays valid only until
    /// its current deadline, and renewing again may still save it.
    pub async fn renew(&self, lease: &mut Lease) -> Result<(), LeaseError> {
        let group = lease.group;
        let sent = Instant::now();
        let value = encode(&self.relay, Some(lease.token));
        match self.store.update(key(group), value, lease.revision).await {
            Ok(revision) => {
                lease.revision = revision;
                lease.valid_until = self.deadline(sent);
                Ok(())
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                lease.valid_until = sent.min(lease.valid_until);
                Err(LeaseError::Lost { group })
            }
            Err(e) => Err(unavailable(
                &format!("renewing the lease of group {group}"),
                e,
            )),
        }
    }

    /// Gives the floor of `lease`'s group up, so another relay may take it
    /// at once. A lease already lost is not an error.
    pub async fn release(&self, lease: Lease) -> Result<(), LeaseError> {
        match self
            .store
            .delete_expect_revision(key(lease.group), Some(lease.revision))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(()),
            Err(e) => Err(unavailable(
                &format!("releasing the lease of group {}", lease.group),
                e,
            )),
        }
    }

    /// Who owns the floor of `group` now, if anyone.
    pub async fn holder(&self, group: u32) -> Result<Option<Holder>, LeaseError> {
        let entry = self
            .store
            .entry(key(group))
            .await
            .map_err(|e| unavailable(&format!("reading the lease of group {group}"), e))?;
        let Some(entry) = entry.filter(|e| e.operation == Operation::Put) else {
            return Ok(None);
        };
        let value: Entry = serde_json::from_slice(&entry.value)
            .map_err(|source| LeaseError::Unreadable { group, source })?;
        Ok(Some(Holder {
            relay: value.relay,
            token: value.token.unwrap_or(entry.revision),
        }))
    }

    /// The deadline of a lease whose write was sent at `sent`.
    fn deadline(&self, sent: Instant) -> Instant {
        sent + self.config.ttl.saturating_sub(self.config.margin)
    }
}

/// The key of `group`'s lease.
fn key(group: u32) -> String {
    format!("group.{group}")
}

fn encode(relay: &str, token: Option<u64>) -> Bytes {
    let entry = Entry {
        relay: relay.to_owned(),
        token,
    };
    // A struct of a string and a number always serialises.
    Bytes::from(serde_json::to_vec(&entry).unwrap_or_default())
}

fn unavailable(doing: &str, error: impl std::error::Error + Send + Sync + 'static) -> LeaseError {
    NatsUnavailable::new(doing, error).into()
}
