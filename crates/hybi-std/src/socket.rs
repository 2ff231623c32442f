//! [`WebSocket`]: one open connection over a blocking stream.

use std::io::{self, Read};
use std::time::{Duration, Instant as StdInstant};

use hybi::{CloseCode, Connection, Event, MessageKind, State};

use crate::engine::{Engine, Side, read_event};
use crate::error::{Error, Result};
use crate::message::{CloseInfo, Message};
use crate::stream::Stream;
use crate::timeout::ReadTimeout;

/// An open WebSocket over a blocking stream `S`.
///
/// Reading ([`read`](Self::read)) answers pings, runs the keepalive and close timers,
/// and returns the next message. Sending writes the frame before returning; on a
/// non-blocking stream a `WouldBlock` leaves the bytes queued in the engine, and
/// [`flush`](Self::flush) writes them later. Nothing queued is ever lost.
pub struct WebSocket<S> {
    engine: Engine<S>,
    read_timeout: Option<Duration>,
    /// The read timeout last set on the stream, to avoid a syscall per read.
    stream_timeout: ReadTimeout,
}

impl<S: std::fmt::Debug> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("stream", &self.engine.stream)
            .field("conn", &self.engine.conn)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Side<S> for WebSocket<S> {
    fn with_engine<R>(&mut self, f: impl FnOnce(&mut Engine<S>) -> R) -> R {
        f(&mut self.engine)
    }

    fn fill(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if let Some(timeout) = self.stream_timeout.change(timeout) {
            self.engine.stream.set_read_timeout(timeout)?;
        }
        let Engine { conn, stream, .. } = &mut self.engine;
        conn.read_from(stream).map(drop)
    }
}

impl<S: Stream> WebSocket<S> {
    /// Wraps a stream whose handshake is done and the engine for it (bytes that
    /// arrived after the handshake already fed to it).
    pub fn from_parts(stream: S, conn: Connection) -> WebSocket<S> {
        WebSocket {
            engine: Engine::new(conn, stream),
            read_timeout: None,
            stream_timeout: ReadTimeout::default(),
        }
    }

    /// [`from_parts`](Self::from_parts) for a stream whose read timeout is known to
    /// be none (the handshake code has just cleared it).
    pub(crate) fn after_handshake(stream: S, conn: Connection) -> WebSocket<S> {
        WebSocket {
            stream_timeout: ReadTimeout::none(),
            ..WebSocket::from_parts(stream, conn)
        }
    }

    /// The engine, for anything this type does not wrap.
    pub fn connection(&self) -> &Connection {
        &self.engine.conn
    }

    /// The engine, mutably. Bytes it queues are written by the next
    /// [`flush`](Self::flush), send or read.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.engine.conn
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.engine.stream
    }

    /// The stream, mutably. Reading or writing it directly corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.engine.stream
    }

    /// Takes the socket apart.
    pub fn into_parts(self) -> (S, Connection) {
        (self.engine.stream, self.engine.conn)
    }

    /// How long [`read`](Self::read) waits for a message before returning
    /// [`Error::Timeout`] (`None`, the default: forever). The connection stays usable
    /// after a timeout.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.engine.conn.state()
    }

    /// The peer's close code and reason, once its close frame has arrived.
    pub fn peer_close(&self) -> Option<CloseInfo> {
        self.engine
            .conn
            .peer_close()
            .map(|(code, reason)| CloseInfo {
                code,
                reason: reason.to_owned(),
            })
    }

    /// Reads the next message, copied out of the engine.
    ///
    /// Pings are answered before this returns them (unless auto-pong is off). After
    /// the peer's close frame ([`Message::Close`]) the next call returns
    /// [`Error::ConnectionClosed`]; a connection that failed (a protocol error, a
    /// timeout, the end of the stream before the closing handshake) returns
    /// [`Error::Protocol`] once, with the close frame that says why already written.
    pub fn read(&mut self) -> Result<Message> {
        self.read_with(|event| Message::from(event))
    }

    /// Reads the next event and hands it to `f` without copying it out of the engine.
    ///
    /// ```no_run
    /// # fn demo(ws: &mut hybi_std::WebSocket<std::net::TcpStream>) -> hybi_std::Result<()> {
    /// let len = ws.read_with(|event| match event {
    ///     hybi::Event::Binary(data) => data.len(),
    ///     _ => 0,
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn read_with<R>(&mut self, f: impl FnOnce(Event<'_>) -> R) -> Result<R> {
        let deadline = self.read_timeout.map(|t| StdInstant::now() + t);
        let mut f = Some(f);
        let out = read_event(self, deadline, false, |event| f.take().map(|f| f(event)))?;
        // `read_event` hands out one event and returns, so `f` was called.
        out.ok_or(Error::ConnectionClosed)
    }

    /// Writes everything the engine has queued.
    ///
    /// On a non-blocking stream this may return an `Io` error of kind `WouldBlock`;
    /// the unwritten bytes stay queued for the next call.
    pub fn flush(&mut self) -> Result<()> {
        self.engine.flush()
    }

    /// Bytes queued in the engine and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.engine.conn.buffered_output()
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.engine.conn.send_text(text)?;
        self.flush()
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.engine.conn.send_binary(data)?;
        self.flush()
    }

    /// Sends a binary message taken by value: a large payload is written straight
    /// from the vector (vectored write, no copy).
    pub fn send_binary_owned(&mut self, data: Vec<u8>) -> Result<()> {
        self.engine.conn.send_binary_owned(data)?;
        self.flush()
    }

    /// Sends a message (text or binary; pings, pongs and closes are sent as such).
    pub fn send(&mut self, message: Message) -> Result<()> {
        match message {
            Message::Text(t) => self.engine.conn.send_text_owned(t)?,
            Message::Binary(b) => self.engine.conn.send_binary_owned(b)?,
            Message::Fragment {
                kind, data, fin, ..
            } => self.engine.conn.send_fragment(kind, &data, fin)?,
            Message::Ping(p) => self.engine.conn.send_ping(&p)?,
            Message::Pong(p) => self.engine.conn.send_pong(&p)?,
            Message::Close(c) => self.engine.conn.close(c.code, &c.reason)?,
        }
        self.flush()
    }

    /// Sends one fragment of a message (see [`Connection::send_fragment`]).
    pub fn send_fragment(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<()> {
        self.engine.conn.send_fragment(kind, data, fin)?;
        self.flush()
    }

    /// Streams everything `reader` yields as one message of `kind`, in fragments of
    /// at most `chunk` bytes, without holding the body in memory. Returns the number
    /// of bytes sent. For text, the bytes must be UTF-8 (a fragment may end inside a
    /// character).
    pub fn send_from_reader(
        &mut self,
        kind: MessageKind,
        mut reader: impl Read,
        chunk: usize,
    ) -> Result<u64> {
        let mut buf = vec![0u8; chunk.max(1)];
        let mut filled = 0;
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            };
            filled += n;
            if n == 0 || filled == buf.len() {
                // Hold a full chunk back until we know whether it is the last.
                let fin = n == 0;
                self.send_fragment(kind, &buf[..filled], fin)?;
                total += filled as u64;
                filled = 0;
                if fin {
                    return Ok(total);
                }
            }
        }
    }

    /// Sends a ping.
    pub fn ping(&mut self, payload: &[u8]) -> Result<()> {
        self.engine.conn.send_ping(payload)?;
        self.flush()
    }

    /// Sends a pong (needed only when auto-pong is off, or as a heartbeat).
    pub fn pong(&mut self, payload: &[u8]) -> Result<()> {
        self.engine.conn.send_pong(payload)?;
        self.flush()
    }

    /// Starts the closing handshake with `code` and `reason`. Keep calling
    /// [`read`](Self::read) to receive what the peer still sends, up to its close
    /// frame, or use [`close_and_wait`](Self::close_and_wait).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.engine.conn.close(code, reason)?;
        self.flush()
    }

    /// Closes with `code` and `reason`, discards what the peer still sends, and
    /// returns the peer's close frame once it arrives (or the timeout error if it does
    /// not within the configured close timeout).
    pub fn close_and_wait(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo> {
        if self.engine.conn.is_open() {
            self.close(code, reason)?;
        }
        loop {
            match self.read() {
                Ok(Message::Close(info)) => return Ok(info),
                Ok(_) => {}
                Err(Error::ConnectionClosed) => {
                    return self.peer_close().ok_or(Error::ConnectionClosed);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl<S: Stream + crate::stream::TryClone> WebSocket<S> {
    /// Splits the socket into a [`Reader`](crate::Reader) and a
    /// [`Writer`](crate::Writer) for use from two threads (full duplex). The writer is
    /// cloneable, so any number of threads can send.
    pub fn split(self) -> Result<(crate::Reader<S>, crate::Writer<S>)> {
        let reader = self.engine.stream.try_clone()?;
        Ok(crate::split::split(
            self.engine,
            reader,
            self.read_timeout,
            self.stream_timeout,
        ))
    }
}
