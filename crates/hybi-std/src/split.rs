//! Full duplex from two threads: a [`Reader`] and a [`Writer`] sharing one engine.
//!
//! The reader blocks on its own handle of the stream without holding any lock; the
//! engine and the writing handle sit behind one mutex, taken briefly to feed received
//! bytes, to queue a send, and to write. Writes from both halves (a message from the
//! writer, a pong from the reader) therefore never interleave mid-frame.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant as StdInstant};

use hybi::{CloseCode, Connection, MessageKind, State};

use crate::clock;
use crate::error::{Error, Result};
use crate::message::{CloseInfo, Message};
use crate::stream::Stream;

/// The reader's first buffer: enough for the small messages most connections carry,
/// and cheap for a connection that lives a moment.
const FIRST_READ_CHUNK: usize = 4 << 10;
/// What the reader's buffer grows to once a read fills it, on a stream that cannot
/// wait for bytes without reading them (see [`Reader::fill`]).
const READ_CHUNK: usize = 64 << 10;
/// While replies are batched (see [`Reader::batch_replies`]), output is written once
/// this much is queued.
const BATCH_OUTPUT: usize = 64 << 10;

struct Shared<S> {
    conn: Connection,
    writer: S,
    transport_closed: bool,
    /// A write failed: the transport is unusable.
    broken: Option<io::ErrorKind>,
    /// The reader's thread, while it hands out messages that arrived together: sends
    /// from that thread are queued and written together before the reader next blocks.
    batching: Option<ThreadId>,
}

impl<S: Stream> Shared<S> {
    /// Writes what the engine queued. The halves use blocking streams, so a failed
    /// write (including a write timeout) means the transport is broken: the engine
    /// is told the connection ended, and every later call reports it.
    fn flush(&mut self) -> Result<()> {
        if let Some(kind) = self.broken {
            return Err(Error::Io(kind.into()));
        }
        while self.conn.has_output() {
            let mut slices: [&[u8]; 8] = [&[]; 8];
            let count = self.conn.pending_output_vectored(&mut slices);
            let written = crate::stream::write_pieces(&mut self.writer, &slices[..count]);
            let err = match written {
                Ok(0) => io::ErrorKind::WriteZero.into(),
                Ok(n) => {
                    self.conn.consume_output(n);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => e,
            };
            self.broken = Some(err.kind());
            self.conn.receive_eof();
            self.close_transport();
            return Err(Error::Io(err));
        }
        self.writer.flush().map_err(Error::Io)
    }

    fn close_transport(&mut self) {
        if !self.transport_closed {
            self.transport_closed = true;
            let _ = self.writer.shutdown_write();
        }
    }
}

fn lock<S>(shared: &Mutex<Shared<S>>) -> MutexGuard<'_, Shared<S>> {
    // A panic in another thread while holding the lock leaves the engine consistent
    // (it never panics mid-update), so keep going.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The receiving half of a split [`WebSocket`](crate::WebSocket).
pub struct Reader<S> {
    shared: Arc<Mutex<Shared<S>>>,
    stream: S,
    buf: Vec<u8>,
    /// Reading straight into the engine (see [`Reader::fill`]).
    bulk: bool,
    /// See [`Reader::batch_replies`].
    batch_replies: bool,
    /// The stream can wait for bytes without reading them ([`Stream::wait_readable`]).
    can_wait: bool,
    read_timeout: Option<Duration>,
    /// The read timeout last set on the stream, to avoid a syscall per read.
    stream_timeout: clock::ReadTimeout,
}

/// The sending half of a split [`WebSocket`](crate::WebSocket). Cloneable: any number
/// of threads may send.
pub struct Writer<S> {
    shared: Arc<Mutex<Shared<S>>>,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Writer {
            shared: Arc::clone(&self.shared),
        }
    }
}

pub(crate) fn split<S: Stream>(
    conn: Connection,
    reader: S,
    writer: S,
    read_timeout: Option<Duration>,
    stream_timeout: clock::ReadTimeout,
) -> (Reader<S>, Writer<S>) {
    let shared = Arc::new(Mutex::new(Shared {
        conn,
        writer,
        transport_closed: false,
        broken: None,
        batching: None,
    }));
    (
        Reader {
            shared: Arc::clone(&shared),
            stream: reader,
            buf: vec![0; FIRST_READ_CHUNK],
            bulk: false,
            batch_replies: false,
            can_wait: true,
            read_timeout,
            stream_timeout,
        },
        Writer { shared },
    )
}

impl<S: Stream> Reader<S> {
    /// How long [`read`](Self::read) waits for a message (`None`: forever).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// Reads the next message; pings are answered through the shared writer.
    /// Returns [`Error::ConnectionClosed`] after the closing handshake.
    pub fn read(&mut self) -> Result<Message> {
        let deadline = self.read_timeout.map(|t| StdInstant::now() + t);
        loop {
            let timeout = {
                let mut shared = lock(&self.shared);
                let shared = &mut *shared;
                shared.conn.handle_timeout(clock::now());
                match shared.conn.poll_event() {
                    Ok(Some(event)) => {
                        let message = Message::from(event);
                        // Data messages only: a ping's pong is written before the
                        // next message is handed out, as without batching.
                        let more = shared.conn.buffered_input() > 0 && message.is_data();
                        if self.batch_replies && more && !shared.conn.should_close_transport() {
                            shared.batching = Some(thread::current().id());
                            return Ok(message);
                        }
                        shared.batching = None;
                        // A failed write shows on the next call (the engine has
                        // been told the connection ended).
                        let _ = shared.flush();
                        if shared.conn.should_close_transport() {
                            shared.close_transport();
                        }
                        return Ok(message);
                    }
                    Ok(None) => shared.batching = None,
                    Err(e) => {
                        shared.batching = None;
                        if matches!(e, hybi::Error::Protocol(_) | hybi::Error::IdleTimeout) {
                            let _ = shared.flush();
                        }
                        if shared.conn.should_close_transport() {
                            shared.close_transport();
                        }
                        return Err(Error::Protocol(e));
                    }
                }
                if shared.conn.state() == State::Closed
                    && (shared.conn.should_close_transport() || shared.transport_closed)
                {
                    // Batched replies may still be queued (a failed write already
                    // ended the transport).
                    let _ = shared.flush();
                    shared.close_transport();
                    return Err(Error::ConnectionClosed);
                }
                shared.flush()?;
                clock::wake_at(&shared.conn, deadline)
            };
            let timeout = match timeout {
                Some(at) => {
                    let left = at.saturating_duration_since(StdInstant::now());
                    if left.is_zero() {
                        if deadline.is_some_and(|d| StdInstant::now() >= d) {
                            return Err(Error::Timeout);
                        }
                        continue;
                    }
                    Some(left)
                }
                None => None,
            };
            if let Some(timeout) = self.stream_timeout.change(timeout) {
                self.stream.set_read_timeout(timeout)?;
            }
            match self.fill() {
                Ok(0) => lock(&self.shared).conn.receive_eof(),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if deadline.is_some_and(|d| StdInstant::now() >= d) {
                        return Err(Error::Timeout);
                    }
                }
                Err(e) => {
                    lock(&self.shared).conn.receive_eof();
                    return Err(Error::Io(e));
                }
            }
        }
    }

    /// One read from the stream into the engine; `Ok(0)` at the end of the stream.
    ///
    /// Small reads go through the reader's own buffer, read without the lock (a writer
    /// is never kept waiting on a blocking read) and then copied into the engine. Once
    /// a read fills that buffer, more is arriving than it holds: while it does, the reader
    /// waits for bytes without the lock ([`Stream::wait_readable`]), then takes it and
    /// reads straight into the engine's buffer, which for a frame too large for it is
    /// the message being assembled. That read returns at once, and saves a copy of
    /// every byte (two for large frames).
    fn fill(&mut self) -> io::Result<usize> {
        if self.bulk {
            if self.stream.wait_readable()? {
                let mut shared = lock(&self.shared);
                let buf = shared.conn.read_buf();
                let offered = buf.len();
                if offered > 0 {
                    let n = self.stream.read(buf)?;
                    shared.conn.commit(n);
                    if n < FIRST_READ_CHUNK && n < offered {
                        self.bulk = false;
                    }
                    return Ok(n);
                }
            } else {
                self.can_wait = false;
            }
            self.bulk = false;
        }
        let n = self.stream.read(&mut self.buf)?;
        if n > 0 {
            lock(&self.shared).conn.receive(&self.buf[..n]);
        }
        if n == self.buf.len() {
            // More is coming than fits.
            if self.can_wait {
                self.bulk = true;
            } else if n < READ_CHUNK {
                self.buf.resize(READ_CHUNK, 0);
            }
        }
        Ok(n)
    }

    /// Batch the replies sent from the reader's thread: while messages that arrived
    /// together are handed out, sends made from this thread between two `read` calls
    /// are queued (up to 64 KiB) and written together before the reader waits for more
    /// input, one `write(2)` instead of one per reply. Sends from other threads are
    /// written at once, as always. Only for a loop that calls `read` again after
    /// handling each message, as [`Server`](crate::Server)'s does; off by default.
    pub(crate) fn batch_replies(&mut self, on: bool) {
        self.batch_replies = on;
    }

    /// A writer for the same connection.
    pub fn writer(&self) -> Writer<S> {
        Writer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: Stream> Writer<S> {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> std::result::Result<R, hybi::SendError>,
    ) -> Result<R> {
        let mut shared = lock(&self.shared);
        let out = f(&mut shared.conn)?;
        let batched = shared.batching.is_some_and(|t| t == thread::current().id())
            && shared.conn.buffered_output() < BATCH_OUTPUT;
        if !batched {
            shared.flush()?;
        }
        Ok(out)
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.with(|c| c.send_text(text))
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        self.with(|c| c.send_binary(data))
    }

    /// Sends a text message the caller owns: from 4 KiB on it is written from where
    /// it is, not copied into the output queue.
    pub fn send_text_owned(&self, text: String) -> Result<()> {
        self.with(|c| c.send_text_owned(text))
    }

    /// Sends a binary message the caller owns, without a copy from 4 KiB on.
    pub fn send_binary_owned(&self, data: Vec<u8>) -> Result<()> {
        self.with(|c| c.send_binary_owned(data))
    }

    /// Sends one fragment of a message.
    pub fn send_fragment(&self, kind: MessageKind, data: &[u8], fin: bool) -> Result<()> {
        self.with(|c| c.send_fragment(kind, data, fin))
    }

    /// Sends a ping.
    pub fn ping(&self, payload: &[u8]) -> Result<()> {
        self.with(|c| c.send_ping(payload))
    }

    /// Sends a pong.
    pub fn pong(&self, payload: &[u8]) -> Result<()> {
        self.with(|c| c.send_pong(payload))
    }

    /// Starts the closing handshake; the reader receives the peer's close.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<()> {
        self.with(|c| c.close(code, reason))
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        lock(&self.shared).conn.state()
    }

    /// The peer's close code and reason, once its close frame arrived.
    pub fn peer_close(&self) -> Option<CloseInfo> {
        lock(&self.shared)
            .conn
            .peer_close()
            .map(|(code, reason)| CloseInfo {
                code,
                reason: reason.to_owned(),
            })
    }

    /// Bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        lock(&self.shared).conn.buffered_output()
    }
}
