//! What is sent to a connection from outside its callbacks, and how that ends:
//! [`Outgoing`], [`Completion`], [`SendFailure`].

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use hybi::{CloseCode, MessageKind};

use crate::handler::Context;

/// A message for a connection, queued through a [`Sender`](crate::Sender).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A text message shared between many recipients (a broadcast) without a copy each.
    SharedText(Arc<str>),
    /// A binary message shared between many recipients.
    SharedBinary(Arc<[u8]>),
    /// A ping with this payload (at most 125 bytes).
    Ping(Vec<u8>),
    /// A pong with this payload (at most 125 bytes): an unsolicited heartbeat, or the
    /// answer to a ping when [`Config::auto_pong`](hybi::Config::auto_pong) is off.
    Pong(Vec<u8>),
    /// One fragment of a message, as [`Context::send_fragment`] sends it: the first
    /// starts a message of `kind`, later ones (of the same `kind`) continue it, and
    /// `fin` ends it. Other data messages to the connection are refused until it ends
    /// ([`SendError::MessageInProgress`](hybi::SendError::MessageInProgress)); control frames are not.
    Fragment {
        /// Text or binary (the same for every fragment of a message).
        kind: MessageKind,
        /// This fragment's payload (text fragments may split a UTF-8 character).
        data: Vec<u8>,
        /// True for the message's last fragment.
        fin: bool,
    },
    /// Start the closing handshake with this code and reason.
    Close(CloseCode, String),
}

impl Outgoing {
    /// The payload's size in bytes (the reason's, for a close).
    pub(crate) fn payload_len(&self) -> usize {
        match self {
            Outgoing::Text(t) => t.len(),
            Outgoing::Binary(b) | Outgoing::Ping(b) | Outgoing::Pong(b) => b.len(),
            Outgoing::SharedText(t) => t.len(),
            Outgoing::SharedBinary(b) => b.len(),
            Outgoing::Fragment { data, .. } => data.len(),
            Outgoing::Close(_, reason) => reason.len(),
        }
    }
}

/// A closure posted with [`Sender::run`](crate::Sender::run), run on the connection's
/// event loop with its [`Context`].
pub(crate) type Errand = Box<dyn FnOnce(&mut Context<'_>) + Send>;

/// What a [`Sender`](crate::Sender) posts to a connection: a message, or a closure.
pub(crate) enum Task {
    Send(Outgoing),
    Run(Errand),
}

impl Task {
    /// What holding the task costs, counted against the connection's limit while it
    /// waits for the connection to open: its payload, and the entry itself.
    pub(crate) fn cost(&self) -> usize {
        let entry = std::mem::size_of::<(Task, Option<Completion>)>();
        match self {
            Task::Send(message) => entry + message.payload_len(),
            Task::Run(_) => entry,
        }
    }
}

impl From<&str> for Outgoing {
    fn from(text: &str) -> Outgoing {
        Outgoing::Text(text.to_owned())
    }
}

impl From<String> for Outgoing {
    fn from(text: String) -> Outgoing {
        Outgoing::Text(text)
    }
}

impl From<Arc<str>> for Outgoing {
    fn from(text: Arc<str>) -> Outgoing {
        Outgoing::SharedText(text)
    }
}

impl From<&[u8]> for Outgoing {
    fn from(data: &[u8]) -> Outgoing {
        Outgoing::Binary(data.to_vec())
    }
}

impl From<Vec<u8>> for Outgoing {
    fn from(data: Vec<u8>) -> Outgoing {
        Outgoing::Binary(data)
    }
}

impl From<Arc<[u8]>> for Outgoing {
    fn from(data: Arc<[u8]>) -> Outgoing {
        Outgoing::SharedBinary(data)
    }
}

/// Why a message did not reach the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// The connection is gone (closed, failed, or never opened), or its event loop
    /// stopped.
    Gone,
    /// The connection's queued output is over its limit (a slow reader); the message
    /// was dropped. See [`ServerBuilder::high_water`](crate::ServerBuilder::high_water).
    Backpressure,
    /// The engine refused it (e.g. after the closing handshake started, or a ping
    /// longer than 125 bytes).
    Refused(hybi::SendError),
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFailure::Gone => f.write_str("the connection is gone"),
            SendFailure::Backpressure => f.write_str("the connection's output is over its limit"),
            SendFailure::Refused(e) => write!(f, "refused: {e}"),
        }
    }
}

impl std::error::Error for SendFailure {}

type Outcome = Result<(), SendFailure>;

#[derive(Default)]
struct Slot {
    outcome: Mutex<Option<Outcome>>,
    ready: Condvar,
}

/// The outcome of a tracked send: resolved when the message has been written to the
/// transport (handed to the kernel), or when it cannot be.
#[derive(Clone, Default)]
pub struct Completion {
    slot: Arc<Slot>,
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("outcome", &self.try_result())
            .finish()
    }
}

impl Completion {
    fn lock(&self) -> MutexGuard<'_, Option<Outcome>> {
        self.slot.outcome.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn complete(&self, outcome: Outcome) {
        let mut slot = self.lock();
        if slot.is_none() {
            *slot = Some(outcome);
            self.slot.ready.notify_all();
        }
    }

    /// The outcome, if known yet.
    pub fn try_result(&self) -> Option<Result<(), SendFailure>> {
        *self.lock()
    }

    /// Blocks until the outcome is known.
    pub fn wait(&self) -> Result<(), SendFailure> {
        let mut slot = self.lock();
        loop {
            if let Some(outcome) = *slot {
                return outcome;
            }
            slot = self
                .slot
                .ready
                .wait(slot)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Blocks until the outcome is known or `timeout` passes (`None`).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<(), SendFailure>> {
        let slot = self.lock();
        let (slot, _) = self
            .slot
            .ready
            .wait_timeout_while(slot, timeout, |s| s.is_none())
            .unwrap_or_else(|p| p.into_inner());
        *slot
    }
}
