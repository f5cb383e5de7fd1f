//! Identifiers, priorities, request kinds and member rights: the vocabulary
//! every input and event of the floor is written in.

use std::fmt;

/// A participant of a floor: the relay's terminal id.
///
/// A plain `u32` newtype so that it is `Copy`, hashes and sorts cheaply, and can
/// never be confused with a [`BurstId`] or a group id at a call site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParticipantId(pub u32);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One talk burst: the span from a grant to the end of that grant.
///
/// Ids increase by one per grant within a floor, starting at 1 (so 0 can mean
/// "no burst" on the wire) and wrapping after `u32::MAX`. The relay stamps it
/// into every voice datagram of the burst and into the call log, so listeners
/// and recordings can tell one over from the next even when the talker is the
/// same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BurstId(pub u32);

impl fmt::Display for BurstId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Priority of a floor request, lowest first, so that `Ord` compares them the
/// way the arbiter does (MCPTT's floor priority, reduced to the four levels a
/// radio network uses).
///
/// [`Priority::Emergency`] is reserved to [`RequestKind::Emergency`]: other
/// kinds of request are clamped to at most [`Priority::Dispatcher`], so that an
/// emergency-priority burst always means the group is in emergency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum Priority {
    /// An ordinary talker.
    #[default]
    Normal = 0,
    /// A talker ranked above the crowd, e.g. a squad leader.
    Elevated = 1,
    /// A control-room console.
    Dispatcher = 2,
    /// An emergency call; only [`RequestKind::Emergency`] requests carry it.
    Emergency = 3,
}

impl Priority {
    /// All priorities, lowest first: handy for metrics labels and tests.
    pub const ALL: [Priority; 4] = [
        Priority::Normal,
        Priority::Elevated,
        Priority::Dispatcher,
        Priority::Emergency,
    ];

    /// The wire value (0 = normal … 3 = emergency).
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Decodes a wire value; `None` for anything above 3 so that a newer
    /// client's unknown level is refused rather than guessed.
    #[must_use]
    pub const fn from_u8(value: u8) -> Option<Priority> {
        match value {
            0 => Some(Priority::Normal),
            1 => Some(Priority::Elevated),
            2 => Some(Priority::Dispatcher),
            3 => Some(Priority::Emergency),
            _ => None,
        }
    }

    /// A stable lower-case name, for logs and metric labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Elevated => "elevated",
            Priority::Dispatcher => "dispatcher",
            Priority::Emergency => "emergency",
        }
    }
}

impl From<Priority> for u8 {
    fn from(p: Priority) -> u8 {
        p.as_u8()
    }
}

/// The wire value was above the highest known priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown floor priority {0}")]
pub struct UnknownPriority(pub u8);

impl TryFrom<u8> for Priority {
    type Error = UnknownPriority;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Priority::from_u8(value).ok_or(UnknownPriority(value))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request asks for, beyond a turn to talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RequestKind {
    /// A turn in the group conversation.
    #[default]
    Normal,
    /// An all-call: only the caller talks. While it holds the floor, other
    /// requests are refused ([`DenyReason::BroadcastInProgress`](crate::DenyReason::BroadcastInProgress))
    /// unless they would pre-empt it, and requests queued when it starts are
    /// refused the same way. Needs dispatcher rights.
    Broadcast,
    /// An emergency call: pre-empts any non-emergency holder (whether or not
    /// the member holds the pre-emptive right) and puts the group in emergency
    /// until a dispatcher clears it. Any member who may talk may raise one.
    Emergency,
}

impl RequestKind {
    /// A stable lower-case name, for logs and metric labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestKind::Normal => "normal",
            RequestKind::Broadcast => "broadcast",
            RequestKind::Emergency => "emergency",
        }
    }
}

/// What a member may do in this group, from the group's ACL.
///
/// Given at join; joining again with other rights replaces them for future
/// requests (a grant or queue place already held is kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemberRights {
    /// `false` for a listen-only member: every request is denied
    /// ([`DenyReason::ListenOnly`](crate::DenyReason::ListenOnly)).
    pub may_talk: bool,
    /// The highest priority this member's requests get; a request asking for
    /// more is clamped to it. At least [`Priority::Dispatcher`] also allows
    /// broadcasts and clearing an emergency.
    pub max_priority: Priority,
    /// Holds the pre-emptive right: a request above the holder's priority
    /// takes the floor at once instead of queueing.
    pub preemptive: bool,
}

impl MemberRights {
    /// A member who only listens.
    pub const LISTEN_ONLY: MemberRights = MemberRights {
        may_talk: false,
        max_priority: Priority::Normal,
        preemptive: false,
    };

    /// An ordinary talker: normal priority, no pre-emption.
    pub const TALKER: MemberRights = MemberRights {
        may_talk: true,
        max_priority: Priority::Normal,
        preemptive: false,
    };

    /// A control-room console: dispatcher priority with the pre-emptive right.
    pub const DISPATCHER: MemberRights = MemberRights {
        may_talk: true,
        max_priority: Priority::Dispatcher,
        preemptive: true,
    };

    /// A talker with the given ceiling and pre-emptive right.
    #[must_use]
    pub const fn talker(max_priority: Priority, preemptive: bool) -> MemberRights {
        MemberRights {
            may_talk: true,
            max_priority,
            preemptive,
        }
    }

    /// Whether these rights allow broadcasts and clearing an emergency.
    #[must_use]
    pub fn is_dispatcher(&self) -> bool {
        self.max_priority >= Priority::Dispatcher
    }

    /// The priority a request of `kind` asking for `requested` actually gets:
    /// emergency requests get [`Priority::Emergency`]; others are clamped to
    /// the member's ceiling and to [`Priority::Dispatcher`].
    #[must_use]
    pub fn effective_priority(&self, requested: Priority, kind: RequestKind) -> Priority {
        match kind {
            RequestKind::Emergency => Priority::Emergency,
            RequestKind::Normal | RequestKind::Broadcast => {
                requested.min(self.max_priority).min(Priority::Dispatcher)
            }
        }
    }
}
