//! Errors, each saying which step failed.
//!
//! Like the engine's (see [`hybi::error`]), an error's `Display` includes the message
//! of the error it wraps and [`source`](std::error::Error::source) continues with
//! that error's own source, so a chain prints no message twice.

use std::fmt;
use std::io;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be parsed, or is not `ws[s]://host[:port][/path][?query]`
    /// (or is `wss://` in a build without the `tls` feature).
    Url(String),
    /// The host name did not resolve.
    Dns(io::Error),
    /// The TCP connection could not be established (refused, unreachable, timed out).
    Connect(io::Error),
    /// The TLS handshake failed (`wss://`, or a TLS [`Server`](crate::Server)): the
    /// certificate, an alert, a peer that speaks plain HTTP (see
    /// [`TlsError`](crate::TlsError)). A handshake that times out or that the peer
    /// cuts short is a [`Handshake`](Error::Handshake) error like any other.
    #[cfg(feature = "tls")]
    Tls(crate::TlsError),
    /// The opening handshake failed: the peer's HTTP was malformed or not an upgrade,
    /// or (client) the server answered with another status (see [`HandshakeError`]).
    Handshake(HandshakeError),
    /// The connection failed: a protocol violation by the peer (the close frame with
    /// its code was sent), a keepalive or close timeout, or an end of input before the
    /// closing handshake.
    Protocol(hybi::Error),
    /// A send was refused by the engine (e.g. after close); nothing was queued.
    Send(hybi::SendError),
    /// The closing handshake is over; nothing more will arrive.
    ConnectionClosed,
    /// The read timeout expired without a message; the connection is still usable.
    Timeout,
    /// Reading or writing the stream failed. `WouldBlock` (non-blocking streams) leaves
    /// queued bytes in place for the next [`flush`](crate::WebSocket::flush).
    Io(io::Error),
}

/// Why an opening handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// (Client) the server's answer was refused: another status than 101
    /// ([`ResponseError::Rejected`](hybi::handshake::ResponseError::Rejected) carries
    /// the status, headers and body), a wrong `Sec-WebSocket-Accept`, a missing
    /// `Upgrade`, an unoffered subprotocol...
    Response(hybi::handshake::ResponseError),
    /// (Client) the request could not be built from what was given (bad header, ...).
    InvalidRequest(hybi::handshake::InvalidRequest),
    /// (Server) the client's request was invalid and was answered with
    /// [`status`](hybi::handshake::RequestError::status) (400, 405, 426 or 431).
    Request(hybi::handshake::RequestError),
    /// (Server) the application refused the upgrade with this status.
    Rejected(u16),
    /// (Server) the application's answer was invalid (e.g. it chose a subprotocol the
    /// client did not offer); the client got a 500.
    InvalidReply(hybi::handshake::InvalidReply),
    /// The stream ended before the handshake completed.
    UnexpectedEof,
    /// The handshake did not complete within the handshake timeout.
    Timeout,
}

impl HandshakeError {
    /// (Client) the server's answer, when it was another status than 101: its status,
    /// reason, headers and the first 4 KiB of its body
    /// ([`Rejected::MAX_BODY`](hybi::handshake::Rejected::MAX_BODY)).
    pub fn rejection(&self) -> Option<&hybi::handshake::Rejected> {
        match self {
            HandshakeError::Response(hybi::handshake::ResponseError::Rejected(r)) => Some(r),
            _ => None,
        }
    }

    /// The HTTP status of a refused handshake: the server's answer (client side) or
    /// the answer we sent (server side).
    pub fn status(&self) -> Option<u16> {
        match self {
            HandshakeError::Response(hybi::handshake::ResponseError::Rejected(r)) => {
                Some(r.status())
            }
            HandshakeError::Request(e) => Some(e.status()),
            HandshakeError::Rejected(status) => Some(*status),
            HandshakeError::InvalidReply(_) => Some(500),
            _ => None,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Response(e) => e.fmt(f),
            HandshakeError::InvalidRequest(e) => write!(f, "cannot build the request: {e}"),
            HandshakeError::Request(e) => write!(f, "request refused: {e}"),
            HandshakeError::Rejected(status) => write!(f, "upgrade refused with {status}"),
            HandshakeError::InvalidReply(e) => write!(f, "invalid answer to the upgrade: {e}"),
            HandshakeError::UnexpectedEof => f.write_str("connection ended during the handshake"),
            HandshakeError::Timeout => f.write_str("handshake timed out"),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Display has said what the wrapped error says: its cause comes next.
        match self {
            HandshakeError::Response(e) => std::error::Error::source(e),
            HandshakeError::InvalidRequest(e) => std::error::Error::source(e),
            HandshakeError::Request(e) => std::error::Error::source(e),
            HandshakeError::InvalidReply(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

impl Error {
    /// (Client) the server's answer when it refused the upgrade (another status than
    /// 101): its [`status`](hybi::handshake::Rejected::status),
    /// [`reason`](hybi::handshake::Rejected::reason),
    /// [`headers`](hybi::handshake::Rejected::headers) and
    /// [`body`](hybi::handshake::Rejected::body) (its first 4 KiB, read within the
    /// handshake timeout).
    ///
    /// ```no_run
    /// match hybi_std::connect("ws://127.0.0.1:9001/private") {
    ///     Err(e) => match e.rejection() {
    ///         Some(r) => eprintln!("refused: {} {:?}", r.status(), r.body_str()),
    ///         None => eprintln!("{e}"),
    ///     },
    ///     Ok(_) => {}
    /// }
    /// ```
    pub fn rejection(&self) -> Option<&hybi::handshake::Rejected> {
        match self {
            Error::Handshake(e) => e.rejection(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(why) => write!(f, "bad URL: {why}"),
            Error::Dns(e) => write!(f, "DNS lookup failed: {e}"),
            Error::Connect(e) => write!(f, "TCP connect failed: {e}"),
            #[cfg(feature = "tls")]
            Error::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::Protocol(e) => write!(f, "connection failed: {e}"),
            Error::Send(e) => write!(f, "send refused: {e}"),
            Error::ConnectionClosed => f.write_str("connection closed"),
            Error::Timeout => f.write_str("read timed out"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Display has said what the wrapped error says: its cause comes next.
        match self {
            Error::Dns(e) | Error::Connect(e) | Error::Io(e) => std::error::Error::source(e),
            Error::Handshake(e) => std::error::Error::source(e),
            #[cfg(feature = "tls")]
            Error::Tls(e) => std::error::Error::source(e),
            Error::Protocol(e) => std::error::Error::source(e),
            Error::Send(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<hybi::SendError> for Error {
    fn from(e: hybi::SendError) -> Error {
        Error::Send(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Error {
        Error::Handshake(e)
    }
}
