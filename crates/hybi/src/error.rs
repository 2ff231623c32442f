//! Errors: what the peer did wrong (and the close code that answers it), what went wrong
//! with time or the transport, and why a send was refused.
//!
//! # Display and source
//!
//! Every error of hybi and its adapters follows one rule: its `Display` says
//! everything down to and including the error it wraps (`protocol error: reserved bits
//! set (close code 1002)`), and [`source`](core::error::Error::source) goes on from
//! there, with the wrapped error's own source. So a report that walks the chain
//! (anyhow's `{:#}`, the `hybi` command) prints each message once, and `{}` alone
//! never hides the detail.

use core::fmt;

use crate::close::{CloseCode, ClosePayloadError};
use crate::frame::FrameError;

/// A violation of RFC 6455 by the peer. Each one fails the connection: the engine queues
/// a close frame with [`close_code`](Self::close_code) and stops reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A client sent an unmasked frame (§5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1).
    MaskedFrame,
    /// RSV1, RSV2 or RSV3 set without a negotiated extension (§5.2).
    ReservedBits,
    /// An opcode reserved for future use (§5.2).
    ReservedOpCode(u8),
    /// A 64-bit payload length with the most significant bit set (§5.2).
    LengthOverflow,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlFrameTooLong(u64),
    /// A control frame with FIN clear (§5.5).
    FragmentedControlFrame,
    /// A continuation frame with no fragmented message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished (§5.4).
    ExpectedContinuation,
    /// Text that is not valid UTF-8 (§8.1), detected at the first bad byte.
    InvalidUtf8,
    /// A compressed message (permessage-deflate) that is not a valid deflate stream
    /// (RFC 7692 §7.2.2).
    InvalidCompressedData,
    /// A close frame whose payload is invalid (§5.5.1, §7.4).
    InvalidClosePayload(ClosePayloadError),
    /// A frame larger than [`Config::max_frame_size`](crate::Config::max_frame_size).
    FrameTooLarge {
        /// The announced payload length.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A message larger than [`Config::max_message_size`](crate::Config::max_message_size).
    MessageTooLarge {
        /// The message length so far, including the frame that crossed the limit.
        len: u64,
        /// The configured limit.
        max: usize,
    },
}

impl ProtocolError {
    /// The close code sent to the peer for this violation: 1007 for invalid UTF-8 (also
    /// in a close reason), 1009 for the size limits, 1002 for everything else.
    pub const fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            ProtocolError::InvalidClosePayload(e) => e.close_code(),
            ProtocolError::FrameTooLarge { .. } | ProtocolError::MessageTooLarge { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// The short reason sent in the close frame.
    pub const fn reason(&self) -> &'static str {
        match self {
            ProtocolError::UnmaskedFrame => "unmasked frame from client",
            ProtocolError::MaskedFrame => "masked frame from server",
            ProtocolError::ReservedBits => "reserved bits set",
            ProtocolError::ReservedOpCode(_) => "reserved opcode",
            ProtocolError::LengthOverflow => "invalid payload length",
            ProtocolError::ControlFrameTooLong(_) => "control frame too long",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "continuation without a message",
            ProtocolError::ExpectedContinuation => "expected a continuation frame",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
            ProtocolError::InvalidClosePayload(ClosePayloadError::InvalidReason) => {
                "invalid UTF-8 in close reason"
            }
            ProtocolError::InvalidClosePayload(_) => "invalid close frame",
            ProtocolError::FrameTooLarge { .. } => "frame too large",
            ProtocolError::MessageTooLarge { .. } => "message too large",
        }
    }
}

impl From<FrameError> for ProtocolError {
    fn from(e: FrameError) -> ProtocolError {
        match e {
            FrameError::ReservedOpCode(op) => ProtocolError::ReservedOpCode(op),
            FrameError::LengthOverflow => ProtocolError::LengthOverflow,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedOpCode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::ControlFrameTooLong(len) => {
                write!(f, "control frame of {len} bytes (at most 125)")
            }
            ProtocolError::InvalidClosePayload(e) => e.fmt(f),
            ProtocolError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            ProtocolError::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            other => f.write_str(other.reason()),
        }?;
        write!(f, " (close code {})", self.close_code())
    }
}

impl core::error::Error for ProtocolError {}

/// Why a connection stopped, reported once by
/// [`Connection::next`](crate::Connection::next) in [`Closed`](crate::Closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The peer broke the protocol; a close frame with the matching code is queued.
    Protocol(ProtocolError),
    /// No frame arrived within [`Config::pong_timeout`](crate::Config::pong_timeout)
    /// after a keepalive ping. The peer is presumed dead: nothing more is sent, and the
    /// transport should be closed.
    PongTimeout,
    /// The peer did not answer our close frame within
    /// [`Config::close_timeout`](crate::Config::close_timeout). Close the transport.
    CloseTimeout,
    /// Nothing arrived within [`Config::idle_timeout`](crate::Config::idle_timeout);
    /// a close frame with 1001 is queued and the closing handshake proceeds.
    IdleTimeout,
    /// The transport ended before the closing handshake (reported as 1006).
    UnexpectedEof,
}

impl Error {
    /// The close code that describes this error: the one sent for protocol errors and
    /// idle timeouts, 1006 (abnormal closure, never sent) for the others.
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Error::Protocol(e) => e.close_code(),
            Error::IdleTimeout => CloseCode::GOING_AWAY,
            Error::PongTimeout | Error::CloseTimeout | Error::UnexpectedEof => CloseCode::ABNORMAL,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Error {
        Error::Protocol(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::PongTimeout => f.write_str("no pong within the pong timeout"),
            Error::CloseTimeout => f.write_str("peer did not answer the close frame in time"),
            Error::IdleTimeout => f.write_str("idle timeout"),
            Error::UnexpectedEof => f.write_str("connection ended without a close frame"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            // The message says what the protocol error is: what caused it comes next.
            Error::Protocol(e) => core::error::Error::source(e),
            _ => None,
        }
    }
}

/// Why a send was refused. Nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// A close frame was already sent (or the connection failed): no more data, pings
    /// or pongs may be sent (RFC 6455 §5.5.1).
    Closed,
    /// A ping, pong or close payload longer than 125 bytes.
    ControlPayloadTooLong(usize),
    /// A close code that may not be sent (see [`CloseCode::is_valid_on_wire`]).
    InvalidCloseCode(u16),
    /// A close reason longer than 123 bytes.
    CloseReasonTooLong(usize),
    /// A text fragment that makes the message invalid UTF-8.
    InvalidUtf8,
    /// A whole message or a new fragmented one while a fragmented message is unfinished.
    MessageInProgress,
    /// A fragment of the other kind than the message in progress.
    KindMismatch,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("the connection is closing or closed"),
            SendError::ControlPayloadTooLong(n) => {
                write!(f, "control payload of {n} bytes (at most 125)")
            }
            SendError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            SendError::CloseReasonTooLong(n) => {
                write!(f, "close reason of {n} bytes (at most 123)")
            }
            SendError::InvalidUtf8 => f.write_str("text fragment is not valid UTF-8"),
            SendError::MessageInProgress => f.write_str("a fragmented message is unfinished"),
            SendError::KindMismatch => {
                f.write_str("fragment kind differs from the message in progress")
            }
        }
    }
}

impl core::error::Error for SendError {}
