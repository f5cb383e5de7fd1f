//! Errors as the one line `ptt` prints: what went wrong and which option
//! or environment variable to check.

use ptt_client::{ClientError, Events};

use super::args::ConnArgs;

/// One line saying what went wrong and what to do about it: client errors
/// get the options involved (`conn`), anything else its context chain.
#[must_use]
pub fn describe(error: &anyhow::Error, conn: Option<&ConnArgs>) -> String {
    let Some(client) = error.chain().find_map(|e| e.downcast_ref::<ClientError>()) else {
        return format!("{error:#}");
    };
    let ca = conn.map_or_else(
        || "the --ca file".to_owned(),
        |c| c.ca.display().to_string(),
    );
    let id = conn.map_or_else(|| "?".to_owned(), |c| c.id.to_string());
    match client {
        ClientError::Unreachable { addr, detail } => format!(
            "relay {addr} unreachable ({detail}): is pttd running there and UDP open? \
             (--server / PTT_SERVER)"
        ),
        ClientError::CertificateNotTrusted(detail) => format!(
            "the relay's certificate does not match the pinned {ca} ({detail}): wrong relay, \
             or its certificate changed; get its current pttd-cert.pem (--ca / PTT_CA)"
        ),
        ClientError::CertificateFile { path, detail } => format!(
            "cannot use the pinned certificate {}: {detail} (--ca / PTT_CA should name the \
             relay's pttd-cert.pem)",
            path.display()
        ),
        ClientError::AuthFailed => format!(
            "login refused: unknown terminal {id} or wrong secret (check --id / PTT_ID and \
             PTT_SECRET)"
        ),
        ClientError::RateLimited => {
            "login refused: too many failed logins from this address; wait a minute".to_owned()
        }
        ClientError::Disabled => format!(
            "terminal {id} disabled by an administrator: not reconnecting; ask an \
             administrator to enable it"
        ),
        ClientError::Replaced { terminal } => format!(
            "replaced by a newer session of terminal {terminal}: another ptt or device logged \
             in as it; not reconnecting"
        ),
        ClientError::NotAllowed { group, reason } => {
            format!("terminal {id} is not allowed in group {group} ({reason:?})")
        }
        _ => format!("{error:#}"),
    }
}

/// What a command fails with when its event stream ends: why the client ended
/// for good (disabled, replaced, ...), so that `ptt` prints that and exits
/// non-zero, or that the connection closed.
#[must_use]
pub(super) fn ended(events: &Events) -> anyhow::Error {
    events.ended().map_or_else(
        || anyhow::anyhow!("connection to the relay closed"),
        anyhow::Error::from,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_ended_by_the_relay_says_so_and_that_it_will_not_reconnect() {
        let disabled = describe(&anyhow::Error::from(ClientError::Disabled), None);
        assert!(
            disabled.contains("disabled by an administrator")
                && disabled.contains("not reconnecting"),
            "{disabled}"
        );
        let replaced = anyhow::Error::from(ClientError::Replaced { terminal: 7 });
        let replaced = describe(&replaced.context("listening"), None);
        assert!(
            replaced.starts_with("replaced by a newer session of terminal 7"),
            "{replaced}"
        );
    }
}
