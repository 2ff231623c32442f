//! Full duplex from two threads: a [`Reader`] and a [`Writer`] sharing one engine.
//!
//! The reader blocks on its own handle of the stream without holding any lock; the
//! engine and the writing handle sit behind one mutex, taken briefly to feed received
//! bytes, to queue a send, and to write. Writes from both halves (a message from the
//! writer, a pong from the reader) therefore never interleave mid-frame.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use hybi::{CloseCode, Connection, MessageKind, State};

use crate::engine::{Engine, Side, read_event};
use crate::error::Result;
use crate::message::{CloseInfo, Message};
use crate::stream::Stream;
use crate::timeout::ReadTimeout;

/// The reader's first buffer: enough for the small messages most connections carry,
/// and cheap for a connection that lives a moment.
const FIRST_READ_CHUNK: usize = 4 << 10;
/// What the reader's buffer grows to once a read fills it, on a stream that cannot
/// wait for bytes without reading them (see [`Reader::fill`]).
const READ_CHUNK: usize = 64 << 10;
/// While replies are batched (see [`Reader::batch_replies`]), output is written once
/// this much is queued.
const BATCH_OUTPUT: usize = 64 << 10;

fn lock<S>(shared: &Mutex<Engine<S>>) -> MutexGuard<'_, Engine<S>> {
    // A panic in another thread while holding the lock leaves the engine consistent
    // (it never panics mid-update), so keep going.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The receiving half of a split [`WebSocket`](crate::WebSocket).
pub struct Reader<S> {
    shared: Arc<Mutex<Engine<S>>>,
    /// The engine's [`writing`](Engine::writing) flag, for the writers it hands out.
    writing: Arc<AtomicBool>,
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
    stream_timeout: ReadTimeout,
}

/// The sending half of a split [`WebSocket`](crate::WebSocket). Cloneable: any number
/// of threads may send.
pub struct Writer<S> {
    shared: Arc<Mutex<Engine<S>>>,
    /// The engine's [`writing`](Engine::writing) flag, read without the lock.
    writing: Arc<AtomicBool>,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Writer {
            shared: Arc::clone(&self.shared),
            writing: Arc::clone(&self.writing),
        }
    }
}

/// How long [`Writer::try_send_with`] waits for the engine's lock (held by a write, by
/// the reader feeding bytes, by another sender queueing) before giving up.
const TRY_LOCK_WAIT: Duration = Duration::from_millis(20);

/// What [`Writer::try_send_with`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySent {
    /// Queued and written.
    Written,
    /// Queued; the socket took only part of it within the short write: the rest
    /// waits for a [`Writer::flush`].
    Pending,
    /// Not queued: a write to this connection is under way (perhaps blocked on a
    /// peer that does not read).
    Busy,
    /// Not queued: more than the limit is queued already.
    Full,
}

pub(crate) fn split<S: Stream>(
    mut engine: Engine<S>,
    reader: S,
    read_timeout: Option<Duration>,
    stream_timeout: ReadTimeout,
) -> (Reader<S>, Writer<S>) {
    engine.blocking = true;
    let writing = Arc::clone(&engine.writing);
    let shared = Arc::new(Mutex::new(engine));
    (
        Reader {
            shared: Arc::clone(&shared),
            writing: Arc::clone(&writing),
            stream: reader,
            buf: vec![0; FIRST_READ_CHUNK],
            bulk: false,
            batch_replies: false,
            can_wait: true,
            read_timeout,
            stream_timeout,
        },
        Writer { shared, writing },
    )
}

impl<S: Stream> Side<S> for Reader<S> {
    fn with_engine<R>(&mut self, f: impl FnOnce(&mut Engine<S>) -> R) -> R {
        f(&mut lock(&self.shared))
    }

    /// One read from the stream into the engine.
    ///
    /// Small reads go through the reader's own buffer, read without the lock (a writer
    /// is never kept waiting on a blocking read) and then copied into the engine. Once
    /// a read fills that buffer, more is arriving than it holds: while it does, the
    /// reader waits for bytes without the lock ([`Stream::wait_readable`]), then takes
    /// it and reads straight into the engine's buffer, which for a frame too large for
    /// it is the message being assembled. That read returns at once, and saves a copy
    /// of every byte (two for large frames).
    fn fill(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if let Some(timeout) = self.stream_timeout.change(timeout) {
            self.stream.set_read_timeout(timeout)?;
        }
        if self.bulk {
            if self.stream.wait_readable()? {
                let mut engine = lock(&self.shared);
                let offered = engine.conn.read_buf().len();
                let n = engine.conn.read_from(&mut self.stream)?;
                if n < FIRST_READ_CHUNK && n < offered {
                    self.bulk = false;
                }
                return Ok(());
            }
            self.can_wait = false;
            self.bulk = false;
        }
        let n = self.stream.read(&mut self.buf)?;
        let mut engine = lock(&self.shared);
        if n == 0 {
            engine.conn.receive_eof();
            return Ok(());
        }
        engine.conn.receive(&self.buf[..n]);
        if n == self.buf.len() {
            // More is coming than fits.
            if self.can_wait {
                self.bulk = true;
            } else if n < READ_CHUNK {
                self.buf.resize(READ_CHUNK, 0);
            }
        }
        Ok(())
    }
}

impl<S: Stream> Reader<S> {
    /// How long [`read`](Self::read) waits for a message (`None`: forever).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// Reads the next message; pings are answered through the shared writer.
    /// Returns [`Error::ConnectionClosed`](crate::Error::ConnectionClosed) after the closing handshake.
    pub fn read(&mut self) -> Result<Message> {
        let deadline = self.read_timeout.map(|t| StdInstant::now() + t);
        let batch = self.batch_replies;
        read_event(self, deadline, batch, |event| Message::from(event))
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
            writing: Arc::clone(&self.writing),
        }
    }
}

impl<S: Stream> Writer<S> {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> std::result::Result<R, hybi::SendError>,
    ) -> Result<R> {
        let mut engine = lock(&self.shared);
        let out = f(&mut engine.conn)?;
        let batched = engine.batching == Some(thread::current().id())
            && engine.conn.buffered_output() < BATCH_OUTPUT;
        if !batched {
            engine.flush()?;
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

    /// Queues a message with `send` unless that would wait on a write: when a write
    /// to this connection (which may be blocked for the whole write timeout on a peer
    /// that does not read) or anything else holds the lock for longer than
    /// [`TRY_LOCK_WAIT`], [`TrySent::Busy`]; when more than `limit` bytes are queued
    /// already, [`TrySent::Full`]. Once queued, the output is written with `short`
    /// turned on around the write (a short write timeout on the socket, which `short`
    /// sets and clears): what the socket does not take in that time stays queued
    /// ([`TrySent::Pending`]) for [`flush`](Self::flush).
    pub(crate) fn try_send_with(
        &self,
        limit: usize,
        send: impl FnOnce(&mut Connection) -> std::result::Result<(), hybi::SendError>,
        short: impl Fn(&mut S, bool) -> io::Result<()>,
    ) -> Result<TrySent> {
        let started = StdInstant::now();
        let mut engine = loop {
            // Never block on the lock: its holder may be a write stuck on a peer that
            // does not read. A write that ends soon (a reply from the connection's own
            // thread) is waited for, briefly.
            if !self.writing.load(Ordering::Acquire) {
                match self.shared.try_lock() {
                    Ok(engine) => break engine,
                    Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                    Err(TryLockError::WouldBlock) => {}
                }
            }
            if started.elapsed() >= TRY_LOCK_WAIT {
                return Ok(TrySent::Busy);
            }
            thread::sleep(Duration::from_micros(50));
        };
        if engine.conn.buffered_output() > limit {
            return Ok(TrySent::Full);
        }
        send(&mut engine.conn)?;
        if engine.batching == Some(thread::current().id())
            && engine.conn.buffered_output() < BATCH_OUTPUT
        {
            // A reply from the connection's own callback: written with its batch.
            return Ok(TrySent::Written);
        }
        short(&mut engine.stream, true)?;
        engine.blocking = false;
        let flushed = engine.flush();
        engine.blocking = true;
        let restored = short(&mut engine.stream, false);
        match flushed {
            Ok(()) => restored.map(|()| TrySent::Written).map_err(Into::into),
            Err(crate::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                restored?;
                Ok(TrySent::Pending)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes everything queued, blocking (within the stream's write timeout: a
    /// failure breaks the connection, as for any send).
    pub(crate) fn flush(&self) -> Result<()> {
        lock(&self.shared).flush()
    }
}
