//! A small thread-per-connection server: routes by path, an upgrade hook, and
//! per-connection handlers with callbacks.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use hybi::handshake::{Limits, UpgradeRequest};
use hybi::{CloseCode, Config};

use crate::accept::Acceptor;
use crate::adapter::{Pages, Routes};
use crate::error::{Error, Result};
use crate::idle::Idle;
use crate::message::Message;
use crate::split::{TrySent, Writer};
use crate::stream::SharedTcp;
use crate::transport::ServerStream;
use hybi::handshake::Decision;

/// Identifies a connection within a [`Server`] (never reused while it runs), e.g. as
/// a key for a chat room's members: what [`Peer::id`] returns. hybi-mio's
/// `ConnId` plays the same part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// The number (1 for the server's first connection, counting up).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A handle to one connection, for replying from a callback or sending from any
/// other thread (a chat room broadcasting to its members, say). Cheap to clone.
#[derive(Clone)]
pub struct Peer {
    id: ConnId,
    addr: SocketAddr,
    writer: Writer<ServerStream>,
    shared: Arc<PeerShared>,
}

/// What the handles of one connection share beside its writer.
struct PeerShared {
    /// Another handle to the connection's stream (the same socket), to end it from
    /// outside when a shutdown's grace period is over, and to set its write timeout.
    stream: ServerStream,
    /// The server's write timeout, restored after a [`Peer::try_send`].
    write_timeout: Option<Duration>,
    /// Queued output above which [`Peer::try_send`] refuses.
    high_water: usize,
    /// A thread is writing what a [`Peer::try_send`] left queued.
    flushing: AtomicBool,
}

/// How long a [`Peer::try_send`] lets the socket take its message before the rest is
/// left to a background write.
const TRY_WRITE: Duration = Duration::from_millis(2);

/// Why [`Peer::try_send`] did not send.
#[derive(Debug)]
#[non_exhaustive]
pub enum TrySendError {
    /// A write to this connection is under way and did not end within 20 ms, perhaps
    /// blocked on a client that does not read (the socket's buffers are full): the
    /// message was not queued.
    Busy,
    /// More than the server's [`high_water`](ServerBuilder::high_water) mark is queued
    /// for this connection already: the message was not queued.
    Full,
    /// The connection is closed or broken.
    Closed(Error),
}

impl std::fmt::Display for TrySendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Busy => f.write_str("a write to the peer is under way"),
            TrySendError::Full => f.write_str("the peer's output queue is full"),
            TrySendError::Closed(e) => write!(f, "the connection is gone: {e}"),
        }
    }
}

impl std::error::Error for TrySendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrySendError::Closed(e) => Some(e),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .finish()
    }
}

impl Peer {
    /// What names this connection within the server.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The client's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends a text message. From another thread it returns once written to the
    /// socket; from the connection's own callbacks, replies to messages that arrived
    /// together are written together, before the connection reads again (see
    /// [`Handler`]).
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.writer.send_text(text)
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        self.writer.send_binary(data)
    }

    /// Sends a text message the caller owns: from 4 KiB on, it is written from where it
    /// is instead of being copied into the output queue (see [`Handler::on_message`]).
    pub fn send_text_owned(&self, text: String) -> Result<()> {
        self.writer.send_text_owned(text)
    }

    /// Sends a binary message the caller owns, without a copy from 4 KiB on.
    pub fn send_binary_owned(&self, data: Vec<u8>) -> Result<()> {
        self.writer.send_binary_owned(data)
    }

    /// Sends one fragment of a message (stream a reply in pieces).
    pub fn send_fragment(&self, kind: hybi::MessageKind, data: &[u8], fin: bool) -> Result<()> {
        self.writer.send_fragment(kind, data, fin)
    }

    /// Sends a ping.
    pub fn ping(&self, payload: &[u8]) -> Result<()> {
        self.writer.ping(payload)
    }

    /// Sends a pong (needed only with auto-pong off, or as a heartbeat).
    pub fn pong(&self, payload: &[u8]) -> Result<()> {
        self.writer.pong(payload)
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> hybi::State {
        self.writer.state()
    }

    /// Starts the closing handshake; `on_close` follows when the client answers.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<()> {
        self.writer.close(code, reason)
    }

    /// Bytes queued for this connection and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.writer.buffered_amount()
    }

    /// Sends `message` unless that would wait on this connection: what a broadcast
    /// uses ([`Room::broadcast`](crate::Room::broadcast)), so that one member that
    /// does not read cannot stall the broadcaster for the whole write timeout.
    ///
    /// The `send_*` methods block until the socket takes the message: from another
    /// thread, a client that stops reading holds the sender until the write timeout
    /// drops it (30 s by default). `try_send` instead returns
    /// [`TrySendError::Busy`] when a write to this connection is under way and does
    /// not end within 20 ms (at once if it is the background write below), and
    /// [`TrySendError::Full`] when more than the
    /// [`high_water`](ServerBuilder::high_water) mark is queued; the message is then
    /// not sent (skip it, drop the member, or send later). Otherwise it is queued and
    /// written: what the socket does not take within a couple of milliseconds is
    /// written by a background thread, during which later `try_send`s are `Busy`; a
    /// client that never reads is then dropped at the write timeout, as it would be
    /// by a blocking send. `Ok` means queued, in order with every other send.
    ///
    /// [`Message::Text`] and [`Message::Binary`] send a message,
    /// [`Message::Fragment`] a fragment (its `first` is implied by the stream of
    /// fragments), [`Message::Ping`] and [`Message::Pong`] those frames, and
    /// [`Message::Close`] starts the closing handshake.
    pub fn try_send(&self, message: &Message) -> std::result::Result<(), TrySendError> {
        if self.shared.flushing.load(Ordering::Acquire) {
            return Err(TrySendError::Busy);
        }
        let write_timeout = self.shared.write_timeout;
        let short = |stream: &mut ServerStream, on: bool| {
            let timeout = if on { Some(TRY_WRITE) } else { write_timeout };
            stream.tcp().set_write_timeout(timeout)
        };
        let send = |c: &mut hybi::Connection| match message {
            Message::Text(t) => c.send_text(t),
            Message::Binary(b) => c.send_binary(b),
            Message::Fragment {
                kind, data, fin, ..
            } => c.send_fragment(*kind, data, *fin),
            Message::Ping(p) => c.send_ping(p),
            Message::Pong(p) => c.send_pong(p),
            Message::Close(info) => c.close(info.code, &info.reason),
        };
        let sent = self
            .writer
            .try_send_with(self.shared.high_water, send, short)
            .map_err(TrySendError::Closed)?;
        match sent {
            TrySent::Written => Ok(()),
            TrySent::Pending => {
                self.flush_in_background();
                Ok(())
            }
            TrySent::Busy => Err(TrySendError::Busy),
            TrySent::Full => Err(TrySendError::Full),
        }
    }

    /// Writes what a [`try_send`](Self::try_send) left queued on a thread of its own
    /// (blocking, within the write timeout).
    fn flush_in_background(&self) {
        if self.shared.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let writer = self.writer.clone();
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new()
            .name("hybi-flush".into())
            .spawn(move || {
                if let Err(e) = writer.flush() {
                    log::debug!("a background write failed: {e}");
                }
                shared.flushing.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            // The output stays queued for the connection's next write.
            log::warn!("{}: cannot start a thread to write: {e}", self.addr);
            self.shared.flushing.store(false, Ordering::Release);
        }
    }
}

/// Callbacks for one connection. Each is handed the connection's [`Peer`] to reply
/// with. A handler is created per connection by the route's factory, so it can keep
/// per-connection state in `self`.
///
/// Replies sent from `on_message` (and the callbacks it calls) for messages that
/// arrived in the same read are queued and written with one `write(2)` once the last
/// of them is handled (or 64 KiB are queued), before the connection waits for more
/// input; a pong or the close is never held back. A client that pipelines 16 small
/// messages thus gets its 16 replies in one segment instead of 16.
pub trait Handler: Send + 'static {
    /// The connection is open.
    fn on_open(&mut self, peer: &Peer) {
        let _ = peer;
    }
    /// Every message, fragment, ping and pong, owned (the peer's close goes to
    /// [`on_close`](Self::on_close)). By default it calls the callback below that
    /// matches, lending the payload. Override it to keep or forward payloads without
    /// copying them: an echo that passes the message to
    /// [`Peer::send_binary_owned`] saves a copy of every large message.
    fn on_message(&mut self, peer: &Peer, message: Message) {
        match message {
            Message::Text(t) => self.on_text(peer, &t),
            Message::Binary(b) => self.on_binary(peer, &b),
            Message::Fragment {
                kind,
                data,
                first,
                fin,
            } => self.on_fragment(peer, kind, &data, first, fin),
            Message::Ping(p) => self.on_ping(peer, &p),
            Message::Pong(p) => self.on_pong(peer, &p),
            Message::Close(_) => {}
        }
    }
    /// A text message arrived.
    fn on_text(&mut self, peer: &Peer, text: &str) {
        let _ = (peer, text);
    }
    /// A binary message arrived.
    fn on_binary(&mut self, peer: &Peer, data: &[u8]) {
        let _ = (peer, data);
    }
    /// A piece of a message, in [`Delivery::Streaming`](hybi::Delivery::Streaming)
    /// mode (see [`hybi::Fragment`]).
    fn on_fragment(
        &mut self,
        peer: &Peer,
        kind: hybi::MessageKind,
        data: &[u8],
        first: bool,
        fin: bool,
    ) {
        let _ = (peer, kind, data, first, fin);
    }
    /// A ping arrived (the pong is already sent).
    fn on_ping(&mut self, peer: &Peer, payload: &[u8]) {
        let _ = (peer, payload);
    }
    /// A pong arrived.
    fn on_pong(&mut self, peer: &Peer, payload: &[u8]) {
        let _ = (peer, payload);
    }
    /// The connection ended, once, however it ended: the peer's close code and reason
    /// after a clean close (the engine has already answered it, echoing the code), the
    /// code we sent after a protocol error, 1006 when the connection dropped without a
    /// close frame.
    fn on_close(&mut self, peer: &Peer, code: CloseCode, reason: &str) {
        let _ = (peer, code, reason);
    }
}

type Factory = dyn Fn(&UpgradeRequest) -> Box<dyn Handler> + Send + Sync;
/// Builds a [`Server`].
pub struct ServerBuilder {
    routes: Routes<Box<Factory>>,
    pages: Pages,
    acceptor: Acceptor,
    write_timeout: Option<Duration>,
    high_water: usize,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServerBuilder {
    fn default() -> ServerBuilder {
        ServerBuilder::new()
    }
}

impl ServerBuilder {
    /// No routes yet (every path answers 404).
    pub fn new() -> ServerBuilder {
        ServerBuilder {
            routes: Routes::default(),
            pages: Pages::default(),
            acceptor: Acceptor::new(),
            write_timeout: Some(Duration::from_secs(30)),
            high_water: 1 << 20,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Serves WebSockets at `path` (exact match, without the query): `factory` makes
    /// the handler of each new connection from its request.
    pub fn route<H, F>(mut self, path: &str, factory: F) -> ServerBuilder
    where
        H: Handler,
        F: Fn(&UpgradeRequest) -> H + Send + Sync + 'static,
    {
        self.routes
            .insert(path, Box::new(move |req| Box::new(factory(req))));
        self
    }

    /// Serves every path that has no route of its own.
    pub fn fallback<H, F>(mut self, factory: F) -> ServerBuilder
    where
        H: Handler,
        F: Fn(&UpgradeRequest) -> H + Send + Sync + 'static,
    {
        self.routes
            .set_fallback(Box::new(move |req| Box::new(factory(req))));
        self
    }

    /// Serves a plain HTTP page at `path` to requests that are not WebSocket upgrades
    /// (a browser fetching the page that then opens a WebSocket, say): `GET` gets the
    /// body (`HEAD` its head), another method 405; the answer carries `Connection:
    /// close` and the connection ends once it is written. A plain request to a
    /// WebSocket path without a page gets 426, any other 404.
    pub fn page(
        mut self,
        path: &str,
        content_type: &str,
        body: impl Into<Arc<[u8]>>,
    ) -> ServerBuilder {
        self.pages.insert(path, content_type, body.into());
        self
    }

    /// A hook that sees every request to a known route before it is upgraded and may
    /// reject it (status, headers, body) or accept it with a subprotocol and extra
    /// headers. A path's own hook ([`should_upgrade_at`](Self::should_upgrade_at))
    /// runs first.
    pub fn should_upgrade(
        mut self,
        hook: impl Fn(&UpgradeRequest) -> Decision + Send + Sync + 'static,
    ) -> ServerBuilder {
        self.routes.set_hook(Box::new(hook));
        self
    }

    /// A hook for upgrade requests to `path` alone, run before the global
    /// [`should_upgrade`](Self::should_upgrade) hook: its rejection is the answer; if
    /// it accepts, the global hook may still reject, and otherwise the path hook's
    /// subprotocol and headers are used.
    ///
    /// `path` needs no [`route`](Self::route): a hook alone rejects requests to a path
    /// without a dummy handler. If such a hook accepts, the request goes on to the
    /// [`fallback`](Self::fallback), or is answered 404 without one (the rule of
    /// [`Routes::decide`](crate::adapter::Routes::decide), which hybi-mio's builder
    /// shares).
    ///
    /// ```no_run
    /// use hybi_std::{Decision, Server};
    /// # struct Echo; impl hybi_std::Handler for Echo {}
    /// let server = Server::builder()
    ///     .fallback(|_req| Echo)
    ///     .should_upgrade_at("/admin", |_req| Decision::reject(403, "not here"))
    ///     .bind("127.0.0.1:9002")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn should_upgrade_at(
        mut self,
        path: &str,
        hook: impl Fn(&UpgradeRequest) -> Decision + Send + Sync + 'static,
    ) -> ServerBuilder {
        self.routes.set_hook_at(path, Box::new(hook));
        self
    }

    /// The engine's settings for every connection (limits, keepalive, timeouts).
    /// Default: [`default_config`](crate::default_config); build on it to keep its
    /// receive buffer size.
    pub fn config(mut self, config: Config) -> ServerBuilder {
        self.acceptor = self.acceptor.config(config);
        self
    }

    /// Limits on request size.
    pub fn limits(mut self, limits: Limits) -> ServerBuilder {
        self.acceptor = self.acceptor.limits(limits);
        self
    }

    /// Accepts TLS only (`wss://`), with `config`'s certificate, key and settings: each
    /// connection's TLS handshake runs on its thread, within the handshake timeout. A
    /// client that fails it (plain HTTP, which is answered 400 in plain text; garbage;
    /// a certificate it refuses; nothing at all until the timeout) is dropped with a
    /// log line at info level, and the server goes on.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> ServerBuilder {
        self.tls = Some(config);
        self
    }

    /// A client that does not finish its handshake within this is dropped (default
    /// 10 s): the TLS handshake, if any, and the WebSocket upgrade together.
    pub fn handshake_timeout(mut self, timeout: Duration) -> ServerBuilder {
        self.acceptor = self.acceptor.handshake_timeout(timeout);
        self
    }

    /// How long a write may block before the peer is dropped (default 30 s): a client
    /// that stops reading cannot hold its connection's thread forever.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> ServerBuilder {
        self.write_timeout = timeout;
        self
    }

    /// Queued output per connection above which [`Peer::try_send`] (and so a
    /// [`Room`](crate::Room) broadcast) refuses with [`TrySendError::Full`] (default
    /// 1 MiB). The blocking `send_*` methods wait instead. hybi-mio's `high_water` is
    /// the same mark for its sends.
    pub fn high_water(mut self, bytes: usize) -> ServerBuilder {
        self.high_water = bytes;
        self
    }

    /// Binds the listening socket (the first of `addr`'s addresses that binds), with a
    /// listen backlog of 4,096 so that a burst of connections arriving faster than the
    /// accept loop takes them waits in the kernel instead of being dropped and retried
    /// seconds later (`std::net::TcpListener::bind` asks for 128).
    pub fn bind(self, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let listener = crate::adapter::listen(addr)?;
        let addr = listener.local_addr()?;
        Ok(Server {
            listener,
            addr,
            inner: Arc::new(Inner {
                routes: self.routes,
                pages: self.pages,
                acceptor: self.acceptor,
                write_timeout: self.write_timeout,
                high_water: self.high_water,
                #[cfg(feature = "tls")]
                tls: self.tls,
                conns: Mutex::new(Conns::default()),
                ended: Condvar::new(),
                next_id: AtomicU64::new(1),
                stopping: AtomicBool::new(false),
                idle: Idle::new(KEEP_IDLE_THREADS, IDLE_THREAD_LINGER),
            }),
        })
    }
}

struct Inner {
    routes: Routes<Box<Factory>>,
    pages: Pages,
    acceptor: Acceptor,
    write_timeout: Option<Duration>,
    high_water: usize,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
    conns: Mutex<Conns>,
    /// Signalled whenever a connection ends.
    ended: Condvar,
    next_id: AtomicU64,
    stopping: AtomicBool,
    /// Connection threads waiting for their next connection.
    idle: Idle<(TcpStream, SocketAddr)>,
}

/// The open connections.
#[derive(Default)]
struct Conns {
    /// Every connection from `on_open` to `on_close`.
    peers: HashMap<ConnId, Peer>,
    /// Connections upgraded and not yet ended: the peers, and those past `on_close`
    /// finishing their closing handshake.
    live: usize,
}

/// At most this many threads wait for a new connection after theirs ended.
const KEEP_IDLE_THREADS: usize = 64;
/// How long a thread waits for a new connection before it exits.
const IDLE_THREAD_LINGER: Duration = Duration::from_secs(10);

/// A thread-per-connection WebSocket server.
///
/// ```no_run
/// use hybi_std::{Handler, Peer, Server};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_text(&mut self, peer: &Peer, text: &str) {
///         let _ = peer.send_text(text);
///     }
///     fn on_binary(&mut self, peer: &Peer, data: &[u8]) {
///         let _ = peer.send_binary(data);
///     }
/// }
///
/// let server = Server::builder().route("/echo", |_req| Echo).bind("127.0.0.1:9002")?;
/// server.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Server {
    /// A builder.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// The address the server listens on (the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on the calling thread: accepts connections until
    /// [`ServerHandle::shutdown`] (or an accept error that does not pass, see
    /// [`AcceptBackoff`]), each on its own thread. A thread whose connection ended
    /// waits up to 10 s for the next one (64 threads at most wait), so a stream of
    /// short connections does not start a thread for each. (hybi-mio's `Server::run`
    /// blocks the same way, on loops it started at `bind`.)
    pub fn run(self) -> io::Result<()> {
        let mut backoff = AcceptBackoff::new();
        loop {
            let accepted = self.listener.accept();
            if self.inner.stopping.load(Ordering::Acquire) {
                break;
            }
            let Some((stream, addr)) = backoff.check(accepted)? else {
                continue;
            };
            let Some((stream, addr)) = self.inner.idle.hand_over((stream, addr)) else {
                continue; // a thread that served an earlier connection took it
            };
            let inner = Arc::clone(&self.inner);
            let spawned = thread::Builder::new()
                .name("hybi-conn".into())
                .spawn(move || connection_thread(&inner, stream, addr));
            if let Err(e) = spawned {
                // Out of threads (or memory for a stack): this connection is dropped,
                // the server goes on with the ones it has.
                log::warn!("{addr}: cannot start a thread: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }

    /// Runs the server on a background thread, returning the handle that stops it
    /// (with the methods of hybi-mio's `Server`: `local_addr`, `shutdown(grace)`,
    /// `join`).
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let addr = self.addr;
        let inner = Arc::clone(&self.inner);
        let thread = thread::Builder::new()
            .name("hybi-accept".into())
            .spawn(move || self.run())?;
        Ok(ServerHandle {
            addr,
            inner,
            thread: Some(thread),
        })
    }
}

/// Keeps a loop around [`TcpListener::accept`] going through the errors that pass, as
/// [`Server::run`] does, without spinning a core or flooding the log. Hand it every
/// accept result:
///
/// - A connection aborted or reset before it was taken, or a signal: skipped at once.
///   So are the network errors Linux reports for the connection being taken
///   (`ENETDOWN`, `EPROTO`, `ENOPROTOOPT`, `EHOSTDOWN`, `ENONET`, `EHOSTUNREACH`,
///   `EOPNOTSUPP`, `ENETUNREACH`; accept(2) says to retry them).
/// - Out of file descriptors (`EMFILE`, `ENFILE`) or of memory for sockets (`ENOBUFS`,
///   `ENOMEM`): the pending connection stays queued and the next accept would fail at
///   once, so it waits before the next try, 10 ms at first, doubling up to 200 ms while
///   the shortage lasts. A warning is logged when such an episode starts and a note
///   when accepting works again, not one per failure.
/// - `WouldBlock` or `TimedOut` (a non-blocking listener, or one with a timeout): waits
///   10 ms, logs nothing.
/// - Anything else means the listener itself is broken: returned.
///
/// ```no_run
/// use hybi_std::AcceptBackoff;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:9002")?;
/// let mut backoff = AcceptBackoff::new();
/// for accepted in listener.incoming() {
///     let Some(stream) = backoff.check(accepted)? else {
///         continue; // it already waited if waiting helps
///     };
///     std::thread::spawn(move || hybi_std::accept(stream).map(|_ws| ()));
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    /// Resource shortages in a row (0: the last accept did not fail for lack of one).
    shortages: u32,
}

/// The first wait after a resource shortage (and after `WouldBlock`).
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// The longest wait while a shortage lasts: how late a freed descriptor is noticed.
const BACKOFF_MAX: Duration = Duration::from_millis(200);

impl AcceptBackoff {
    /// No failures seen yet.
    pub fn new() -> AcceptBackoff {
        AcceptBackoff::default()
    }

    /// Takes an accept result: `Ok(Some(_))` for a connection, `Ok(None)` (after
    /// waiting, if waiting helps) when the caller should just accept again, `Err` when
    /// the error does not pass and the loop should stop.
    pub fn check<T>(&mut self, accepted: io::Result<T>) -> io::Result<Option<T>> {
        match self.assess(accepted)? {
            Ok(connection) => Ok(Some(connection)),
            Err(wait) => {
                if !wait.is_zero() {
                    thread::sleep(wait);
                }
                Ok(None)
            }
        }
    }

    /// [`check`](Self::check) without the sleep, for an event loop that must not block:
    /// `Ok(Ok(_))` for a connection, `Ok(Err(wait))` to accept again after `wait`
    /// (zero: at once; the loop arms a timer for it), `Err` when the error does not
    /// pass. Logs as `check` does.
    pub fn assess<T>(&mut self, accepted: io::Result<T>) -> io::Result<Result<T, Duration>> {
        let e = match accepted {
            Ok(connection) => {
                if self.shortages > 0 {
                    log::info!(
                        "accepting connections again after {} failed attempts",
                        self.shortages
                    );
                    self.shortages = 0;
                }
                return Ok(Ok(connection));
            }
            Err(e) => e,
        };
        match e.kind() {
            io::ErrorKind::Interrupted => return Ok(Err(Duration::ZERO)),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset => {
                log::debug!("accept: a connection ended before it was taken: {e}");
                return Ok(Err(Duration::ZERO));
            }
            _ if is_error_of_the_connection(&e) => {
                log::debug!("accept: the connection being taken failed: {e}");
                return Ok(Err(Duration::ZERO));
            }
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                return Ok(Err(BACKOFF_FIRST));
            }
            _ => {}
        }
        if !is_resource_shortage(&e) {
            return Err(e);
        }
        if self.shortages == 0 {
            log::warn!(
                "accept failed: {e}; retrying, at most {} ms apart, until it works",
                BACKOFF_MAX.as_millis()
            );
        }
        let wait = self.delay();
        self.shortages = self.shortages.saturating_add(1);
        Ok(Err(wait))
    }

    /// The wait before the next accept after `self.shortages` shortages in a row.
    fn delay(&self) -> Duration {
        let doublings = self.shortages.min(16);
        BACKOFF_FIRST
            .saturating_mul(1 << doublings)
            .min(BACKOFF_MAX)
    }
}

/// A network error Linux reports from accept for the connection it was taking
/// (accept(2), NOTES): the next connection may be fine.
fn is_error_of_the_connection(e: &io::Error) -> bool {
    // ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP,
    // ENETUNREACH.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const CODES: &[i32] = &[100, 71, 92, 112, 64, 113, 95, 101];
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const CODES: &[i32] = &[];
    e.raw_os_error().is_some_and(|c| CODES.contains(&c))
}

/// Out of file descriptors or of memory: the error says nothing about the pending
/// connection, which the next accept would fail to take just the same.
fn is_resource_shortage(e: &io::Error) -> bool {
    // EMFILE, ENFILE and ENOBUFS have no `ErrorKind` of their own.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const CODES: &[i32] = &[24, 23, 105];
    #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))]
    const CODES: &[i32] = &[24, 23, 55];
    // WSAEMFILE, WSAENOBUFS.
    #[cfg(windows)]
    const CODES: &[i32] = &[10024, 10055];
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly",
        windows
    )))]
    const CODES: &[i32] = &[24, 23];
    e.kind() == io::ErrorKind::OutOfMemory || e.raw_os_error().is_some_and(|c| CODES.contains(&c))
}

/// Controls a server started with [`Server::spawn`].
pub struct ServerHandle {
    addr: SocketAddr,
    inner: Arc<Inner>,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

/// After a shutdown's grace period, how long connections ended from outside have to
/// finish their `on_close`.
const AFTER_GRACE: Duration = Duration::from_secs(1);

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Handles to every open connection (for broadcasting, say; see also
    /// [`Room`](crate::Room)).
    pub fn peers(&self) -> Vec<Peer> {
        lock_conns(&self.inner).peers.values().cloned().collect()
    }

    /// Graceful shutdown: stops accepting, sends close 1001 ("going away") to every
    /// connection and waits up to `grace` for their closing handshakes (and their
    /// `on_close`). Connections still open then are ended (their socket shut down:
    /// `on_close` gets 1006), and it returns once they are gone, or a second later.
    /// A connection still in its opening handshake is closed with 1001 as soon as it
    /// opens. The same as hybi-mio's `Server::shutdown`.
    pub fn shutdown(mut self, grace: Duration) {
        let mut busy = self.stop();
        let deadline = Instant::now() + grace;
        // A connection busy writing when the close was sent gets it once it is free.
        while !busy.is_empty() && Instant::now() < deadline {
            self.wait_for_connections((Instant::now() + BUSY_RETRY).min(deadline));
            busy.retain(|peer| !going_away(peer));
        }
        if !self.wait_for_connections(deadline) {
            for peer in lock_conns(&self.inner).peers.values() {
                let _ = peer.shared.stream.tcp().shutdown(std::net::Shutdown::Both);
            }
            self.wait_for_connections(Instant::now() + AFTER_GRACE);
        }
    }

    /// Blocks until the accept loop ends: after an accept error that does not pass
    /// (returned), since [`shutdown`](Self::shutdown) takes the handle. For a server
    /// meant to run until the process ends; hybi-mio's `Server::join` alike.
    pub fn join(mut self) -> io::Result<()> {
        match self.thread.take().map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the accept loop panicked")),
            None => Ok(()),
        }
    }

    /// Stops accepting and sends close 1001 to every connection; returns those it
    /// could not send it to yet (busy writing).
    fn stop(&mut self) -> Vec<Peer> {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.idle.close();
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let conns = lock_conns(&self.inner);
        let peers = conns.peers.values();
        peers.filter(|peer| !going_away(peer)).cloned().collect()
    }

    /// Waits until no connection is open, or `deadline`: true if none is.
    fn wait_for_connections(&self, deadline: Instant) -> bool {
        let mut conns = lock_conns(&self.inner);
        while conns.live > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            conns = match self.inner.ended.wait_timeout(conns, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

impl Drop for ServerHandle {
    /// Dropping the handle stops accepting and sends close 1001 to every connection
    /// not busy writing, without waiting for them (see [`shutdown`](Self::shutdown)).
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}

/// Sends close 1001 to `peer` unless a write to it is under way (a client that does
/// not read would hold the shutdown for the write timeout; it is ended at the grace
/// period instead). False if it was busy.
fn going_away(peer: &Peer) -> bool {
    let close = Message::Close(crate::CloseInfo {
        code: CloseCode::GOING_AWAY,
        reason: "server shutting down".into(),
    });
    !matches!(peer.try_send(&close), Err(TrySendError::Busy))
}

/// How often a shutdown tries again to send close 1001 to a busy connection.
const BUSY_RETRY: Duration = Duration::from_millis(20);

fn lock_conns(inner: &Inner) -> MutexGuard<'_, Conns> {
    inner.conns.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection thread: serves its first connection, then those handed to it while
/// it waits.
fn connection_thread(inner: &Inner, mut stream: TcpStream, mut addr: SocketAddr) {
    loop {
        serve(inner, stream, addr);
        match inner.idle.wait() {
            Some(next) => (stream, addr) = next,
            None => return,
        }
    }
}

/// The connection's stream: the socket shared by both halves, or the TLS session over
/// it once its handshake is done (`None`, logged, if it fails).
fn transport(inner: &Inner, stream: TcpStream, addr: SocketAddr) -> Option<ServerStream> {
    #[cfg(feature = "tls")]
    if let Some(config) = &inner.tls {
        let timeout = inner.acceptor.timeout();
        return match crate::tls::TlsStream::accept(stream, Arc::clone(config), timeout) {
            Ok(tls) => Some(ServerStream::Tls(tls)),
            Err(e) => {
                let why = match &e {
                    Error::Tls(e) => e.to_string(),
                    Error::Handshake(e) => e.to_string(),
                    e => e.to_string(),
                };
                log::info!("{addr}: TLS handshake failed: {why}");
                None
            }
        };
    }
    #[cfg(not(feature = "tls"))]
    let _ = (inner, addr);
    Some(ServerStream::Plain(SharedTcp::new(stream)))
}

/// One connection: handshake, routing, then the read loop.
fn serve(inner: &Inner, stream: TcpStream, addr: SocketAddr) {
    if inner.stopping.load(Ordering::Acquire) {
        return;
    }
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(inner.write_timeout);
    let started = Instant::now();
    let Some(stream) = transport(inner, stream, addr) else {
        return;
    };
    let left = inner.acceptor.timeout().saturating_sub(started.elapsed());
    let mut factory = None;
    let accepted = inner.acceptor.accept_or_answer(
        stream,
        left,
        |req| {
            let (decision, route) = inner.routes.decide(req);
            factory = route.map(|make| make(req));
            decision
        },
        |req| {
            let websocket_at = inner.routes.contains(req.path());
            inner.pages.answer(req, websocket_at)
        },
    );
    let ws = match accepted {
        Ok(Some(ws)) => ws,
        Ok(None) => return, // a plain HTTP request, answered
        Err(e) => {
            log::debug!("{addr}: handshake failed: {e}");
            return;
        }
    };
    let Some(mut handler) = factory else { return };
    let stream_handle = match crate::stream::TryClone::try_clone(ws.get_ref()) {
        Ok(handle) => handle,
        Err(e) => {
            log::warn!("{addr}: cannot share the stream: {e}");
            return;
        }
    };
    let (mut reader, writer) = match ws.split() {
        Ok(halves) => halves,
        Err(e) => {
            log::warn!("{addr}: cannot split: {e}");
            return;
        }
    };
    // Replies sent from the callbacks of messages that arrived together go out in one
    // write; the loop below reads again after every callback.
    reader.batch_replies(true);
    let id = ConnId(inner.next_id.fetch_add(1, Ordering::Relaxed));
    let peer = Peer {
        id,
        addr,
        writer,
        shared: Arc::new(PeerShared {
            stream: stream_handle,
            write_timeout: inner.write_timeout,
            high_water: inner.high_water,
            flushing: AtomicBool::new(false),
        }),
    };
    let registered = {
        let mut conns = lock_conns(inner);
        conns.peers.insert(id, peer.clone());
        conns.live += 1;
        // A shutdown that began during the handshake has not seen this peer.
        if inner.stopping.load(Ordering::Acquire) {
            let _ = going_away(&peer);
        }
        Registered { inner, id }
    };
    handler.on_open(&peer);
    let (code, reason) = loop {
        match reader.read() {
            Ok(Message::Close(info)) => break (info.code, info.reason),
            Ok(message) => handler.on_message(&peer, message),
            Err(Error::Protocol(e)) => break (e.close_code(), e.to_string()),
            Err(Error::ConnectionClosed) => {
                let info = peer.writer.peer_close();
                break info.map_or((CloseCode::ABNORMAL, String::new()), |i| (i.code, i.reason));
            }
            Err(e) => break (CloseCode::ABNORMAL, e.to_string()),
        }
    };
    lock_conns(inner).peers.remove(&id);
    handler.on_close(&peer, code, &reason);
    // Let the closing handshake finish (the server closes TCP first).
    let _ = reader.read();
    drop((reader, peer, registered));
}

/// A connection counted among the open ones until this is dropped, even by a panic in
/// one of its callbacks (a shutdown would otherwise wait for it to its grace period).
struct Registered<'a> {
    inner: &'a Inner,
    id: ConnId,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut conns = lock_conns(self.inner);
        conns.peers.remove(&self.id);
        conns.live = conns.live.saturating_sub(1);
        drop(conns);
        self.inner.ended.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::fs::File;
    #[cfg(unix)]
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// Records every log record with the name of the thread that logged it.
    struct Recorder;

    static RECORDS: Mutex<Vec<(String, log::Level, String)>> = Mutex::new(Vec::new());

    impl log::Log for Recorder {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            let thread = thread::current().name().unwrap_or("").to_owned();
            let message = record.args().to_string();
            let mut records = RECORDS.lock().unwrap_or_else(|p| p.into_inner());
            records.push((thread, record.level(), message));
        }
        fn flush(&self) {}
    }

    fn install_logger() {
        let _ = log::set_logger(&Recorder);
        log::set_max_level(log::LevelFilter::Info);
    }

    /// How many records `thread` logged at `level` starting with `prefix`.
    fn logged(thread: &str, level: log::Level, prefix: &str) -> usize {
        let records = RECORDS.lock().unwrap_or_else(|p| p.into_inner());
        records
            .iter()
            .filter(|(t, l, m)| t == thread && *l == level && m.starts_with(prefix))
            .count()
    }

    /// Runs `f` on a thread of its own name (the records it logs are told apart by it).
    fn on_thread<R: Send + 'static>(name: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
        thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(if cfg!(windows) { 10024 } else { 24 })
    }

    #[test]
    fn a_resource_shortage_waits_longer_each_time_and_warns_once_per_episode() {
        install_logger();
        let name = "backoff-episodes";
        on_thread(name, || {
            let mut backoff = AcceptBackoff::new();
            for episode in 1..=2 {
                let start = Instant::now();
                for _ in 0..4 {
                    assert!(matches!(backoff.check::<()>(Err(emfile())), Ok(None)));
                }
                // 10 + 20 + 40 + 80 ms.
                let waited = start.elapsed();
                assert!(waited >= Duration::from_millis(150), "{waited:?}");
                assert_eq!(logged(name, log::Level::Warn, "accept failed"), episode);
                assert!(matches!(backoff.check(Ok(7)), Ok(Some(7))));
                assert_eq!(logged(name, log::Level::Info, "accepting"), episode);
            }
        });
        let mut backoff = AcceptBackoff { shortages: 40 };
        assert_eq!(backoff.delay(), BACKOFF_MAX);
        let start = Instant::now();
        assert!(matches!(backoff.check::<()>(Err(emfile())), Ok(None)));
        assert!(start.elapsed() < BACKOFF_MAX * 3, "the wait is capped");
    }

    #[test]
    fn assess_names_the_waits_without_sleeping() {
        install_logger();
        let name = "backoff-assess";
        on_thread(name, || {
            let mut backoff = AcceptBackoff::new();
            let start = Instant::now();
            let waits: Vec<Duration> = (0..6)
                .map(|_| match backoff.assess::<()>(Err(emfile())) {
                    Ok(Err(wait)) => wait,
                    other => panic!("{other:?}"),
                })
                .collect();
            let ms = |n| Duration::from_millis(n);
            assert_eq!(waits, [ms(10), ms(20), ms(40), ms(80), ms(160), ms(200)]);
            assert!(start.elapsed() < ms(9), "no sleep");
            assert_eq!(logged(name, log::Level::Warn, "accept failed"), 1);
            let aborted = backoff.assess::<()>(Err(io::ErrorKind::ConnectionAborted.into()));
            assert!(matches!(aborted, Ok(Err(wait)) if wait.is_zero()));
            assert!(matches!(backoff.assess(Ok(7)), Ok(Ok(7))));
            assert_eq!(logged(name, log::Level::Info, "accepting"), 1);
        });
    }

    #[test]
    fn errors_of_one_connection_pass_at_once_and_a_broken_listener_is_reported() {
        install_logger();
        let name = "backoff-kinds";
        on_thread(name, || {
            let mut backoff = AcceptBackoff::new();
            let start = Instant::now();
            for kind in [
                io::ErrorKind::Interrupted,
                io::ErrorKind::ConnectionAborted,
                io::ErrorKind::ConnectionReset,
            ] {
                assert!(matches!(backoff.check::<()>(Err(kind.into())), Ok(None)));
            }
            #[cfg(target_os = "linux")]
            for errno in [71, 100, 113] {
                // EPROTO, ENETDOWN, EHOSTUNREACH.
                let e = io::Error::from_raw_os_error(errno);
                assert!(matches!(backoff.check::<()>(Err(e)), Ok(None)), "{errno}");
            }
            assert!(start.elapsed() < Duration::from_millis(9), "no wait");
            let broken = backoff.check::<()>(Err(io::ErrorKind::InvalidInput.into()));
            assert!(matches!(broken, Err(e) if e.kind() == io::ErrorKind::InvalidInput));
            assert_eq!(logged(name, log::Level::Warn, ""), 0);
        });
    }

    /// Set in the child process that
    /// `out_of_file_descriptors_neither_spins_nor_floods_the_log` runs itself in.
    #[cfg(unix)]
    const EMFILE_CHILD: &str = "HYBI_STD_TEST_EMFILE_CHILD";
    #[cfg(unix)]
    const EMFILE_TEST: &str =
        "server::tests::out_of_file_descriptors_neither_spins_nor_floods_the_log";

    /// Runs out of file descriptors for real, in a child process with a low limit (the
    /// other tests of this process need theirs): an accept loop using [`AcceptBackoff`]
    /// and [`Server::run`] each meet `EMFILE` for half a second with a connection
    /// pending, then get their descriptor back.
    #[cfg(unix)]
    #[test]
    fn out_of_file_descriptors_neither_spins_nor_floods_the_log() {
        if std::env::var_os(EMFILE_CHILD).is_some() {
            emfile_child();
            return;
        }
        let out = std::process::Command::new("sh")
            .args(["-c", r#"ulimit -n 64 && exec "$0" "$@""#])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", EMFILE_TEST, "--nocapture", "--test-threads=1"])
            .env(EMFILE_CHILD, "1")
            .output()
            .unwrap();
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{output}");
        assert!(
            output.contains("1 passed"),
            "the child ran no test: {output}"
        );
    }

    /// Opens files until the descriptors run out, then closes one: the next socket
    /// takes the last descriptor.
    #[cfg(unix)]
    fn exhaust_descriptors() -> Vec<File> {
        let mut files = Vec::new();
        loop {
            match File::open("/dev/null") {
                Ok(f) => files.push(f),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(24), "{e}");
                    break;
                }
            }
        }
        assert!(files.pop().is_some(), "no descriptor at all");
        files
    }

    #[cfg(unix)]
    fn emfile_child() {
        install_logger();
        let short = Duration::from_millis(500);

        // An accept loop as the examples have it. Linux takes the descriptor when
        // accept is called, not when a connection comes: a call already waiting would
        // succeed, so the descriptors run out before the loop starts.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let files = exhaust_descriptors();
        let client = TcpStream::connect(addr).unwrap();
        let tries = Arc::new(AtomicUsize::new(0));
        let accept_loop = {
            let tries = Arc::clone(&tries);
            thread::Builder::new()
                .name("emfile-loop".into())
                .spawn(move || {
                    let mut backoff = AcceptBackoff::new();
                    loop {
                        let accepted = listener.accept();
                        tries.fetch_add(1, Ordering::SeqCst);
                        if let Some((stream, _)) = backoff.check(accepted).unwrap() {
                            return stream;
                        }
                    }
                })
                .unwrap()
        };
        thread::sleep(short);
        let tries_while_short = tries.load(Ordering::SeqCst);
        drop(files);
        let accepted = accept_loop.join().unwrap();
        // 10, 20, 40, 80, 160, 200 ms... : 5 or 6 tries in half a second, where a loop
        // that does not wait makes hundreds of thousands.
        assert!(
            (2..=8).contains(&tries_while_short),
            "{tries_while_short} accepts in {short:?}"
        );
        assert_eq!(logged("emfile-loop", log::Level::Warn, "accept failed"), 1);
        assert_eq!(logged("emfile-loop", log::Level::Info, "accepting"), 1);
        drop((accepted, client));

        // The server.
        struct Quiet;
        impl Handler for Quiet {}
        let server = Server::builder()
            .route("/", |_| Quiet)
            .bind("127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let files = exhaust_descriptors();
        let client = TcpStream::connect(addr).unwrap();
        let server = server.spawn().unwrap();
        thread::sleep(short);
        let warnings = logged("hybi-accept", log::Level::Warn, "accept failed");
        drop(files);
        // The pending connection is taken once a descriptor is free.
        let start = Instant::now();
        let url = format!("ws://{addr}/");
        let connected = crate::ClientBuilder::new(&url).connect_with_stream(client);
        assert!(connected.is_ok(), "{:?}", connected.err());
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(warnings, 1, "one warning for the episode");
        assert_eq!(logged("hybi-accept", log::Level::Info, "accepting"), 1);
        drop(connected);
        server.shutdown(Duration::from_secs(1));
    }
}
