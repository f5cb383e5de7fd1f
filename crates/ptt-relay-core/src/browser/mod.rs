//! Dispatchers' browsers: the console port, where a browser logs in over
//! WebTransport (HTTP/3 on QUIC) as a terminal of the directory.
//!
//! A browser cannot speak the terminals' `ptt/1` ALPN, so the console has a
//! UDP port of its own with ALPN `h3`; once its WebTransport session is
//! open, it speaks the same protocol as a terminal (proto/voice.md §6): the
//! control stream is the session's first bidirectional stream, and voice
//! goes in the session's datagrams. From there on a browser session is a
//! terminal session like any other (the same handshake, limits, ACLs and
//! floor control); only the carrier differs ([`BrowserSession`]).
//!
//! The port's certificate ([`ConsoleCertificate`]) is made for browsers to
//! pin by hash without a CA (WebTransport's `serverCertificateHashes`):
//! ECDSA P-256, valid for less than 14 days, renewed by the relay well
//! before it expires ([`BrowserPort::rotate`]); the ops port serves the
//! current hash to the console page.

mod certificate;
mod port;
mod session;

pub use certificate::{CERTIFICATE_LIFETIME, ConsoleCertificate};
pub use port::{BrowserPort, BrowserPortError, ROTATE_EVERY};
pub use session::{BrowserRefusal, BrowserSession, SESSION_PATH};
