//! [`WebSocket`]: one open connection over a blocking stream.

use std::io::{self, Read};
use std::time::{Duration, Instant as StdInstant};

use hybi::{CloseCode, Connection, Event, MessageKind, State};

use crate::clock;
use crate::error::{Error, Result};
use crate::message::{CloseInfo, Message};
use crate::stream::Stream;

/// How many slices a vectored write takes at most.
const WRITE_SLICES: usize = 16;

/// An open WebSocket over a blocking stream `S`.
///
/// Reading ([`read`](Self::read)) answers pings, runs the keepalive and close timers,
/// and returns the next message. Sending writes the frame before returning; on a
/// non-blocking stream a `WouldBlock` leaves the bytes queued in the engine, and
/// [`flush`](Self::flush) writes them later. Nothing queued is ever lost.
pub struct WebSocket<S> {
    stream: S,
    conn: Connection,
    read_timeout: Option<Duration>,
    /// The read timeout last set on the stream, to avoid a syscall per read.
    stream_timeout: clock::ReadTimeout,
    /// The transport was shut down.
    transport_closed: bool,
}

impl<S: std::fmt::Debug> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("stream", &self.stream)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> WebSocket<S> {
    /// Wraps a stream whose handshake is done and the engine for it (bytes that
    /// arrived after the handshake already fed to it).
    pub fn from_parts(stream: S, conn: Connection) -> WebSocket<S> {
        WebSocket {
            stream,
            conn,
            read_timeout: None,
            stream_timeout: clock::ReadTimeout::default(),
            transport_closed: false,
        }
    }

    /// [`from_parts`](Self::from_parts) for a stream whose read timeout is known to
    /// be none (the handshake code has just cleared it).
    pub(crate) fn after_handshake(stream: S, conn: Connection) -> WebSocket<S> {
        WebSocket {
            stream_timeout: clock::ReadTimeout::none(),
            ..WebSocket::from_parts(stream, conn)
        }
    }

    /// The engine, for anything this type does not wrap.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The engine, mutably. Bytes it queues are written by the next
    /// [`flush`](Self::flush), send or read.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably. Reading or writing it directly corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Takes the socket apart.
    pub fn into_parts(self) -> (S, Connection) {
        (self.stream, self.conn)
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
        self.conn.state()
    }

    /// The peer's close code and reason, once its close frame has arrived.
    pub fn peer_close(&self) -> Option<CloseInfo> {
        self.conn.peer_close().map(|(code, reason)| CloseInfo {
            code,
            reason: reason.to_owned(),
        })
    }

    /// Reads the next message, copied out of the engine.
    ///
    /// Pings are answered before this returns them (unless auto-pong is off). After
    /// the peer's close frame ([`Message::Close`]) the next call returns
    /// [`Error::ConnectionClosed`].
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
        loop {
            match self.conn.poll_event() {
                Ok(Some(event)) => {
                    let out = f(event);
                    self.after_event()?;
                    return Ok(out);
                }
                Ok(None) => {}
                Err(e) => {
                    if matches!(e, hybi::Error::Protocol(_) | hybi::Error::IdleTimeout) {
                        // Best effort: the close frame that says why.
                        let _ = self.flush();
                    }
                    if self.conn.should_close_transport() {
                        self.close_transport();
                    }
                    return Err(Error::Protocol(e));
                }
            }
            if self.conn.state() == State::Closed
                && (self.conn.should_close_transport() || self.transport_closed)
            {
                self.close_transport();
                return Err(Error::ConnectionClosed);
            }
            self.flush()?;
            self.fill(deadline)?;
        }
    }

    /// After an event: write what the engine queued in answer (a pong, a close echo)
    /// and, once the closing handshake is done, close the transport if it is our turn.
    fn after_event(&mut self) -> Result<()> {
        if self.conn.has_output() {
            match self.flush() {
                Ok(()) => {}
                // The event is delivered; a broken transport shows on the next call.
                Err(Error::Io(e)) if e.kind() != io::ErrorKind::WouldBlock => {
                    log::debug!("write after event failed: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        if self.conn.should_close_transport() {
            self.close_transport();
        }
        Ok(())
    }

    /// Shuts the transport down. Our sending side is closed first (FIN) and what the
    /// peer still sends is drained briefly, so that unread input does not turn the
    /// close into a reset that could destroy our close frame in flight.
    fn close_transport(&mut self) {
        if self.transport_closed {
            return;
        }
        self.transport_closed = true;
        let _ = self.stream.shutdown_write();
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(100)));
        self.stream_timeout.forget();
        let mut scratch = [0u8; 4096];
        let until = StdInstant::now() + Duration::from_millis(500);
        while StdInstant::now() < until {
            match self.stream.read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = self.stream.shutdown();
    }

    /// Reads once from the stream into the engine, waiting at most until the next
    /// engine timer or `deadline`; fires due timers first.
    fn fill(&mut self, deadline: Option<StdInstant>) -> Result<()> {
        if self.transport_closed {
            self.conn.receive_eof();
            return Ok(());
        }
        loop {
            self.conn.handle_timeout(clock::now());
            if self.conn.has_output() {
                // A timer queued a keepalive ping or a close.
                self.flush()?;
            }
            let timeout = match clock::wake_at(&self.conn, deadline) {
                None => None,
                Some(at) => {
                    let left = at.saturating_duration_since(StdInstant::now());
                    if left.is_zero() {
                        if deadline.is_some_and(|d| StdInstant::now() >= d) {
                            return Err(Error::Timeout);
                        }
                        // An engine timer is due: back to the caller's loop, which
                        // polls for what it produced and comes back here.
                        return Ok(());
                    }
                    Some(left)
                }
            };
            if let Some(timeout) = self.stream_timeout.change(timeout) {
                self.stream.set_read_timeout(timeout)?;
            }
            return match self.stream.read(self.conn.read_buf()) {
                Ok(0) => {
                    self.conn.receive_eof();
                    Ok(())
                }
                Ok(n) => {
                    self.conn.commit(n);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if deadline.is_some_and(|d| StdInstant::now() >= d) {
                        Err(Error::Timeout)
                    } else if timeout.is_none() {
                        // A non-blocking stream with nothing to read yet.
                        Err(Error::Io(e))
                    } else {
                        Ok(())
                    }
                }
                Err(e) => {
                    self.conn.receive_eof();
                    Err(Error::Io(e))
                }
            };
        }
    }

    /// Writes everything the engine has queued.
    ///
    /// On a non-blocking stream this may return an `Io` error of kind `WouldBlock`;
    /// the unwritten bytes stay queued for the next call.
    pub fn flush(&mut self) -> Result<()> {
        let mut wrote = false;
        while self.conn.has_output() {
            let mut slices: [&[u8]; WRITE_SLICES] = [&[]; WRITE_SLICES];
            let count = self.conn.pending_output_vectored(&mut slices);
            let written = crate::stream::write_pieces(&mut self.stream, &slices[..count]);
            match written {
                Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.conn.consume_output(n);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
        if wrote {
            self.stream.flush()?;
        }
        Ok(())
    }

    /// Bytes queued in the engine and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.conn.buffered_output()
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.conn.send_text(text)?;
        self.flush()
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.conn.send_binary(data)?;
        self.flush()
    }

    /// Sends a binary message taken by value: a large payload is written straight
    /// from the vector (vectored write, no copy).
    pub fn send_binary_owned(&mut self, data: Vec<u8>) -> Result<()> {
        self.conn.send_binary_owned(data)?;
        self.flush()
    }

    /// Sends a message (text or binary; pings, pongs and closes are sent as such).
    pub fn send(&mut self, message: Message) -> Result<()> {
        match message {
            Message::Text(t) => self.conn.send_text_owned(t)?,
            Message::Binary(b) => self.conn.send_binary_owned(b)?,
            Message::Fragment {
                kind, data, fin, ..
            } => self.conn.send_fragment(kind, &data, fin)?,
            Message::Ping(p) => self.conn.send_ping(&p)?,
            Message::Pong(p) => self.conn.send_pong(&p)?,
            Message::Close(c) => self.conn.close(c.code, &c.reason)?,
        }
        self.flush()
    }

    /// Sends one fragment of a message (see [`Connection::send_fragment`]).
    pub fn send_fragment(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<()> {
        self.conn.send_fragment(kind, data, fin)?;
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
        self.conn.send_ping(payload)?;
        self.flush()
    }

    /// Sends a pong (needed only when auto-pong is off, or as a heartbeat).
    pub fn pong(&mut self, payload: &[u8]) -> Result<()> {
        self.conn.send_pong(payload)?;
        self.flush()
    }

    /// Starts the closing handshake with `code` and `reason`. Keep calling
    /// [`read`](Self::read) to receive what the peer still sends, up to its close
    /// frame, or use [`close_and_wait`](Self::close_and_wait).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.conn.close(code, reason)?;
        self.flush()
    }

    /// Closes with `code` and `reason`, discards what the peer still sends, and
    /// returns the peer's close frame once it arrives (or the timeout error if it does
    /// not within the configured close timeout).
    pub fn close_and_wait(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo> {
        if self.conn.is_open() {
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
        let reader = self.stream.try_clone()?;
        Ok(crate::split::split(
            self.conn,
            reader,
            self.stream,
            self.read_timeout,
            self.stream_timeout,
        ))
    }
}
