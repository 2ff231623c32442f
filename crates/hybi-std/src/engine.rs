//! The loop that drives the engine over a blocking stream, written once for both the
//! [`WebSocket`](crate::WebSocket) and the split [`Reader`](crate::Reader): call
//! [`Connection::next`] until it waits, writing what it hands out and returning the
//! first event; wait for input until the engine's next timer or the caller's deadline;
//! feed what arrived and the time; again. Everything else is a [`Side`]: how to reach
//! the engine (a split reader takes a lock) and how to wait for input.

use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant as StdInstant};

use hybi::{Connection, Event, Next};

use crate::error::{Error, Result};
use crate::stream::Stream;

/// The engine and the stream its output goes to.
pub(crate) struct Engine<S> {
    pub(crate) conn: Connection,
    /// Where output is written (for an unsplit socket, also where input is read).
    pub(crate) stream: S,
    /// Our sending side is shut down.
    pub(crate) transport_closed: bool,
    /// A write failed: the transport is unusable, and every later call says so.
    broken: Option<io::ErrorKind>,
    /// [`Next::Close`] was reported: later reads return `ConnectionClosed`.
    ended: bool,
    /// A server reader's thread while it hands out data messages that arrived
    /// together: its sends are queued and written together (see `Writer`).
    pub(crate) batching: Option<ThreadId>,
    /// The stream blocks (split halves need that): a `WouldBlock` from a write is its
    /// write timeout expiring, which breaks the transport like any other failure.
    pub(crate) blocking: bool,
    /// Set while [`flush`](Self::flush) writes: seen without the lock, it tells a
    /// sender that would rather not wait (`Peer::try_send`) that the lock may be held
    /// by a write blocked on a peer that does not read.
    pub(crate) writing: Arc<AtomicBool>,
}

/// How a reading side reaches the engine and waits for input.
pub(crate) trait Side<S> {
    /// Runs `f` on the engine (for a split reader, under the lock).
    fn with_engine<R>(&mut self, f: impl FnOnce(&mut Engine<S>) -> R) -> R;
    /// Waits at most `timeout` (`None`: as long as it takes) for input and feeds what
    /// arrives, or the end of input, to the engine.
    fn fill(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

enum Turn<R> {
    Event(R),
    Wait(Option<hybi::Instant>),
}

/// Reads the next event, handing it to `f`: the whole driving loop. `batch` holds the
/// output queued while data messages that arrived together are handed out, so their
/// replies go out in one write when the engine next has no event.
pub(crate) fn read_event<S: Stream, R>(
    side: &mut impl Side<S>,
    deadline: Option<StdInstant>,
    batch: bool,
    mut f: impl FnMut(Event<'_>) -> R,
) -> Result<R> {
    loop {
        let timer = match side.with_engine(|engine| engine.turn(batch, &mut f))? {
            Turn::Event(out) => return Ok(out),
            Turn::Wait(timer) => timer.map(hybi::Instant::to_std),
        };
        let now = StdInstant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(Error::Timeout);
        }
        let wake = timer.into_iter().chain(deadline).min();
        let timeout = wake.map(|at| at.saturating_duration_since(now));
        if timeout.is_some_and(|t| t.is_zero()) {
            continue; // an engine timer is due
        }
        if let Err(e) = side.fill(timeout) {
            // A read that gave up long before its timeout is a non-blocking stream with
            // nothing to read: the caller's to wait for, not ours to spin on.
            let timed_out = matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
            if !timed_out || timeout.is_none_or(|t| now.elapsed() < t / 2) {
                return Err(Error::Io(e));
            }
        }
    }
}

impl<S: Stream> Engine<S> {
    pub(crate) fn new(conn: Connection, stream: S) -> Engine<S> {
        Engine {
            conn,
            stream,
            transport_closed: false,
            broken: None,
            ended: false,
            batching: None,
            blocking: false,
            writing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Gives the engine the time, then calls `next` until it has an event (handed to
    /// `f`), wants to wait, or ends. Output is written as it comes, and after an event
    /// too (a ping's pong, the close echo), except after data messages when batching.
    fn turn<R>(&mut self, batch: bool, f: &mut impl FnMut(Event<'_>) -> R) -> Result<Turn<R>> {
        self.conn.handle_timeout(hybi::Instant::now());
        loop {
            match self.conn.next() {
                Next::Event(event, _) => {
                    let data = event.is_data();
                    let out = f(event);
                    self.batching = (batch && data).then(|| thread::current().id());
                    if self.batching.is_none() {
                        self.flush()?;
                    }
                    return Ok(Turn::Event(out));
                }
                Next::Write(_) => {
                    self.batching = None;
                    self.flush()?;
                }
                Next::Wait(timer) => return Ok(Turn::Wait(timer)),
                Next::Close(closed) => {
                    let error = closed.error.filter(|_| !self.ended);
                    self.ended = true;
                    self.close_transport(true);
                    return Err(error.map_or(Error::ConnectionClosed, Error::Protocol));
                }
            }
        }
    }

    /// Writes everything the engine queued, without taking events. A failed write
    /// breaks the transport for good; `WouldBlock` on a stream that may be
    /// non-blocking leaves the bytes queued (on a blocking one it is the write timeout).
    pub(crate) fn flush(&mut self) -> Result<()> {
        if let Some(kind) = self.broken {
            return Err(Error::Io(kind.into()));
        }
        self.writing.store(true, Ordering::Release);
        let flushed = self.write_all();
        self.writing.store(false, Ordering::Release);
        flushed
    }

    fn write_all(&mut self) -> Result<()> {
        while let Some(output) = self.conn.transmit() {
            if let Err(e) = output.write_to(&mut self.stream) {
                if e.kind() != ErrorKind::WouldBlock || self.blocking {
                    self.broken = Some(e.kind());
                    self.close_transport(false);
                }
                return Err(Error::Io(e));
            }
        }
        self.stream.flush().map_err(Error::Io)
    }

    /// Ends our sending side (a FIN after our close frame), then, if `drain`, reads
    /// and drops what the peer still sends until its end of input (at most 500 ms)
    /// before closing: closing with unread input sends a reset instead, which can
    /// destroy our close frame in flight.
    pub(crate) fn close_transport(&mut self, drain: bool) {
        if std::mem::replace(&mut self.transport_closed, true) {
            return;
        }
        let _ = self.stream.shutdown_write();
        let until = StdInstant::now() + Duration::from_millis(500);
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(100)));
        let mut scratch = [0u8; 4096];
        while drain && StdInstant::now() < until {
            if let Ok(0) | Err(_) = self.stream.read(&mut scratch) {
                break;
            }
        }
        let _ = self.stream.shutdown();
    }
}
