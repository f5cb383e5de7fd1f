//! What the call log records. Times are unix milliseconds; enums are stored as their
//! lowercase names so the database stays readable with the `sqlite3` shell.

use std::net::SocketAddr;

use ptt_directory::{GroupId, Priority, TerminalId, ZoneId};

/// Milliseconds since the unix epoch, the time unit of every record.
pub type UnixMs = i64;

/// The current time in unix milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> UnixMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// The text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Parses [`Self::as_str`] back; `None` for unknown text.
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }
    };
}

text_enum!(
    /// How a burst was placed.
    BurstKind {
        /// Ordinary group talk.
        Normal = "normal",
        /// Dispatcher all-call / broadcast: only the caller talks.
        Broadcast = "broadcast",
        /// Emergency call.
        Emergency = "emergency",
    }
);

text_enum!(
    /// How a burst ended.
    BurstOutcome {
        /// The talker released the floor.
        Released = "released",
        /// The talk limit (T2) ran out.
        RevokedTalkLimit = "revoked-talk-limit",
        /// A higher-priority request took the floor.
        Preempted = "preempted",
        /// A dispatcher cleared the emergency the burst was part of.
        EmergencyCleared = "emergency-cleared",
        /// No media for the inactivity timeout (T1).
        MediaInactivity = "media-inactivity",
        /// The talker left the group.
        Left = "left",
        /// The talker's connection was lost.
        Disconnected = "disconnected",
        /// The relay shut down mid-burst.
        Shutdown = "shutdown",
    }
);

text_enum!(
    /// What an alert acknowledgement says.
    AckKind {
        /// The alert reached the terminal.
        Delivered = "delivered",
        /// The user is responding.
        Responding = "responding",
        /// The user cannot respond.
        Unable = "unable",
    }
);

text_enum!(
    /// A session's lifecycle event.
    SessionEvent {
        /// Authenticated and online.
        Connected = "connected",
        /// Gone (closed, timed out or kicked).
        Disconnected = "disconnected",
    }
);

/// One talk burst: who held the floor of which group, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BurstRecord {
    /// The group talked in.
    pub group: GroupId,
    /// Who held the floor.
    pub talker: TerminalId,
    /// The burst id from the voice header.
    pub burst_id: u32,
    /// When the floor was granted.
    pub started_at_ms: UnixMs,
    /// When the floor was released or taken.
    pub ended_at_ms: UnixMs,
    /// Priority it was granted at.
    pub priority: Priority,
    /// Normal, broadcast or emergency.
    pub kind: BurstKind,
    /// How it ended.
    pub outcome: BurstOutcome,
    /// Voice frames forwarded.
    pub frames: u32,
    /// Where the burst's Ogg Opus recording is, relative to the recordings
    /// directory (`crate::recording::relative_path`); `None` if recording was
    /// off or no frame was forwarded. The file may be gone (retention) or
    /// missing (a disk error).
    pub recording: Option<String>,
}

/// A dispatcher alert sent to groups.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertSentRecord {
    /// Alert id, referenced by acknowledgements.
    pub alert_id: u64,
    /// Sender.
    pub from: TerminalId,
    /// The alert text.
    pub text: String,
    /// Target groups.
    pub groups: Vec<GroupId>,
    /// When it was sent.
    pub at_ms: UnixMs,
}

/// A terminal's acknowledgement of an alert (what the console shows as "who answered").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertAckRecord {
    /// The alert acknowledged.
    pub alert_id: u64,
    /// Who acknowledged.
    pub terminal: TerminalId,
    /// Delivered, responding or unable.
    pub kind: AckKind,
    /// Status code sent with it (see the directory's table).
    pub status_code: Option<u16>,
    /// When.
    pub at_ms: UnixMs,
}

/// An emergency declared in a group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmergencyRecord {
    /// The group put in emergency.
    pub group: GroupId,
    /// Who declared it.
    pub terminal: TerminalId,
    /// When.
    pub declared_at_ms: UnixMs,
}

/// A dispatcher cleared a group's emergency.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmergencyClearedRecord {
    /// The group.
    pub group: GroupId,
    /// The dispatcher who cleared it.
    pub by: TerminalId,
    /// When.
    pub at_ms: UnixMs,
}

text_enum!(
    /// Why zone logic changed a group's membership (the relay's own regroupings; the
    /// admin API's are in `admin_actions`).
    RegroupReason {
        /// A patrol's lead came near the terminal's premises: it joined the patrol.
        ZoneEntered = "zone-entered",
        /// The patrol moved away: the terminal left it.
        ZoneLeft = "zone-left",
        /// An emergency nearby pulled the terminal into the caller's group.
        Backup = "backup",
        /// The emergency was cleared: the terminal left again.
        BackupCleared = "backup-cleared",
    }
);

impl RegroupReason {
    /// The reason a membership granted for `self` ends with: a patrol moving on, or the
    /// emergency's clear.
    pub fn ending(self) -> RegroupReason {
        match self {
            RegroupReason::Backup | RegroupReason::BackupCleared => RegroupReason::BackupCleared,
            RegroupReason::ZoneEntered | RegroupReason::ZoneLeft => RegroupReason::ZoneLeft,
        }
    }
}

/// A terminal added to or removed from a group by zone logic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegroupRecord {
    /// The group.
    pub group: GroupId,
    /// The terminal.
    pub terminal: TerminalId,
    /// Added (true) or removed.
    pub added: bool,
    /// Why.
    pub reason: RegroupReason,
    /// The premises zone that caused it.
    pub zone: ZoneId,
    /// When.
    pub at_ms: UnixMs,
}

text_enum!(
    /// How a private call ended.
    PrivateCallOutcome {
        /// Answered, then a party hung up.
        Completed = "completed",
        /// The callee declined.
        Declined = "declined",
        /// The callee was in another call.
        Busy = "busy",
        /// Nobody answered in time.
        NoAnswer = "no-answer",
        /// The callee was offline.
        Offline = "offline",
        /// The callee was logged in to another relay of the cluster, which
        /// could not be reached.
        OtherRelay = "other-relay",
        /// The caller hung up before the callee answered.
        Cancelled = "cancelled",
        /// A party's connection was lost.
        Disconnected = "disconnected",
        /// An emergency call to one of the parties ended it.
        Preempted = "preempted",
    }
);

/// A private call, logged when it ends (its bursts are in `bursts` under its group id).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrivateCallRecord {
    /// The relay's call id.
    pub call_id: u64,
    /// Who called.
    pub caller: TerminalId,
    /// Who was called.
    pub callee: TerminalId,
    /// The temporary group the call used.
    pub group: GroupId,
    /// An emergency private call.
    pub emergency: bool,
    /// How it ended.
    pub outcome: PrivateCallOutcome,
    /// When it was set up.
    pub started_at_ms: UnixMs,
    /// When the callee answered, if it did.
    pub answered_at_ms: Option<UnixMs>,
    /// When it ended.
    pub ended_at_ms: UnixMs,
}

/// A failed login, for audit and rate limiting forensics.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthFailureRecord {
    /// The terminal id claimed, if the hello got that far.
    pub terminal: Option<TerminalId>,
    /// The client's address.
    pub source: SocketAddr,
    /// When.
    pub at_ms: UnixMs,
}

/// A terminal came online or went away.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    /// The terminal.
    pub terminal: TerminalId,
    /// Connected or disconnected.
    pub event: SessionEvent,
    /// When.
    pub at_ms: UnixMs,
}

/// The terminal id an emergency clear made through the admin API is logged with in
/// `emergency_clears.by_terminal` (and sent as `EmergencyState.cleared_by`): no terminal
/// cleared it. The admin action itself is in `admin_actions` with its `by`.
pub const ADMIN_TERMINAL: TerminalId = TerminalId(0);

/// What an administrator did through the admin API. The directory changes among them are
/// replayed over the directory file at start, so they survive a restart. Serialized (tagged
/// with [`AdminAction::as_str`]'s names) when the relays of a cluster share it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum AdminAction {
    /// The terminal may not log in; its session was closed.
    Disable {
        /// The terminal.
        terminal: TerminalId,
    },
    /// The terminal may log in again.
    Enable {
        /// The terminal.
        terminal: TerminalId,
    },
    /// The terminal became a member of the group, or its rights there changed.
    SetMember {
        /// The group.
        group: GroupId,
        /// The terminal.
        terminal: TerminalId,
        /// May receive the group's voice.
        listen: bool,
        /// May request the floor.
        talk: bool,
        /// Cap asked for; the terminal's own cap still applies. `None`: the terminal's cap.
        max_priority: Option<Priority>,
    },
    /// The terminal stopped being a member of the group.
    RemoveMember {
        /// The group.
        group: GroupId,
        /// The terminal.
        terminal: TerminalId,
    },
    /// The group's emergency was cleared.
    ClearEmergency {
        /// The group.
        group: GroupId,
    },
}

impl AdminAction {
    /// The text stored in the `action` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            AdminAction::Disable { .. } => "disable",
            AdminAction::Enable { .. } => "enable",
            AdminAction::SetMember { .. } => "set-member",
            AdminAction::RemoveMember { .. } => "remove-member",
            AdminAction::ClearEmergency { .. } => "clear-emergency",
        }
    }

    /// The terminal concerned, if any.
    pub fn terminal(&self) -> Option<TerminalId> {
        match *self {
            AdminAction::Disable { terminal }
            | AdminAction::Enable { terminal }
            | AdminAction::SetMember { terminal, .. }
            | AdminAction::RemoveMember { terminal, .. } => Some(terminal),
            AdminAction::ClearEmergency { .. } => None,
        }
    }

    /// The group concerned, if any.
    pub fn group(&self) -> Option<GroupId> {
        match *self {
            AdminAction::SetMember { group, .. }
            | AdminAction::RemoveMember { group, .. }
            | AdminAction::ClearEmergency { group } => Some(group),
            AdminAction::Disable { .. } | AdminAction::Enable { .. } => None,
        }
    }
}

/// An admin action with who made it and when: the audit trail of the admin API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdminActionRecord {
    /// What was done.
    pub action: AdminAction,
    /// Who did it ("admin" for the bearer token of the ops port).
    pub by: String,
    /// When.
    pub at_ms: UnixMs,
}

/// Whom a status message went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusTarget {
    /// One terminal.
    Terminal(TerminalId),
    /// A group's listeners.
    Group(GroupId),
    /// The dispatchers (the control room).
    Dispatchers,
}

/// A status message a terminal sent ("on scene", "need backup").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusRecord {
    /// The sender.
    pub from: TerminalId,
    /// The status code (0: text only); its label is in the directory.
    pub code: u32,
    /// The free text, as sent (at most 1,024 bytes).
    pub text: String,
    /// Whom it went to.
    pub target: StatusTarget,
    /// When.
    pub at_ms: UnixMs,
}

/// Anything the call log stores; each kind goes to its own table. Serializable so that
/// the relays of a cluster can hand each other their records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Record {
    /// A talk burst.
    Burst(BurstRecord),
    /// An alert sent.
    AlertSent(AlertSentRecord),
    /// An alert acknowledged.
    AlertAck(AlertAckRecord),
    /// An emergency declared.
    Emergency(EmergencyRecord),
    /// An emergency cleared.
    EmergencyCleared(EmergencyClearedRecord),
    /// A failed login.
    AuthFailure(AuthFailureRecord),
    /// A session event.
    Session(SessionRecord),
    /// An action through the admin API.
    Admin(AdminActionRecord),
    /// A membership change made by zone logic.
    Regroup(RegroupRecord),
    /// A private call that ended.
    PrivateCall(PrivateCallRecord),
    /// A status message sent.
    Status(StatusRecord),
}

impl Record {
    /// The table the record goes to, as the call log's replicas name it.
    pub fn table(&self) -> &'static str {
        match self {
            Record::Burst(_) => "bursts",
            Record::AlertSent(_) => "alerts",
            Record::AlertAck(_) => "alert_acks",
            Record::Emergency(_) => "emergencies",
            Record::EmergencyCleared(_) => "emergency_clears",
            Record::AuthFailure(_) => "auth_failures",
            Record::Session(_) => "sessions",
            Record::Admin(_) => "admin_actions",
            Record::Regroup(_) => "regroups",
            Record::PrivateCall(_) => "private_calls",
            Record::Status(_) => "status_messages",
        }
    }
}

/// Where a record another relay of the cluster wrote comes from: that relay, and an id
/// unique in the cluster, so that a record handed over twice is stored once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The relay that wrote it first.
    pub relay: String,
    /// Its id in the cluster (the relay's, its run's and the record's number).
    pub id: String,
}

macro_rules! from_record {
    ($($variant:ident($t:ident)),*) => {$(
        impl From<$t> for Record {
            fn from(r: $t) -> Record {
                Record::$variant(r)
            }
        }
    )*};
}
from_record!(
    Burst(BurstRecord),
    AlertSent(AlertSentRecord),
    AlertAck(AlertAckRecord),
    Emergency(EmergencyRecord),
    EmergencyCleared(EmergencyClearedRecord),
    AuthFailure(AuthFailureRecord),
    Session(SessionRecord),
    Admin(AdminActionRecord),
    Regroup(RegroupRecord),
    PrivateCall(PrivateCallRecord),
    Status(StatusRecord)
);
