//! The whole driving loop, over any `AsyncRead + AsyncWrite`: call
//! [`Connection::next`] until it waits, keeping each event as an owned [`Message`],
//! writing what it hands out; then poll the transport for input and the engine's timer
//! for its deadline, feed what happened, again. [`Driver::poll`] runs it until a
//! message is there (a read) or every byte is written (a send); both answer pings and
//! fire timers on the way, so a task that only reads or only writes keeps the
//! connection alive.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hybi::{Connection, Instant, Next, Transmit};
use hybi_std::{Error, Message, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::pool;

/// Most messages a send takes from the engine for a later read (a writer that never
/// reads keeps answering pings until then; the peer's data then waits in TCP).
const STASH_MAX: usize = 16;
/// Most runs of bytes handed to one vectored write.
const MAX_SLICES: usize = 8;
/// How long a server waits for the peer's end of input after its close frame before
/// dropping the transport (closing with unread input would reset the connection).
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// What a [`Driver::poll`] waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// A message (or the end) is ready in the stash.
    Message,
    /// Every queued byte is written and flushed.
    Written,
}

/// Where the transport is once the engine said [`Next::Close`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    ShuttingDown,
    Draining,
    Done,
}

/// The engine, its transport and its timer.
pub(crate) struct Driver<S> {
    pub(crate) conn: Connection,
    pub(crate) stream: S,
    /// Messages taken from the engine and not yet handed out.
    pub(crate) stash: VecDeque<Message>,
    timer: Option<Pin<Box<Sleep>>>,
    timer_at: Option<Instant>,
    unflushed: bool,
    /// The receive buffer went back to the thread's pool while idle.
    lent: bool,
    broken: Option<io::ErrorKind>,
    end: End,
    /// The cause [`Next::Close`] reported, until a read hands it out.
    cause: Option<hybi::Error>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    pub(crate) fn new(conn: Connection, stream: S) -> Driver<S> {
        Driver {
            conn,
            stream,
            stash: VecDeque::new(),
            timer: None,
            timer_at: None,
            unflushed: false,
            lent: false,
            broken: None,
            end: End::Open,
            cause: None,
        }
    }

    /// Drives the connection until `until` holds. A read gets `Ok` with a message in
    /// the stash, or the end: `Err(Protocol)` once with its cause, then
    /// `Err(ConnectionClosed)`.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, until: Until) -> Poll<Result<()>> {
        if until == Until::Message && !self.stash.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if let Some(kind) = self.broken {
            return Poll::Ready(Err(Error::Io(kind.into())));
        }
        self.conn.handle_timeout(Instant::now());
        loop {
            // A send takes events only while the stash has room; then it just writes.
            let take_events = until == Until::Message
                || (self.stash.len() < STASH_MAX && !self.stash.iter().any(Message::is_data));
            let next = match take_events {
                true => self.conn.next(),
                false => match self.conn.transmit() {
                    Some(output) => Next::Write(output),
                    None => Next::Wait(None),
                },
            };
            let deadline;
            let mut done = false;
            match next {
                Next::Event(event, _) => {
                    self.stash.push_back(Message::from(event));
                    if until == Until::Message {
                        return Poll::Ready(Ok(()));
                    }
                    continue;
                }
                Next::Write(output) => {
                    deadline = output.deadline();
                    let written = poll_transmit(&mut self.stream, cx, output);
                    if self.step(written)? {
                        self.unflushed = true;
                        continue;
                    }
                }
                Next::Wait(at) => {
                    deadline = at;
                    if self.unflushed {
                        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
                        self.unflushed = !self.step(flushed)?;
                    }
                    // Written: one look at the input on the way out (free while
                    // nothing arrived) answers pings for a task that only writes.
                    done = until == Until::Written && !self.unflushed;
                }
                Next::Close(closed) => {
                    if self.end == End::Open {
                        self.cause = closed.error;
                        self.end = End::ShuttingDown;
                    }
                    ready!(self.poll_end(cx));
                    if until == Until::Written && self.conn.buffered_output() == 0 {
                        return Poll::Ready(Ok(())); // all written before the end
                    }
                    return Poll::Ready(Err(match self.cause.take() {
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
            if ready_timer(&mut self.timer, &mut self.timer_at, deadline, cx) {
                self.conn.handle_timeout(Instant::now());
                continue;
            }
            return Poll::Pending;
        }
    }

    /// Reads once into the engine's buffer. While nothing arrives, the buffer waits in
    /// the thread's pool, so an idle connection holds none.
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.lent {
            if let Some(buf) = pool::take() {
                drop(self.conn.give_read_buffer(buf));
            }
            self.lent = false;
        }
        let room = self.conn.read_buf();
        if room.is_empty() {
            // Reading into no room would look like the end of input.
            return Poll::Ready(Err(io::Error::other(
                "hybi: read before the events were drained",
            )));
        }
        let mut buf = ReadBuf::new(room);
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                match buf.filled().len() {
                    0 => self.conn.receive_eof(),
                    n => self.conn.commit(n),
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if let Some(buf) = self.conn.take_read_buffer() {
                    pool::give(buf);
                    self.lent = true;
                }
                Poll::Pending
            }
        }
    }

    /// Shuts our sending side, then (a server, which closes first) reads and drops
    /// what the peer still sends until its end of input or [`DRAIN_TIMEOUT`].
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.end == End::ShuttingDown {
            if ready!(Pin::new(&mut self.stream).poll_shutdown(cx)).is_err() {
                self.end = End::Done;
            } else {
                self.end = End::Draining;
                let until = Instant::now() + DRAIN_TIMEOUT;
                self.timer_at = None;
                ready_timer(&mut self.timer, &mut self.timer_at, Some(until), cx);
            }
        }
        while self.end == End::Draining {
            let mut scratch = [0u8; 1024];
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
                Poll::Ready(_) => self.end = End::Done,
                Poll::Pending if ready_timer(&mut self.timer, &mut self.timer_at, None, cx) => {
                    self.end = End::Done;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        self.timer = None;
        self.timer_at = None;
        Poll::Ready(())
    }

    /// Whether an I/O poll completed (`false`: pending); a failure breaks the
    /// transport.
    fn step(&mut self, poll: Poll<io::Result<()>>) -> Result<bool> {
        match poll {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(e)) => Err(self.fail(e)),
            Poll::Pending => Ok(false),
        }
    }

    /// A transport that failed stays failed: every later call says so.
    fn fail(&mut self, e: io::Error) -> Error {
        self.broken = Some(e.kind());
        self.end = End::Done;
        Error::Io(e)
    }
}

/// One write of the queued output (vectored where the transport does it well).
fn poll_transmit<S: AsyncWrite + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    output: Transmit<'_>,
) -> Poll<io::Result<()>> {
    let n = if stream.is_write_vectored() {
        let mut runs: [&[u8]; MAX_SLICES] = [&[]; MAX_SLICES];
        let count = output.chunks(&mut runs);
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        for (slice, run) in slices.iter_mut().zip(&runs[..count]) {
            *slice = IoSlice::new(run);
        }
        ready!(Pin::new(&mut *stream).poll_write_vectored(cx, &slices[..count]))?
    } else {
        ready!(Pin::new(&mut *stream).poll_write(cx, output.bytes()))?
    };
    if n == 0 {
        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
    }
    output.consume(n);
    Poll::Ready(Ok(()))
}

/// Arms the timer for `deadline` (`None` keeps what is armed) and polls it: true once
/// it has fired (it is then disarmed). [`Instant::ZERO`] ("the time now") fires at once.
fn ready_timer(
    timer: &mut Option<Pin<Box<Sleep>>>,
    armed: &mut Option<Instant>,
    deadline: Option<Instant>,
    cx: &mut Context<'_>,
) -> bool {
    if let Some(at) = deadline {
        if at == Instant::ZERO {
            return true;
        }
        if *armed != Some(at) {
            let when = tokio::time::Instant::from_std(at.to_std());
            match timer {
                Some(sleep) => sleep.as_mut().reset(when),
                None => *timer = Some(Box::pin(tokio::time::sleep_until(when))),
            }
            *armed = Some(at);
        }
    }
    let fired = match (timer.as_mut(), *armed) {
        (Some(sleep), Some(_)) => sleep.as_mut().poll(cx).is_ready(),
        _ => false,
    };
    if fired {
        *armed = None;
    }
    fired
}
