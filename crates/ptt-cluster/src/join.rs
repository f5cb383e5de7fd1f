//! Joining a cluster: one NATS connection for everything a relay shares.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind};
use async_nats::jetstream::stream::StorageType;
use bytes::Bytes;

use crate::admin::AdminLog;
use crate::alert::AlertBus;
use crate::call_bus::CallBus;
use crate::calllog::CallLogStream;
use crate::control::ControlBus;
use crate::floor_bus::FloorBus;
use crate::lease::{FloorLeases, LeaseConfig, LeaseError};
use crate::news::NewsBus;
use crate::presence::PresenceBus;
use crate::regroup::RegroupBus;
use crate::unavailable::NatsUnavailable;
use crate::voice::{VoiceBus, VoiceBusError};

/// Why a relay could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The relay id is not one NATS subject token.
    #[error(transparent)]
    RelayId(#[from] VoiceBusError),
    /// The NATS server did not accept the connection in time.
    #[error("cannot reach the cluster's NATS at {url}: {reason}")]
    Connect {
        /// The URL tried.
        url: String,
        /// The client's error, or that it timed out.
        reason: String,
    },
    /// JetStream would not open the lease bucket (is `-js` on?).
    #[error(transparent)]
    Leases(#[from] LeaseError),
    /// JetStream would not open the bucket of agreed settings.
    #[error(transparent)]
    Settings(#[from] NatsUnavailable),
}

/// The key-value bucket of settings every relay of a cluster must share
/// (see [`Cluster::agree`]).
pub const SETTINGS_BUCKET: &str = "ptt-cluster-settings";

/// The servers of a comma-separated list of NATS URLs.
fn servers(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .collect()
}

/// A relay's membership in a cluster: its id and its ends of the leases,
/// the floor calls, the floor news and the voice, all on one connection.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// This relay's id, unique in the cluster.
    pub relay: Arc<str>,
    /// Who owns each group's floor.
    pub leases: FloorLeases,
    /// Floor calls to a group's owner.
    pub floor: FloorBus,
    /// The owners' messages to members on other relays.
    pub news: NewsBus,
    /// Voice between relays.
    pub voice: VoiceBus,
    /// Admin actions every relay applies.
    pub admin: AdminLog,
    /// Every relay's call-log records, for every relay's call log.
    pub calllog: CallLogStream,
    /// Who is where.
    pub presence: PresenceBus,
    /// The dispatchers' messages, for every relay's control room.
    pub control: ControlBus,
    /// Zone logic's regroupings, applied by every relay.
    pub regroup: RegroupBus,
    /// Alerts and their answers.
    pub alerts: AlertBus,
    /// Private calls between terminals of two relays.
    pub calls: CallBus,
    settings: kv::Store,
    client: async_nats::Client,
}

impl Cluster {
    /// Connects to NATS at `url` (waiting at most `within`) as relay
    /// `relay` and opens the lease bucket. `url` may list several servers
    /// of one NATS cluster separated by commas; once joined, the client
    /// moves between them and reconnects on its own for as long as the
    /// relay runs.
    pub async fn join(
        url: &str,
        relay: &str,
        leases: LeaseConfig,
        within: Duration,
    ) -> Result<Self, JoinError> {
        let connect = async_nats::ConnectOptions::new()
            .name(format!("pttd {relay}"))
            .connect(servers(url));
        let client = match tokio::time::timeout(within, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(JoinError::Connect {
                    url: url.to_owned(),
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(JoinError::Connect {
                    url: url.to_owned(),
                    reason: format!("no answer within {within:?}"),
                });
            }
        };
        let voice = VoiceBus::new(client.clone(), relay)?;
        let jetstream = async_nats::jetstream::new(client.clone());
        let leases = FloorLeases::open(&jetstream, relay, leases).await?;
        let settings = jetstream
            .create_key_value(kv::Config {
                bucket: SETTINGS_BUCKET.to_owned(),
                description: "settings every relay of the cluster shares".to_owned(),
                history: 1,
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsUnavailable::new("opening the cluster's settings", e))?;
        let calllog = CallLogStream::open(jetstream.clone(), relay).await?;
        let admin = AdminLog::open(jetstream, relay).await?;
        Ok(Self {
            relay: relay.into(),
            leases,
            admin,
            calllog,
            floor: FloorBus::new(client.clone()),
            news: NewsBus::new(client.clone(), relay),
            presence: PresenceBus::new(client.clone(), relay),
            control: ControlBus::new(client.clone(), relay),
            regroup: RegroupBus::new(client.clone(), relay),
            alerts: AlertBus::new(client.clone(), relay),
            calls: CallBus::new(client.clone(), relay),
            voice,
            settings,
            client,
        })
    }

    /// Whether the relay is connected to NATS now. While it is not, it can
    /// neither reach a floor's owner nor hold a lease: the relay serves its
    /// own terminals alone (see `ptt-relay-core`'s group seat).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// The cluster's value of setting `name`: `proposal` if this relay is the
    /// first to say one, else what the first relay said. For what must be
    /// the same on every relay and is made by whichever starts first, such
    /// as the key that signs session resumption credentials, so that a
    /// terminal whose relay died resumes on another without its secret.
    pub async fn agree(&self, name: &str, proposal: Bytes) -> Result<Bytes, NatsUnavailable> {
        let doing = || format!("agreeing on the cluster's {name}");
        match self.settings.create(name, proposal.clone()).await {
            Ok(_) => return Ok(proposal),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(NatsUnavailable::new(doing(), e)),
        }
        match self.settings.get(name).await {
            Ok(Some(agreed)) => Ok(agreed),
            Ok(None) => Err(NatsUnavailable::new(
                doing(),
                std::io::Error::other("the setting vanished"),
            )),
            Err(e) => Err(NatsUnavailable::new(doing(), e)),
        }
    }

    /// This relay's number in the cluster, below `max`: the lowest no other
    /// relay has claimed (kept in the settings bucket as
    /// `relay-number-<n>`, so a relay that comes back gets its own again).
    /// For what relays must hand out apart without asking each other each
    /// time, such as the temporary groups of private calls between relays.
    /// `None` when `max` relays have claimed one.
    pub async fn claim_number(&self, max: u16) -> Result<Option<u16>, NatsUnavailable> {
        let doing = || "claiming this relay's number in the cluster".to_owned();
        let mine = Bytes::from(self.relay.as_bytes().to_vec());
        for number in 0..max {
            let key = format!("relay-number-{number}");
            match self.settings.create(&key, mine.clone()).await {
                Ok(_) => return Ok(Some(number)),
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(NatsUnavailable::new(doing(), e)),
            }
            let holder = self
                .settings
                .get(&key)
                .await
                .map_err(|e| NatsUnavailable::new(doing(), e))?;
            if holder.as_ref() == Some(&mine) {
                return Ok(Some(number));
            }
        }
        Ok(None)
    }
}
