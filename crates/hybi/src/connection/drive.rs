//! The drive contract: [`Connection::next`] says what the driver does next.

use super::{Connection, Core, Role};
use crate::close::CloseCode;
use crate::error::Error;
use crate::event::{CloseFrame, Event};
use crate::time::Instant;

use super::send::Outbox;

/// What the driver of a [`Connection`] does next, from [`Connection::next`].
///
/// The variants come in this order of priority: events from the bytes received
/// first (so replies queue up and go out together), then output, then the end, and
/// only when there is nothing else, a wait.
#[must_use = "the driver must act on what the connection asks for"]
pub enum Next<'a> {
    /// Something arrived: handle it. The [`Outbox`] sends a reply (an echo, say)
    /// while the event still borrows the received bytes, without a copy.
    Event(Event<'a>, Outbox<'a>),
    /// Bytes are queued for the transport: write what it takes and
    /// [`consume`](Transmit::consume) that many. Unwritten bytes stay queued; a
    /// transport that takes nothing now (`WouldBlock`) is waited on for writing as
    /// well as for input.
    Write(Transmit<'a>),
    /// Nothing to do until the transport has input (feed it with
    /// [`receive`](Connection::receive), [`read_buf`](Connection::read_buf) and
    /// [`commit`](Connection::commit), or [`receive_eof`](Connection::receive_eof))
    /// or the clock reaches the deadline (then call
    /// [`handle_timeout`](Connection::handle_timeout)). `None`: no timer runs.
    /// [`Instant::ZERO`] means "give me the time now".
    Wait(Option<Instant>),
    /// The connection is over: close the transport. [`Closed`] says how it ended.
    /// Every later call returns this again.
    Close(Closed<'a>),
}

/// The engine's queued output, lent to the driver to write (see [`Next::Write`]).
///
/// It holds one or more runs of bytes (a frame header and a payload queued by value
/// are separate runs): write the first with [`bytes`](Self::bytes), or all of them at
/// once with [`chunks`](Self::chunks) for a vectored write, then
/// [`consume`](Self::consume) what the transport took.
pub struct Transmit<'a> {
    pub(super) core: &'a mut Core,
}

impl core::fmt::Debug for Transmit<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transmit")
            .field("len", &self.len())
            .finish()
    }
}

impl core::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Next::Event(event, _) => f.debug_tuple("Event").field(event).finish(),
            Next::Write(t) => f.debug_tuple("Write").field(t).finish(),
            Next::Wait(deadline) => f.debug_tuple("Wait").field(deadline).finish(),
            Next::Close(closed) => f.debug_tuple("Close").field(closed).finish(),
        }
    }
}

impl Transmit<'_> {
    /// The first contiguous run of bytes to write (never empty).
    pub fn bytes(&self) -> &[u8] {
        self.core.out.first_chunk()
    }

    /// Fills `slices` with the runs of bytes to write, in order, for a vectored write;
    /// returns how many were filled (at least one, if `slices` is not empty).
    pub fn chunks<'b>(&'b self, slices: &mut [&'b [u8]]) -> usize {
        self.core.out.chunks(slices)
    }

    /// All the bytes queued (the sum of the runs).
    pub fn len(&self) -> usize {
        self.core.out.len()
    }

    /// Always false: a `Transmit` is only handed out with bytes to write.
    pub fn is_empty(&self) -> bool {
        self.core.out.is_empty()
    }

    /// When the engine next needs the time while this output waits for the transport
    /// (the close or pong timeout may give up on a peer that reads nothing): a driver
    /// whose write blocks waits for writability, input or this deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.core.next_deadline()
    }

    /// Marks `n` bytes, from the start of the queue, as written.
    ///
    /// # Panics
    /// If `n` exceeds [`len`](Self::len).
    pub fn consume(self, n: usize) {
        self.core.out.advance(n);
    }
}

/// How a connection ended, from [`Next::Close`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed<'a> {
    /// The peer's close frame, if one arrived.
    pub peer: Option<CloseFrame<'a>>,
    /// What ended the connection other than a closing handshake the application
    /// started or answered: a protocol error, a timeout, or the transport's end.
    /// `None` after a clean closing handshake. [`Error::IdleTimeout`] is the one
    /// cause that still ends with a closing handshake (`peer` tells if it completed).
    pub error: Option<Error>,
}

impl Closed<'_> {
    /// The close code that sums up the ending: the error's (1006 for a transport that
    /// ended or a peer that stopped answering, the code we sent for a protocol error,
    /// 1001 for the idle timeout), else the code of the peer's close frame.
    pub fn code(&self) -> CloseCode {
        match (self.error, self.peer) {
            (Some(e), _) => e.close_code(),
            (None, Some(frame)) => frame.code,
            (None, None) => CloseCode::ABNORMAL,
        }
    }

    /// True if both close frames were exchanged and nothing went wrong.
    pub fn is_clean(&self) -> bool {
        self.error.is_none() && self.peer.is_some()
    }
}

impl Connection {
    /// What to do next. The whole contract of driving a connection: **call `next`
    /// until it returns [`Next::Wait`]**, handling each [`Next::Event`], writing each
    /// [`Next::Write`] and closing the transport at [`Next::Close`]; then wait for the
    /// transport or the deadline and feed the engine what happened: bytes
    /// ([`receive`](Self::receive), or [`read_buf`](Self::read_buf) +
    /// [`commit`](Self::commit)), end of input ([`receive_eof`](Self::receive_eof)) and
    /// time ([`handle_timeout`](Self::handle_timeout)). Sends (from the event's
    /// [`Outbox`] or the `send_*` methods) only queue bytes; the next call hands them
    /// out. Failures come through the same loop: a protocol violation queues the close
    /// frame that answers it, then [`Next::Close`] reports it in [`Closed::error`].
    ///
    /// While a `Write` is pending the driver may read too (a non-blocking transport
    /// that cannot take more bytes now waits for input and writability at once): events
    /// always come first, so input is never starved by output.
    ///
    /// ```
    /// use hybi::{Config, Connection, Event, Next};
    ///
    /// /// Runs `conn` until it waits: texts are collected (and echoed if `echo`), and
    /// /// what it writes goes to `peer`, as a transport would carry it.
    /// fn run(conn: &mut Connection, peer: &mut Connection, echo: bool) -> Vec<String> {
    ///     let mut texts = Vec::new();
    ///     loop {
    ///         match conn.next() {
    ///             Next::Event(Event::Text(text), mut out) => {
    ///                 if echo {
    ///                     out.send_text(text).unwrap();
    ///                 }
    ///                 texts.push(text.to_owned());
    ///             }
    ///             Next::Event(..) => {}
    ///             Next::Write(output) => {
    ///                 peer.receive(output.bytes());
    ///                 let n = output.bytes().len();
    ///                 output.consume(n);
    ///             }
    ///             Next::Wait(_) | Next::Close(_) => return texts,
    ///         }
    ///     }
    /// }
    ///
    /// let mut client = Connection::client(Config::default(), |b: &mut [u8]| b.fill(9));
    /// let mut server = Connection::server(Config::default());
    /// client.send_text("ping me back").unwrap();
    /// run(&mut client, &mut server, false);
    /// assert_eq!(run(&mut server, &mut client, true), ["ping me back"]);
    /// assert_eq!(run(&mut client, &mut server, false), ["ping me back"]);
    /// ```
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Next<'_> {
        if let Some(ready) = self.next_ready() {
            let (event, outbox) = self.materialize(ready);
            return Next::Event(event, outbox);
        }
        let core = &mut self.core;
        if core.eof && !core.close_received && !core.failed {
            core.end_of_input();
        }
        if !core.transport_dead {
            core.release_pong();
        }
        if !core.transport_dead && !core.out.is_empty() {
            return Next::Write(Transmit {
                core: &mut self.core,
            });
        }
        if self.transport_closable() {
            return Next::Close(self.closed());
        }
        Next::Wait(self.core.next_deadline())
    }

    /// The queued output, for a driver that writes without taking events (a writer
    /// thread beside the one that reads, say); `None` when nothing is queued or
    /// nothing written would reach the peer. [`next`](Self::next) hands out the same
    /// bytes.
    pub fn transmit(&mut self) -> Option<Transmit<'_>> {
        let core = &mut self.core;
        if core.transport_dead {
            return None;
        }
        core.release_pong();
        if core.out.is_empty() {
            None
        } else {
            Some(Transmit { core })
        }
    }

    /// The transport may be closed: the output is written (or can never be) and the
    /// connection failed, or the closing handshake is complete and we are the server
    /// (which closes TCP first, RFC 6455 §7.1.1) or a client whose wait for the server
    /// to do so is over.
    fn transport_closable(&self) -> bool {
        let c = &self.core;
        if !c.out.is_empty() && !c.transport_dead {
            return false;
        }
        c.failed
            || (c.close_sent && c.close_received && (c.role == Role::Server || c.close_wait_over))
    }

    fn closed(&self) -> Closed<'_> {
        Closed {
            peer: self
                .peer_close()
                .map(|(code, reason)| CloseFrame { code, reason }),
            error: self.core.cause,
        }
    }
}

impl Core {
    /// The transport's input ended before the peer's close frame: the connection has
    /// failed (1006), but what is queued (replies to messages that arrived before the
    /// end) is still written, within the close timeout, before the transport closes.
    fn end_of_input(&mut self) {
        self.failed = true;
        self.rx_done = true;
        self.rx_frame = None;
        self.rx_message = None;
        // A ping that arrived is still answered, like every other reply.
        self.flush_pong();
        self.pong_timer = super::timers::Timer::Off;
        self.note_cause(Error::UnexpectedEof);
        if !self.out.is_empty() {
            self.close_timer = super::timers::Timer::arm(self.now, self.config.close_timeout);
        }
    }

    /// Encodes the pong held for a peer that does not read, once the output it waits
    /// behind has drained below the coalescing mark: while the output stays backed
    /// up, later pings replace it instead of each adding a pong (a driver that defers
    /// its writes while reading asks for output after every read).
    fn release_pong(&mut self) {
        if self.out.len() < super::PONG_COALESCE_AT {
            self.flush_pong();
        }
    }

    /// Records why the connection is ending; the first cause sticks.
    pub(super) fn note_cause(&mut self, e: Error) {
        if self.cause.is_none() {
            self.cause = Some(e);
        }
    }
}
