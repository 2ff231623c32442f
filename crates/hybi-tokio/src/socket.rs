//! [`WebSocket`]: one connection over an async transport, with `async fn` methods and
//! the [`Stream`] and [`Sink`] of `futures`.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_sink::Sink;
use hybi::{CloseCode, Config, Connection, MessageKind, State};
use hybi_std::{CloseInfo, Error, Message, Result};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::drive::{Driver, Until};

/// The queued output over which [`Sink::poll_ready`] waits (unless set with
/// [`WebSocket::set_high_water`]): 64 KiB.
pub const DEFAULT_HIGH_WATER: usize = 64 << 10;

/// A WebSocket over a transport `S` (a `TcpStream`, a TLS stream, an upgraded hyper
/// connection), after the opening handshake.
///
/// Read with [`recv`](Self::recv) or as a [`Stream`] of [`Message`]s; send with
/// [`send`](Self::send) and friends or as a [`Sink`]. Pings are answered, and the
/// engine's keepalive, idle and close timers run (on tokio's timer) whenever the
/// socket is polled for either: a task that only reads, or only writes, keeps the
/// connection alive. [`split`](Self::split) gives a reader and a writer for two tasks.
///
/// Messages arrive whole, or in pieces as [`Message::Fragment`] with
/// [`Delivery::Streaming`](hybi::Delivery::Streaming) in the config.
pub struct WebSocket<S> {
    pub(crate) driver: Driver<S>,
    high_water: usize,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.driver.conn.role())
            .field("state", &self.driver.conn.state())
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// A WebSocket over `stream`, whose opening handshake `conn` came from (see
    /// [`hybi::handshake`]): for a transport whose upgrade was done elsewhere, a hyper
    /// upgrade say. Input that arrived with the handshake must already be in `conn`
    /// (the engine's handshake types do that).
    pub fn from_parts(stream: S, conn: Connection) -> WebSocket<S> {
        WebSocket {
            driver: Driver::new(conn, stream),
            high_water: DEFAULT_HIGH_WATER,
        }
    }

    /// The next message: data, or a ping, pong or the peer's close frame (pings are
    /// already answered, the close frame already echoed). After the end, an error:
    /// [`Error::Protocol`] once if the connection failed (the peer broke the protocol,
    /// a timeout, the transport ended early), then [`Error::ConnectionClosed`].
    ///
    /// # Cancel safety
    /// Cancel safe: a message is taken from the engine only in the poll that returns
    /// it, so dropping the future loses nothing; the next call gets the message.
    pub async fn recv(&mut self) -> Result<Message> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll function.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        ready!(self.driver.poll(cx, Until::Message))?;
        Poll::Ready(self.driver.stash.pop_front().ok_or(Error::ConnectionClosed))
    }

    /// Sends `message` and returns once it is written to the transport (and flushed):
    /// that is send completion. A [`Message::Close`] starts the closing handshake (see
    /// [`close`](Self::close)); a [`Message::Fragment`] is one frame of a message sent
    /// in pieces.
    ///
    /// # Cancel safety
    /// The message is queued in the engine on the future's first poll: dropped before
    /// that, nothing is sent; dropped after, the message is still sent whole and once,
    /// by whichever call on the socket next writes.
    pub async fn send(&mut self, message: Message) -> Result<()> {
        self.queue(message)?;
        self.flush().await
    }

    /// Sends a text message (see [`send`](Self::send); the same cancel safety).
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.driver.conn.send_text(text).map_err(Error::Send)?;
        self.flush().await
    }

    /// Sends a binary message (see [`send`](Self::send); the same cancel safety).
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.driver.conn.send_binary(data).map_err(Error::Send)?;
        self.flush().await
    }

    /// Sends one piece of a message: the first piece gives its kind, `fin` ends it
    /// (see [`send`](Self::send); the same cancel safety).
    pub async fn send_fragment(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<()> {
        self.driver
            .conn
            .send_fragment(kind, data, fin)
            .map_err(Error::Send)?;
        self.flush().await
    }

    /// Sends a ping (at most 125 bytes); the pong comes through
    /// [`recv`](Self::recv) (see [`send`](Self::send); the same cancel safety).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<()> {
        self.driver.conn.send_ping(payload).map_err(Error::Send)?;
        self.flush().await
    }

    /// Starts the closing handshake: sends a close frame with `code` and `reason`
    /// and returns once it is written. Messages the peer sent before its answer still
    /// arrive through [`recv`](Self::recv), then its close frame, then the end
    /// ([`Error::ConnectionClosed`]), when the transport is closed too.
    ///
    /// # Cancel safety
    /// As [`send`](Self::send): once polled, the close frame goes out.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.driver.conn.close(code, reason).map_err(Error::Send)?;
        self.flush().await
    }

    /// Writes and flushes everything queued.
    ///
    /// # Cancel safety
    /// Cancel safe: what is not written stays queued, in order, for the next call.
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.driver.poll(cx, Until::Written)).await
    }

    /// Queues `message` in the engine without writing it: [`flush`](Self::flush), a
    /// send or a read writes it.
    pub fn queue(&mut self, message: Message) -> Result<()> {
        let conn = &mut self.driver.conn;
        match message {
            Message::Text(text) => conn.send_text_owned(text),
            Message::Binary(data) => conn.send_binary_owned(data),
            Message::Fragment {
                kind, data, fin, ..
            } => conn.send_fragment(kind, &data, fin),
            Message::Ping(payload) => conn.send_ping(&payload),
            Message::Pong(payload) => conn.send_pong(&payload),
            Message::Close(info) => conn.close(info.code, &info.reason),
        }
        .map_err(Error::Send)
    }

    /// Bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.driver.conn.buffered_output()
    }

    /// The queued output over which [`Sink::poll_ready`] is pending (default
    /// [`DEFAULT_HIGH_WATER`]).
    pub fn set_high_water(&mut self, bytes: usize) {
        self.high_water = bytes;
    }

    /// Where the connection is: open, closing, closed.
    pub fn state(&self) -> State {
        self.driver.conn.state()
    }

    /// The peer's close code and reason, once its close frame arrived.
    pub fn peer_close(&self) -> Option<CloseInfo> {
        let (code, reason) = self.driver.conn.peer_close()?;
        Some(CloseInfo {
            code,
            reason: reason.to_owned(),
        })
    }

    /// The engine, for what this type does not wrap (its counters, the deflate codec).
    pub fn connection(&self) -> &Connection {
        &self.driver.conn
    }

    /// The engine's settings.
    pub fn config(&self) -> &Config {
        self.driver.conn.config()
    }

    /// The permessage-deflate parameters agreed, if compression is on.
    pub fn deflate(&self) -> Option<&hybi::deflate::Agreement> {
        self.driver.conn.deflate()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.driver.stream
    }

    /// The transport. Reading or writing it directly breaks the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.driver.stream
    }
}

/// The messages until the end: a connection that failed gives its error once, then
/// the stream ends (`None`), as it does after a clean closing handshake.
impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        match ready!(self.get_mut().poll_recv(cx)) {
            Err(Error::ConnectionClosed) => Poll::Ready(None),
            other => Poll::Ready(Some(other)),
        }
    }
}

/// Messages as a sink: `poll_ready` waits while more than the high-water mark is
/// queued (backpressure), `start_send` queues, `poll_flush` writes everything,
/// `poll_close` sends a normal close (1000) if none was sent and writes it.
impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let ws = self.get_mut();
        if ws.driver.conn.buffered_output() <= ws.high_water {
            return Poll::Ready(Ok(()));
        }
        ws.driver.poll(cx, Until::Written)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<()> {
        self.get_mut().queue(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().driver.poll(cx, Until::Written)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let ws = self.get_mut();
        if ws.driver.conn.state() == State::Open {
            ws.driver
                .conn
                .close(CloseCode::NORMAL, "")
                .map_err(Error::Send)?;
        }
        match ready!(ws.driver.poll(cx, Until::Written)) {
            Err(Error::ConnectionClosed) => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }
}
