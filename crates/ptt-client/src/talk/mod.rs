//! Talking: press → wait for the floor → send voice → release, without
//! clipping the first syllable.
//!
//! A user starts speaking the moment they press the button, but the grant
//! comes a round trip later (or much later, from the queue). [`Talk`] holds
//! the encoded frames pushed meanwhile in a bounded buffer and sends them
//! first, with the granted burst id and sequence numbers from 0, as soon as
//! the grant arrives; later frames go out as they are pushed. The buffered
//! frames leave back to back: listeners' jitter buffers absorb the burst,
//! and the talker's extra delay is drained instead of kept for the whole
//! burst.
//!
//! The API carries encoded Opus packets, not audio: the `ptt` command feeds
//! it from its microphone encoder, the load generator from canned packets.
//! One talk task per press owns the state; the handle only queues frames.

mod handle;
mod request;
mod state;
mod task;

pub use handle::Talk;
pub(crate) use request::TalkRequest;
pub use state::{Grant, TalkEnd, TalkError, TalkState, TalkSummary};
pub use task::RELEASE_HANG;
