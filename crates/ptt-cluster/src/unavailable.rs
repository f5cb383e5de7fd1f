//! The one way NATS fails the same for every part: it did not take or
//! answer what a relay sent.

/// NATS did not take or answer something a relay sent: no connection, a
/// refusal, or no answer in time. What the relay was doing is kept, as the
/// client's own error rarely says.
#[derive(Debug, thiserror::Error)]
#[error("NATS unavailable while {doing}: {source}")]
pub struct NatsUnavailable {
    /// What the relay was doing, e.g. "renewing the lease of group 11".
    pub doing: String,
    /// The client's error.
    #[source]
    pub source: async_nats::Error,
}

impl NatsUnavailable {
    /// `error` met while `doing`.
    pub(crate) fn new(doing: impl Into<String>, error: impl Into<async_nats::Error>) -> Self {
        Self {
            doing: doing.into(),
            source: error.into(),
        }
    }
}
