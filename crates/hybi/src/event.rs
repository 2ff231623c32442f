//! What a [`Connection`](crate::Connection) reports from received bytes.

use crate::close::CloseCode;
use crate::frame::OpCode;

/// The two kinds of data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Arbitrary bytes (opcode 0x2).
    Binary,
}

impl MessageKind {
    /// The opcode of a message's first frame.
    #[inline]
    pub const fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

/// One piece of a message in [`Delivery::Streaming`](crate::Delivery::Streaming) mode.
///
/// Pieces follow frame boundaries and read boundaries: a frame that arrives in three
/// reads gives three pieces. For text, every byte of `data` has been validated: the
/// concatenation of a message's pieces is valid UTF-8, though one piece may end in the
/// middle of a character that the next piece completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// Text or binary, from the message's first frame.
    pub kind: MessageKind,
    /// The payload bytes of this piece (may be empty for an empty frame).
    pub data: &'a [u8],
    /// This is the first piece of a new message.
    pub first: bool,
    /// This is the last piece of the message.
    pub fin: bool,
}

/// The peer's close frame: its code (or [`CloseCode::NO_STATUS`] if it sent none) and
/// reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code the peer sent.
    pub code: CloseCode,
    /// The reason the peer gave (validated UTF-8, at most 123 bytes).
    pub reason: &'a str,
}

/// Something that happened on the connection, borrowed from the engine's buffers.
///
/// The borrow lasts until the next call on the connection, so handling an event never
/// copies: copy out what you want to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole text message (validated UTF-8) in [`Delivery::Message`](crate::Delivery::Message) mode.
    Text(&'a str),
    /// A whole binary message in [`Delivery::Message`](crate::Delivery::Message) mode.
    Binary(&'a [u8]),
    /// A piece of a data message in [`Delivery::Streaming`](crate::Delivery::Streaming) mode.
    Fragment(Fragment<'a>),
    /// A ping. With [`Config::auto_pong`](crate::Config::auto_pong) on (the default), the
    /// pong is already queued.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close frame. Our answering close frame (echoing the code) is already
    /// queued unless we had sent one first. No events follow.
    Close(CloseFrame<'a>),
}

impl Event<'_> {
    /// True for data (a text or binary message, or a piece of one); false for the
    /// control frames (ping, pong, close).
    #[inline]
    pub fn is_data(&self) -> bool {
        matches!(self, Event::Text(_) | Event::Binary(_) | Event::Fragment(_))
    }
}
