//! Owned messages, for callers who keep what they read.

use hybi::{CloseCode, Event, MessageKind};

/// A message or control frame received from the peer, copied out of the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A whole text message.
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A piece of a message ([`Delivery::Streaming`](hybi::Delivery::Streaming) only).
    Fragment {
        /// Text or binary.
        kind: MessageKind,
        /// The bytes of this piece (for text, may end inside a character).
        data: Vec<u8>,
        /// The first piece of its message.
        first: bool,
        /// The last piece of its message.
        fin: bool,
    },
    /// A ping (already answered unless auto-pong is off).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's close frame; our answer is already sent.
    Close(CloseInfo),
}

/// A close code and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// The code ([`CloseCode::NO_STATUS`] if the peer sent none).
    pub code: CloseCode,
    /// The reason.
    pub reason: String,
}

impl Message {
    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t),
            _ => None,
        }
    }

    /// True for text and binary messages (and fragments).
    pub fn is_data(&self) -> bool {
        matches!(
            self,
            Message::Text(_) | Message::Binary(_) | Message::Fragment { .. }
        )
    }
}

impl From<Event<'_>> for Message {
    fn from(event: Event<'_>) -> Message {
        match event {
            Event::Text(t) => Message::Text(t.to_owned()),
            Event::Binary(b) => Message::Binary(b.to_vec()),
            Event::Fragment(f) => Message::Fragment {
                kind: f.kind,
                data: f.data.to_vec(),
                first: f.first,
                fin: f.fin,
            },
            Event::Ping(p) => Message::Ping(p.to_vec()),
            Event::Pong(p) => Message::Pong(p.to_vec()),
            Event::Close(c) => Message::Close(CloseInfo {
                code: c.code,
                reason: c.reason.to_owned(),
            }),
        }
    }
}

/// A text message (what `Room::broadcast("hello")` sends).
impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::Text(text.to_owned())
    }
}

/// A text message.
impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::Text(text)
    }
}

/// A binary message.
impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Message {
        Message::Binary(data.to_vec())
    }
}

/// A binary message.
impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Message {
        Message::Binary(data)
    }
}
