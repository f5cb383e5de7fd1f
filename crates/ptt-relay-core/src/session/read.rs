//! Reading the control stream: the next length-prefixed `ClientMessage`, and
//! why one could not be read.

use ptt_proto::framing::{self, Decoder};
use ptt_proto::pb;

use crate::carrier::ControlRecv;

/// Why a control message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadError {
    /// A complete frame that is not a valid `ClientMessage`; the stream is
    /// still in step, so the session may go on.
    Malformed,
    /// The framing itself is broken (oversized or garbled length): the
    /// stream cannot be resynchronised and the terminal is cut off.
    Broken(pb::ErrorReason),
}

impl ReadError {
    /// The error reason the terminal is told.
    pub(super) fn reason(self) -> pb::ErrorReason {
        match self {
            ReadError::Malformed => pb::ErrorReason::Malformed,
            ReadError::Broken(reason) => reason,
        }
    }
}

/// Reads the next complete control message; `Ok(None)` when the stream ended.
pub(super) async fn read_message(
    recv: &mut ControlRecv,
    decoder: &mut Decoder,
) -> Result<Option<pb::ClientMessage>, ReadError> {
    loop {
        match decoder.next_frame() {
            Ok(Some(frame)) => {
                return <pb::ClientMessage as ptt_proto::prost::Message>::decode(frame)
                    .map(Some)
                    .map_err(|_| ReadError::Malformed);
            }
            Ok(None) => {}
            Err(framing::DecodeError::TooLarge { .. }) => {
                return Err(ReadError::Broken(pb::ErrorReason::MessageTooLarge));
            }
            Err(_) => return Err(ReadError::Broken(pb::ErrorReason::Malformed)),
        }
        match recv.read_chunk(framing::MAX_MESSAGE_SIZE).await {
            Some(bytes) => decoder.extend(&bytes),
            None => return Ok(None),
        }
    }
}
