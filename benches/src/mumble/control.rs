//! The few messages of Mumble's control protocol (TLS over TCP) that a
//! load client needs, and their framing: a 2-byte message type and a 4-byte
//! length, both big-endian, then the protobuf body. Field numbers are those
//! of Mumble's `Mumble.proto`.

use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest control message read (the server's biggest are channel and
/// user lists, far below this).
const MAX_BODY: usize = 1 << 20;

/// Message type numbers.
pub mod kind {
    /// `Version`.
    pub const VERSION: u16 = 0;
    /// `Authenticate`.
    pub const AUTHENTICATE: u16 = 2;
    /// `Ping`.
    pub const PING: u16 = 3;
    /// `Reject`.
    pub const REJECT: u16 = 4;
    /// `ServerSync`.
    pub const SERVER_SYNC: u16 = 5;
    /// `ChannelState`.
    pub const CHANNEL_STATE: u16 = 7;
    /// `UserState`.
    pub const USER_STATE: u16 = 9;
    /// `PermissionDenied`.
    pub const PERMISSION_DENIED: u16 = 12;
    /// `CryptSetup`.
    pub const CRYPT_SETUP: u16 = 15;
}

/// The client's version (1.3.4, as the server's).
#[derive(Clone, PartialEq, Message)]
pub struct Version {
    /// `major << 16 | minor << 8 | patch`.
    #[prost(uint32, optional, tag = "1")]
    pub version: Option<u32>,
    /// Free text.
    #[prost(string, optional, tag = "2")]
    pub release: Option<String>,
}

/// Log-in.
#[derive(Clone, PartialEq, Message)]
pub struct Authenticate {
    /// The user's name.
    #[prost(string, optional, tag = "1")]
    pub username: Option<String>,
    /// The server's or the registered user's password.
    #[prost(string, optional, tag = "2")]
    pub password: Option<String>,
    /// The client decodes Opus.
    #[prost(bool, optional, tag = "5")]
    pub opus: Option<bool>,
}

/// A keep-alive on the control connection.
#[derive(Clone, PartialEq, Message)]
pub struct Ping {
    /// The sender's clock, echoed.
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
}

/// Log-in refused.
#[derive(Clone, PartialEq, Message)]
pub struct Reject {
    /// Why, as an enum number.
    #[prost(int32, optional, tag = "1")]
    pub kind: Option<i32>,
    /// Why, in words.
    #[prost(string, optional, tag = "2")]
    pub reason: Option<String>,
}

/// Log-in complete: the client's session number.
#[derive(Clone, PartialEq, Message)]
pub struct ServerSync {
    /// This client's session.
    #[prost(uint32, optional, tag = "1")]
    pub session: Option<u32>,
}

/// A channel, as the server describes it or a client asks for it.
#[derive(Clone, PartialEq, Message)]
pub struct ChannelState {
    /// Its id (absent when asking for a new one).
    #[prost(uint32, optional, tag = "1")]
    pub channel_id: Option<u32>,
    /// Its parent's id.
    #[prost(uint32, optional, tag = "2")]
    pub parent: Option<u32>,
    /// Its name.
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
}

/// A user's state; a client sends its own to move to a channel.
#[derive(Clone, PartialEq, Message)]
pub struct UserState {
    /// Whose state.
    #[prost(uint32, optional, tag = "1")]
    pub session: Option<u32>,
    /// The channel the user is in.
    #[prost(uint32, optional, tag = "5")]
    pub channel_id: Option<u32>,
}

/// An action was refused.
#[derive(Clone, PartialEq, Message)]
pub struct PermissionDenied {
    /// Why, in words.
    #[prost(string, optional, tag = "4")]
    pub reason: Option<String>,
}

/// The keys and nonces of the client's UDP voice.
#[derive(Clone, PartialEq, Message)]
pub struct CryptSetup {
    /// AES-128 key.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub key: Option<Vec<u8>>,
    /// The nonce the client encrypts with.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub client_nonce: Option<Vec<u8>>,
    /// The nonce the server encrypts with.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub server_nonce: Option<Vec<u8>>,
}

/// Why the control connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The connection failed.
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
    /// A body did not decode.
    #[error("control message of type {kind} did not decode: {source}")]
    Decode {
        /// Its type.
        kind: u16,
        /// The decoder's complaint.
        source: prost::DecodeError,
    },
    /// A body longer than this client takes.
    #[error("control message of {0} bytes is too long")]
    TooLong(usize),
}

/// Writes one message.
pub async fn send<W: AsyncWrite + Unpin>(
    out: &mut W,
    kind: u16,
    message: &impl Message,
) -> Result<(), ControlError> {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(6 + body.len());
    frame.extend_from_slice(&kind.to_be_bytes());
    frame.extend_from_slice(
        &u32::try_from(body.len())
            .expect("a short body")
            .to_be_bytes(),
    );
    frame.extend_from_slice(&body);
    out.write_all(&frame).await?;
    out.flush().await?;
    Ok(())
}

/// Reads one message: its type and body.
pub async fn receive<R: AsyncRead + Unpin>(input: &mut R) -> Result<(u16, Vec<u8>), ControlError> {
    let mut header = [0u8; 6];
    input.read_exact(&mut header).await?;
    let kind = u16::from_be_bytes([header[0], header[1]]);
    let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
    if len > MAX_BODY {
        return Err(ControlError::TooLong(len));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body).await?;
    Ok((kind, body))
}

/// Decodes a body of type `kind`.
pub fn decode<M: Message + Default>(kind: u16, body: &[u8]) -> Result<M, ControlError> {
    M::decode(body).map_err(|source| ControlError::Decode { kind, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_reads_back_as_sent() {
        let (mut a, mut b) = tokio::io::duplex(256);
        let sync = ServerSync { session: Some(7) };
        send(&mut a, kind::SERVER_SYNC, &sync).await.expect("sent");
        let (kind, body) = receive(&mut b).await.expect("read");
        assert_eq!(kind, kind::SERVER_SYNC);
        assert_eq!(decode::<ServerSync>(kind, &body).expect("decodes"), sync);
    }
}
