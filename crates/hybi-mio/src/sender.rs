//! Sending to a connection from any thread: [`Sender`], and [`ConnId`], what names a
//! connection.

use std::fmt;
use std::sync::Arc;

use hybi::CloseCode;

use crate::mailbox::{Letter, Letterbox, Target};
use crate::outgoing::{Completion, Outgoing, SendFailure};

/// Identifies a connection within a process (stable for its whole life, never
/// reused), e.g. as a key for a chat room's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) worker: usize,
    pub(crate) serial: u64,
}

/// A handle to one connection, usable from any thread: send text, binary, pings, or
/// close. Cheap to clone; holding one does not keep the connection open.
///
/// Sends are queued to the connection's event loop (waking it through a
/// `mio::Waker`). [`send`](Self::send) is fire-and-forget;
/// [`send_tracked`](Self::send_tracked) returns a [`Completion`] that resolves once
/// the message is written to the transport, or fails if the connection is gone.
#[derive(Clone)]
pub struct Sender {
    pub(crate) letterbox: Arc<dyn Letterbox>,
    pub(crate) target: Target,
    pub(crate) serial: u64,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("id", &self.id()).finish()
    }
}

impl Sender {
    /// The connection's id.
    pub fn id(&self) -> ConnId {
        ConnId {
            worker: self.letterbox.id(),
            serial: self.serial,
        }
    }

    fn post(&self, message: Outgoing, done: Option<Completion>) -> Result<(), SendFailure> {
        let letter = Letter {
            target: self.target.clone(),
            serial: self.serial,
            message,
            done,
        };
        self.letterbox.post_letter(letter).map_err(|letter| {
            if let Some(done) = letter.done {
                done.complete(Err(SendFailure::Gone));
            }
            SendFailure::Gone
        })
    }

    /// Queues `message` for the connection. An error means its event loop has
    /// stopped; a connection that closed meanwhile drops the message silently (use
    /// [`send_tracked`](Self::send_tracked) to know).
    pub fn send(&self, message: impl Into<Outgoing>) -> Result<(), SendFailure> {
        self.post(message.into(), None)
    }

    /// Queues `message` and returns its [`Completion`].
    pub fn send_tracked(&self, message: impl Into<Outgoing>) -> Completion {
        let done = Completion::default();
        let _ = self.post(message.into(), Some(done.clone()));
        done
    }

    /// Queues a text message.
    pub fn send_text(&self, text: &str) -> Result<(), SendFailure> {
        self.send(text)
    }

    /// Queues a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), SendFailure> {
        self.send(data)
    }

    /// Queues a ping.
    pub fn ping(&self, payload: &[u8]) -> Result<(), SendFailure> {
        self.send(Outgoing::Ping(payload.to_vec()))
    }

    /// Starts the closing handshake.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), SendFailure> {
        self.send(Outgoing::Close(code, reason.to_owned()))
    }
}
