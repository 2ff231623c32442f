//! Sending to a connection from any thread: [`Sender`], and [`ConnId`], what names a
//! connection.

use std::fmt;
use std::sync::Arc;

use hybi::{CloseCode, MessageKind};

use crate::handler::Context;
use crate::mailbox::{Letter, Letterbox, Target};
use crate::outgoing::{Completion, Outgoing, SendFailure, Task};

/// Identifies a connection within a process (stable for its whole life, never
/// reused), e.g. as a key for a chat room's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) worker: usize,
    pub(crate) serial: u64,
}

/// A handle to one connection, usable from any thread: send text, binary, fragments,
/// pings, pongs, or close, or run a closure on the connection's loop with its
/// [`Context`] ([`run`](Self::run)). Cheap to clone; holding one does not keep the
/// connection open.
///
/// Sends are queued to the connection's event loop (waking it through a
/// `mio::Waker`) and reach the engine in the order they were made, from one thread
/// (from several, in the order the loop's mailbox took them). [`send`](Self::send)
/// is fire-and-forget; [`send_tracked`](Self::send_tracked) returns a [`Completion`]
/// that resolves once the message is written to the transport, or fails if the
/// connection is gone or the engine refused it.
///
/// # Before the connection opens
///
/// A client connection's `Sender` ([`Server::connect`](crate::Server::connect),
/// [`Client::sender`](crate::Client::sender)) exists while the handshake is under
/// way. What it sends then (every kind alike: messages, fragments, pings, pongs,
/// close, and [`run`](Self::run)'s closures) is held by the loop and delivered in
/// order once the connection opens, right after [`Handler::on_open`] returns (so what
/// `on_open` sends goes first). If the connection never opens, each of them fails
/// with [`SendFailure::Gone`] (and no closure runs).
///
/// What is held is bounded as an open connection's output is: once more than twice
/// the [high-water mark](crate::ServerBuilder::high_water) is held (payloads, plus
/// a few dozen bytes an entry), further sends fail with
/// [`SendFailure::Backpressure`] until the connection opens. Once open, the held
/// sends go to the engine like any other, under the same
/// [`SlowPeer`](crate::SlowPeer) policy.
///
/// [`Handler::on_open`]: crate::Handler::on_open
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

    fn post(&self, task: Task, done: Option<Completion>) -> Result<(), SendFailure> {
        let letter = Letter {
            target: self.target.clone(),
            serial: self.serial,
            task,
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
        self.post(Task::Send(message.into()), None)
    }

    /// Queues `message` and returns its [`Completion`]: `Ok` once it is written to the
    /// transport; [`Gone`](SendFailure::Gone), [`Backpressure`](SendFailure::Backpressure)
    /// or [`Refused`](SendFailure::Refused) otherwise. Do not wait for it on the
    /// connection's own loop (in a handler): the loop would wait for itself.
    pub fn send_tracked(&self, message: impl Into<Outgoing>) -> Completion {
        let done = Completion::default();
        let _ = self.post(Task::Send(message.into()), Some(done.clone()));
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

    /// Queues one fragment of a message, as [`Context::send_fragment`] does: the first
    /// starts a message of `kind`, later ones (of the same `kind`) continue it, and
    /// `fin` ends it. Until it ends, other data messages to the connection (from any
    /// sender, or its handler) are refused by the engine; pings, pongs and the close
    /// are not. A refusal is silent here: send [`Outgoing::Fragment`] with
    /// [`send_tracked`](Self::send_tracked) to hear it.
    pub fn send_fragment(
        &self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SendFailure> {
        self.send(Outgoing::Fragment {
            kind,
            data: data.to_vec(),
            fin,
        })
    }

    /// Queues a ping.
    pub fn ping(&self, payload: &[u8]) -> Result<(), SendFailure> {
        self.send(Outgoing::Ping(payload.to_vec()))
    }

    /// Queues a pong (at most 125 bytes): an unsolicited heartbeat, or the answer to
    /// a ping when [`Config::auto_pong`](hybi::Config::auto_pong) is off.
    pub fn pong(&self, payload: &[u8]) -> Result<(), SendFailure> {
        self.send(Outgoing::Pong(payload.to_vec()))
    }

    /// Runs `f` on the connection's event loop, with the connection's [`Context`],
    /// as a callback would be (so it must not block either): to send several
    /// messages at once, read [`buffered_amount`](Context::buffered_amount) before
    /// sending, or reach state only that thread holds. Ordered with the other sends
    /// of this sender; before the connection opens, it is held like them (see
    /// [above](Self#before-the-connection-opens)).
    ///
    /// The [`Completion`] says whether it ran: `Ok` once it has (what it sent is then
    /// queued, not necessarily written), [`Gone`](SendFailure::Gone) if the
    /// connection is over, never opened, or its loop stopped (`f` is then dropped
    /// without running), [`Backpressure`](SendFailure::Backpressure) if it could not
    /// be held before the open. As with [`send_tracked`](Self::send_tracked), do not
    /// wait for it on the connection's own loop.
    ///
    /// ```no_run
    /// # fn demo(sender: hybi_mio::Sender) {
    /// let done = sender.run(|ctx| {
    ///     if ctx.buffered_amount() < 64 << 10 {
    ///         let _ = ctx.send_text("tick");
    ///     }
    /// });
    /// assert!(done.wait().is_ok(), "the connection is gone");
    /// # }
    /// ```
    pub fn run(&self, f: impl FnOnce(&mut Context<'_>) + Send + 'static) -> Completion {
        let done = Completion::default();
        let _ = self.post(Task::Run(Box::new(f)), Some(done.clone()));
        done
    }

    /// Starts the closing handshake.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), SendFailure> {
        self.send(Outgoing::Close(code, reason.to_owned()))
    }
}
