//! What can go wrong talking to the relay, in terms a person can act on.
//!
//! One enum for the whole client: the `ptt` command prints it, the load
//! generator counts it, and each variant's doc says what to do about it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ptt_proto::pb;

/// Why a client ended for good, once it has; shared by the client and its
/// event streams.
pub(crate) type Ended = Arc<Mutex<Option<ClientError>>>;

/// Why a client operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration cannot be used (unreadable certificate file, bad
    /// server name). Fix the configuration; retrying will not help.
    #[error("configuration: {0}")]
    Config(String),
    /// A certificate or CA file could not be read or holds no certificate.
    /// Check the path and that the file is PEM.
    #[error("{path}: {detail}")]
    CertificateFile {
        /// The file named in the configuration.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },
    /// No QUIC handshake with the relay within the connect timeout, or the
    /// network refused to send. Check the address and port, that `pttd` is
    /// running and that UDP is not blocked; retrying later may work.
    #[error("relay {addr} unreachable: {detail}")]
    Unreachable {
        /// The relay address tried.
        addr: SocketAddr,
        /// What the transport reported (timeout, refused, ...).
        detail: String,
    },
    /// The relay's certificate is not the pinned one (or not signed by the
    /// configured CA). Either the wrong relay answered or the relay's
    /// certificate changed: get the current certificate from its operator.
    /// Never retried automatically.
    #[error("relay certificate not trusted: {0}")]
    CertificateNotTrusted(String),
    /// The relay does not know this terminal id or the secret is wrong.
    /// Check the provisioning; retrying with the same credentials only earns
    /// a rate limit.
    #[error("authentication failed: unknown terminal or wrong secret")]
    AuthFailed,
    /// Too many failed logins from this address; the relay refuses even
    /// correct credentials for about a minute. Wait, then retry.
    #[error("authentication rate-limited by the relay; wait a minute")]
    RateLimited,
    /// The relay does not speak this client's protocol version. Upgrade the
    /// client or the relay.
    #[error("the relay does not support protocol version {0}")]
    UnsupportedVersion(u32),
    /// The relay refused a request about a group: not a member, listen-only,
    /// unknown group, missing right. Pick another group or ask for rights.
    #[error("not allowed in group {group}: {reason:?}")]
    NotAllowed {
        /// The group concerned.
        group: u32,
        /// The relay's reason.
        reason: pb::ErrorReason,
    },
    /// The relay refused a request for another reason (its `Error` reason
    /// and detail). `Internal` may work later; the others will not.
    #[error("refused by the relay: {reason:?} ({detail})")]
    Refused {
        /// The relay's reason.
        reason: pb::ErrorReason,
        /// The relay's human-readable detail.
        detail: String,
    },
    /// The relay said something this client does not understand (an
    /// unexpected answer, a broken control stream). A bug on one side:
    /// report it with the logs.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection is down (lost, or being re-established). The client
    /// reconnects by itself; retry after [`crate::Event::Reconnected`].
    #[error("not connected to the relay")]
    Disconnected,
    /// The relay did not answer a request in time although the connection
    /// is up. The relay may be overloaded; retry later.
    #[error("no answer from the relay in time")]
    Timeout,
    /// The client was shut down, or will not reconnect (credentials revoked,
    /// session taken over by another login). Create a new client if that is
    /// really wanted.
    #[error("client closed: {0}")]
    Closed(String),
    /// An administrator disabled this terminal: the relay revoked the
    /// session's credentials (`GoingAway` AUTH_REVOKED, or application close
    /// code 2 after login; voice.md §1 says the client must not reconnect).
    /// Never retried: ask an administrator to enable the terminal. A login
    /// refused while disabled (`Error{TERMINAL_DISABLED}`, given only for the
    /// right secret) is this error too.
    #[error("terminal disabled by an administrator")]
    Disabled,
    /// Another login as the same terminal took the session over (`GoingAway`
    /// SESSION_REPLACED, application close code 4). Never retried:
    /// reconnecting would only throw that session out in turn. Stop the other
    /// `ptt` or device using this terminal id first.
    #[error("replaced by a newer session of terminal {terminal}")]
    Replaced {
        /// This client's terminal id, now logged in elsewhere.
        terminal: u32,
    },
}

impl ClientError {
    /// Maps a relay `Error` answer to the variant a person can act on;
    /// `group` names the group the request was about, if any.
    pub(crate) fn from_relay(error: &pb::Error, group: Option<u32>) -> Self {
        let reason = pb::ErrorReason::try_from(error.reason).unwrap_or_default();
        match reason {
            pb::ErrorReason::AuthFailed => Self::AuthFailed,
            pb::ErrorReason::TerminalDisabled => Self::Disabled,
            pb::ErrorReason::RateLimited => Self::RateLimited,
            pb::ErrorReason::UnsupportedVersion => {
                Self::UnsupportedVersion(crate::PROTOCOL_VERSION)
            }
            pb::ErrorReason::UnknownGroup
            | pb::ErrorReason::NotMember
            | pb::ErrorReason::Forbidden => Self::NotAllowed {
                group: group.unwrap_or(0),
                reason,
            },
            _ => Self::Refused {
                reason,
                detail: error.detail.clone(),
            },
        }
    }

    /// True if the client has ended for good and will not reconnect by
    /// itself: an administrator disabled the terminal, another session
    /// replaced it, or it was closed.
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Disabled | Self::Replaced { .. } | Self::Closed(_)
        )
    }

    /// True if retrying the same thing later can succeed without anyone
    /// changing configuration or credentials.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::RateLimited | Self::Disconnected | Self::Timeout
        ) || matches!(
            self,
            Self::Refused {
                reason: pb::ErrorReason::Internal,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ends_for_good_say_why_and_are_final() {
        let disabled = ClientError::Disabled;
        assert_eq!(
            disabled.to_string(),
            "terminal disabled by an administrator"
        );
        assert!(disabled.is_final() && !disabled.is_transient());
        let replaced = ClientError::Replaced { terminal: 7 };
        assert_eq!(
            replaced.to_string(),
            "replaced by a newer session of terminal 7"
        );
        assert!(replaced.is_final() && !replaced.is_transient());
        assert!(!ClientError::Disconnected.is_final());
    }
}
