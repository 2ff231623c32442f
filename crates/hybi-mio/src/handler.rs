//! Per-connection callbacks ([`Handler`]) and what they are handed ([`Context`]).

use std::net::SocketAddr;
use std::sync::Arc;

use hybi::{CloseCode, Fragment, MessageKind, Outbox};

use crate::Response;
use crate::client::ConnectError;
use crate::mailbox::{Letterbox, Target};
use crate::outgoing::SendFailure;
use crate::sender::{ConnId, Sender};

/// Callbacks for one connection, called on its event loop's thread. A handler is made
/// per connection (by the route's factory, or given to
/// [`Server::connect`](crate::Server::connect)), so per-connection state lives in
/// `self`. Every callback gets a [`Context`] to reply through. Callbacks must not
/// block: they run on a loop shared by thousands of connections.
pub trait Handler: Send + 'static {
    /// The connection is open (the handshake is done).
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }
    /// A whole text message.
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = (ctx, text);
    }
    /// A whole binary message.
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = (ctx, data);
    }
    /// A piece of a message, with [`Delivery::Streaming`](hybi::Delivery::Streaming).
    fn on_fragment(&mut self, ctx: &mut Context<'_>, fragment: Fragment<'_>) {
        let _ = (ctx, fragment);
    }
    /// A ping (the pong is already queued unless auto-pong is off).
    fn on_ping(&mut self, ctx: &mut Context<'_>, payload: &[u8]) {
        let _ = (ctx, payload);
    }
    /// A pong.
    fn on_pong(&mut self, ctx: &mut Context<'_>, payload: &[u8]) {
        let _ = (ctx, payload);
    }
    /// The queued output crossed the high-water mark (`paused`: reading from this
    /// peer stops) or drained below half of it (`!paused`: reading resumes).
    fn on_backpressure(&mut self, ctx: &mut Context<'_>, paused: bool) {
        let _ = (ctx, paused);
    }
    /// The connection ended. Called exactly once for every connection that opened
    /// (and, through the default [`on_connect_error`](Self::on_connect_error), for
    /// client connections that failed to open), once the transport is done with: the
    /// peer's code and reason after a closing handshake; the code we sent after a
    /// protocol error or an idle timeout; 1006 when the connection dropped, timed
    /// out, or (client) could not be established, with the reason saying why. The
    /// context's sends are refused ([`SendFailure::Gone`]).
    fn on_close(&mut self, ctx: &mut Context<'_>, code: CloseCode, reason: &str) {
        let _ = (ctx, code, reason);
    }
    /// A client connection could not be opened: the TCP connect, the TLS handshake
    /// (`ConnectError::Tls`, with the `tls` feature: a certificate not trusted or not
    /// valid for the host, say) or the upgrade failed, the handshake timed out, or
    /// the event loop stopped first. Called once, in place of `on_close`; by default
    /// it calls `on_close` with 1006 and the error's text as the reason. The
    /// context's sends are refused.
    fn on_connect_error(&mut self, ctx: &mut Context<'_>, error: ConnectError) {
        self.on_close(ctx, CloseCode::ABNORMAL, &error.to_string());
    }
}

/// What a connection's [`Handler`] knows of it beyond the engine.
pub(crate) struct ConnInfo {
    /// The worker's mailbox, for [`Sender`]s.
    pub(crate) letterbox: Arc<dyn Letterbox>,
    pub(crate) token: usize,
    pub(crate) serial: u64,
    pub(crate) addr: SocketAddr,
    /// Sends that would queue more than this fail with `Backpressure`.
    pub(crate) limit: usize,
}

/// A connection, as a callback sees it: reply, get a [`Sender`] to keep, or close.
///
/// In [`Handler::on_close`] the connection is over: sends are refused with
/// [`SendFailure::Gone`].
pub struct Context<'a> {
    /// The engine's sending half; `None` once the connection is over (or for a client
    /// connection that never opened).
    out: Option<Outbox<'a>>,
    info: &'a ConnInfo,
    /// A client connection's handshake response, in its `on_open`.
    response: Option<&'a Response>,
}

impl<'a> Context<'a> {
    /// The context of an open connection.
    pub(crate) fn open(out: Outbox<'a>, info: &'a ConnInfo) -> Context<'a> {
        Context {
            out: Some(out),
            info,
            response: None,
        }
    }

    /// The context of a client connection's `on_open`, with the server's response.
    pub(crate) fn opened(
        out: Outbox<'a>,
        info: &'a ConnInfo,
        response: &'a Response,
    ) -> Context<'a> {
        Context {
            response: Some(response),
            ..Context::open(out, info)
        }
    }

    /// The context of a connection that is over, or never opened: sends are refused.
    pub(crate) fn closed(info: &'a ConnInfo) -> Context<'a> {
        Context {
            out: None,
            info,
            response: None,
        }
    }

    /// The outbox, unless the connection is over (control frames and the close are
    /// not held to the limit: they are small, and the engine bounds pongs).
    fn live(&mut self) -> Result<&mut Outbox<'a>, SendFailure> {
        self.out.as_mut().ok_or(SendFailure::Gone)
    }

    /// The outbox, if sends are still possible within the connection's limit.
    fn outbox(&mut self) -> Result<&mut Outbox<'a>, SendFailure> {
        let limit = self.info.limit;
        let out = self.live()?;
        if out.buffered_output() > limit {
            return Err(SendFailure::Backpressure);
        }
        Ok(out)
    }

    /// Queues a text message (written when the callback returns, batched with others).
    pub fn send_text(&mut self, text: &str) -> Result<(), SendFailure> {
        self.outbox()?.send_text(text).map_err(SendFailure::Refused)
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendFailure> {
        self.outbox()?
            .send_binary(data)
            .map_err(SendFailure::Refused)
    }

    /// Queues one fragment of a message (see [`hybi::Connection::send_fragment`]).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SendFailure> {
        self.outbox()?
            .send_fragment(kind, data, fin)
            .map_err(SendFailure::Refused)
    }

    /// Queues a ping.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendFailure> {
        self.live()?
            .send_ping(payload)
            .map_err(SendFailure::Refused)
    }

    /// Queues a pong.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendFailure> {
        self.live()?
            .send_pong(payload)
            .map_err(SendFailure::Refused)
    }

    /// Starts the closing handshake.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendFailure> {
        self.live()?
            .close(code, reason)
            .map_err(SendFailure::Refused)
    }

    /// A [`Sender`] for this connection, to keep (in a chat room, say) and use from
    /// any thread.
    pub fn sender(&self) -> Sender {
        Sender {
            letterbox: Arc::clone(&self.info.letterbox),
            target: Target::Known(self.info.token),
            serial: self.info.serial,
        }
    }

    /// A client connection's handshake response (status, header fields, the
    /// subprotocol and extensions the server chose), in
    /// [`on_open`](Handler::on_open); `None` for a server's connections and in every
    /// other callback (keep what you need of it in `on_open`).
    pub fn response(&self) -> Option<&Response> {
        self.response
    }

    /// The connection's id.
    pub fn id(&self) -> ConnId {
        ConnId {
            worker: self.info.letterbox.id(),
            serial: self.info.serial,
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.info.addr
    }

    /// Bytes queued for this connection and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.out.as_ref().map_or(0, Outbox::buffered_output)
    }

    /// True until a close frame is sent or received.
    pub fn is_open(&self) -> bool {
        self.out.as_ref().is_some_and(Outbox::can_send)
    }

    /// The permessage-deflate parameters agreed with the peer, if compression is on
    /// (offered or accepted when the config's [`deflate`](hybi::Config::deflate) is set).
    pub fn deflate(&self) -> Option<hybi::deflate::Agreement> {
        self.out.as_ref().and_then(|o| o.deflate().copied())
    }
}
