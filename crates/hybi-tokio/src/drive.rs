//! The whole driving loop, over any `AsyncRead + AsyncWrite`: call
//! [`Connection::next`] until it waits, keeping each event as an owned [`Message`],
//! writing what it hands out; then poll the transport for input and the engine's timer
//! for its deadline, feed what happened, again. [`Driver::poll`] runs it until a
//! message is there (a read) or every byte is written (a send); both answer pings and
//! fire timers on the way, so a task that only reads or only writes keeps the
//! connection alive.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hybi::{Connection, Instant, Next, Transmit};
use hybi_std::{Error, Message, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::pool;
use end::End;
use timer::Timer;

mod end;
mod timer;

/// Most messages a send takes from the engine for a later read (a writer that never
/// reads keeps answering pings until then; the peer's data then waits in TCP).
const STASH_MAX: usize = 16;
/// What a [`Driver::poll`] waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// A message (or the end) is ready in the stash.
    Message,
    /// Every queued byte is written and flushed.
    Written,
}

/// The engine, its transport and its timer.
pub(crate) struct Driver<S> {
    pub(crate) conn: Connection,
    pub(crate) stream: S,
    /// Messages taken from the engine and not yet handed out.
    pub(crate) stash: VecDeque<Message>,
    state: State,
}

/// What the loop keeps between polls.
#[derive(Default)]
struct State {
    timer: Timer,
    unflushed: bool,
    /// The receive buffer went back to the thread's pool while idle.
    lent: bool,
    /// A transport that failed stays failed: every later call says so.
    broken: Option<io::ErrorKind>,
    end: End,
    /// The cause [`Next::Close`] reported, until a read hands it out.
    cause: Option<hybi::Error>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    pub(crate) fn new(conn: Connection, stream: S) -> Driver<S> {
        let (stash, state) = Default::default();
        Driver {
            conn,
            stream,
            stash,
            state,
        }
    }

    /// Drives the connection until `until` holds. A read gets `Ok` with a message in
    /// the stash, or the end: `Err(Protocol)` once with its cause, then
    /// `Err(ConnectionClosed)`.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, until: Until) -> Poll<Result<()>> {
        if until == Until::Message && !self.stash.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if let Some(kind) = self.state.broken {
            return Poll::Ready(Err(Error::Io(kind.into())));
        }
        self.conn.handle_timeout(Instant::now());
        loop {
            // A send takes events only while the stash has room; then it just writes.
            let take_events = until == Until::Message
                || (self.stash.len() < STASH_MAX && !self.stash.iter().any(Message::is_data));
            let next = match take_events {
                true => self.conn.next(),
                false => self.conn.transmit().map_or(Next::Wait(None), Next::Write),
            };
            let deadline = match &next {
                Next::Write(output) => output.deadline(),
                Next::Wait(at) => *at,
                _ => None,
            };
            let mut done = false;
            match next {
                Next::Event(event, _) => {
                    self.stash.push_back(Message::from(event));
                    match until {
                        Until::Message => return Poll::Ready(Ok(())),
                        Until::Written => continue,
                    }
                }
                Next::Write(output) => {
                    let written = poll_transmit(&mut self.stream, cx, output);
                    if self.step(written)? {
                        self.state.unflushed = true;
                        continue;
                    }
                }
                Next::Wait(_) => {
                    if self.state.unflushed {
                        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
                        self.state.unflushed = !self.step(flushed)?;
                    }
                    // Written: one look at the input on the way out (free while
                    // nothing arrived) answers pings for a task that only writes.
                    done = until == Until::Written && !self.state.unflushed;
                }
                Next::Close(closed) => {
                    if self.state.end == End::Open {
                        self.state.cause = closed.error;
                        self.state.end = End::ShuttingDown;
                    }
                    ready!(self.poll_end(cx));
                    if until == Until::Written && self.conn.buffered_output() == 0 {
                        return Poll::Ready(Ok(())); // all written before the end
                    }
                    return Poll::Ready(Err(match self.state.cause.take() {
                        Some(e) if until == Until::Message => Error::Protocol(e),
                        _ => Error::ConnectionClosed,
                    }));
                }
            }
            if take_events {
                let input = self.poll_input(cx);
                if self.step(input)? {
                    continue;
                }
            }
            if done {
                return Poll::Ready(Ok(()));
            }
            if !self.state.timer.fired(deadline, cx) {
                return Poll::Pending;
            }
            self.conn.handle_timeout(Instant::now());
        }
    }

    /// Reads once into the engine's buffer. While nothing arrives, the buffer waits in
    /// the thread's pool, so an idle connection holds none.
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if std::mem::take(&mut self.state.lent) {
            pool::restore(&mut self.conn);
        }
        let room = self.conn.read_buf();
        if room.is_empty() {
            // Reading into no room would look like the end of input.
            return Poll::Ready(Err(io::Error::other(
                "hybi: read before the events were drained",
            )));
        }
        let mut buf = ReadBuf::new(room);
        if Pin::new(&mut self.stream)
            .poll_read(cx, &mut buf)?
            .is_pending()
        {
            self.state.lent = pool::lend(&mut self.conn);
            return Poll::Pending;
        }
        match buf.filled().len() {
            0 => self.conn.receive_eof(),
            n => self.conn.commit(n),
        }
        Poll::Ready(Ok(()))
    }

    /// Whether an I/O poll completed (`false`: pending). A transport that failed
    /// stays failed: every later call says so.
    fn step(&mut self, poll: Poll<io::Result<()>>) -> Result<bool> {
        match poll {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(e)) => {
                self.state.broken = Some(e.kind());
                self.state.end = End::Done;
                Err(Error::Io(e))
            }
            Poll::Pending => Ok(false),
        }
    }
}

/// One write of the queued output (vectored: a transport that does not write vectors
/// writes the first run, and the rest goes on the next call).
fn poll_transmit<S: AsyncWrite + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    output: Transmit<'_>,
) -> Poll<io::Result<()>> {
    let (slices, count) = output.io_slices::<8>();
    match ready!(Pin::new(stream).poll_write_vectored(cx, &slices[..count]))? {
        0 => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
        n => {
            output.consume(n);
            Poll::Ready(Ok(()))
        }
    }
}
