//! Client connections on the event loop: [`ClientOptions`], what
//! [`Server::connect`](crate::Server::connect) hands a worker, and [`Client`], one
//! connection on a loop of its own ([`connect`]).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use hybi::Config;
use hybi::handshake::{ClientHandshake, Limits};
use hybi_std::adapter::{self, Target};

use crate::app::App;
use crate::handler::{ConnInfo, Context, Handler};
use crate::mailbox::{self, Item, Letterbox};
use crate::sender::{ConnId, Sender};
use crate::tls::Tls;
use crate::worker::{Inbox, Order, Worker};

/// Why a client connection could not be started ([`Server::connect`] returns it), or
/// could not be opened ([`Handler::on_connect_error`] hears it).
///
/// [`Server::connect`]: crate::Server::connect
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not `ws[s]://host[:port][/path][?query]` (or is `wss://` without
    /// the `tls` feature).
    Url(String),
    /// The host did not resolve.
    Dns(std::io::Error),
    /// The socket could not be created, the connect not started, or it failed
    /// (refused, unreachable).
    Connect(std::io::Error),
    /// The request could not be built (a bad header, say).
    Request(hybi::handshake::InvalidRequest),
    /// TLS failed (`wss://`): the server's certificate (expired, not valid for the
    /// URL's host, not signed by a trusted root: [`TlsError::certificate`] says
    /// which), an alert, a server that answered in plain HTTP
    /// ([`TlsError::NotTls`]), a host that is no TLS server name, a config rustls
    /// refused.
    ///
    /// [`TlsError::certificate`]: hybi_std::TlsError::certificate
    /// [`TlsError::NotTls`]: hybi_std::TlsError::NotTls
    #[cfg(feature = "tls")]
    Tls(hybi_std::TlsError),
    /// The server's answer to the upgrade request was not a valid 101.
    Response(hybi::handshake::ResponseError),
    /// The server closed the connection before the handshake was done.
    Closed,
    /// The socket failed during the handshake, or ([`connect`]) the client's event
    /// loop could not be started (its poll, or its thread).
    Io(std::io::Error),
    /// The handshake (TCP connect, TLS, upgrade) was not done within the
    /// [`handshake_timeout`](ClientOptions::handshake_timeout).
    Timeout,
    /// The event loop has stopped.
    Stopped,
}

impl ConnectError {
    /// The server's answer when it refused the upgrade (another status than 101):
    /// its [`status`](hybi::handshake::Rejected::status),
    /// [`reason`](hybi::handshake::Rejected::reason),
    /// [`headers`](hybi::handshake::Rejected::headers) and
    /// [`body`](hybi::handshake::Rejected::body) (its first 4 KiB, read within the
    /// handshake timeout), as hybi-std's and hybi-tokio's
    /// [`Error::rejection`](hybi_std::Error::rejection) give it.
    pub fn rejection(&self) -> Option<&hybi::handshake::Rejected> {
        match self {
            ConnectError::Response(hybi::handshake::ResponseError::Rejected(r)) => Some(r),
            _ => None,
        }
    }

    /// The error of a failed read or write during the handshake: a TLS failure comes
    /// out of the I/O error that carries it.
    pub(crate) fn from_io(
        e: std::io::Error,
        otherwise: fn(std::io::Error) -> ConnectError,
    ) -> ConnectError {
        #[cfg(feature = "tls")]
        let e = match crate::tls::tls_error(e) {
            Ok(tls) => return ConnectError::Tls(tls),
            Err(e) => e,
        };
        otherwise(e)
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Url(why) => write!(f, "bad URL: {why}"),
            ConnectError::Dns(e) => write!(f, "DNS lookup failed: {e}"),
            ConnectError::Connect(e) => write!(f, "connect failed: {e}"),
            ConnectError::Request(e) => write!(f, "bad request: {e}"),
            #[cfg(feature = "tls")]
            ConnectError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            ConnectError::Response(e) => write!(f, "handshake failed: {e}"),
            ConnectError::Closed => f.write_str("connection closed during the handshake"),
            ConnectError::Io(e) => write!(f, "handshake failed: {e}"),
            ConnectError::Timeout => f.write_str("handshake timed out"),
            ConnectError::Stopped => f.write_str("the event loop has stopped"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Display has said what the wrapped error says (hybi's convention, see
        // hybi::error): its cause comes next.
        match self {
            ConnectError::Dns(e) | ConnectError::Connect(e) | ConnectError::Io(e) => {
                std::error::Error::source(e)
            }
            ConnectError::Request(e) => std::error::Error::source(e),
            #[cfg(feature = "tls")]
            ConnectError::Tls(e) => std::error::Error::source(e),
            ConnectError::Response(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

/// Settings for a client connection made with [`connect_with`] or
/// [`Server::connect_with`](crate::Server::connect_with).
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub(crate) url: String,
    pub(crate) protocols: Vec<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) config: Config,
    pub(crate) handshake_timeout: Duration,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientOptions {
    /// Connect to `url`: `ws://host[:port][/path][?query]`, or `wss://...` for TLS
    /// (the `tls` feature).
    pub fn new(url: &str) -> ClientOptions {
        ClientOptions {
            url: url.to_owned(),
            protocols: Vec::new(),
            headers: Vec::new(),
            config: crate::default_config(),
            handshake_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The TLS config for a `wss://` URL (the `tls` feature): its roots (a private
    /// CA, say), client certificate, ALPN, versions. Without one, `wss://` uses
    /// [`default_client_config`](crate::default_client_config) (Mozilla's roots). The
    /// server's certificate is checked against the URL's host. `ws://` URLs ignore it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use hybi_mio::rustls::{self, RootCertStore};
    /// # fn demo(my_ca: rustls::pki_types::CertificateDer<'static>) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut roots = RootCertStore::empty();
    /// roots.add(my_ca)?;
    /// let config = rustls::ClientConfig::builder_with_provider(Arc::new(
    ///     rustls::crypto::ring::default_provider(),
    /// ))
    /// .with_safe_default_protocol_versions()?
    /// .with_root_certificates(roots)
    /// .with_no_client_auth();
    /// let options = hybi_mio::ClientOptions::new("wss://example.test/chat")
    ///     .tls_config(Arc::new(config));
    /// # let _ = options; Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> ClientOptions {
        self.tls = Some(config);
        self
    }

    /// Offers a subprotocol.
    pub fn protocol(mut self, name: &str) -> ClientOptions {
        self.protocols.push(name.to_owned());
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> ClientOptions {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The engine's settings for the connection (default:
    /// [`default_config`](crate::default_config); start from it to keep its pooled
    /// 256 KiB receive buffer).
    pub fn config(mut self, config: Config) -> ClientOptions {
        self.config = config;
        self
    }

    /// Gives up if the connection is not open after this long (default 10 s): the TCP
    /// connect, the TLS handshake and the upgrade together.
    pub fn handshake_timeout(mut self, timeout: Duration) -> ClientOptions {
        self.handshake_timeout = timeout;
        self
    }

    /// Resolves the URL, makes its TLS session (`wss://`) and starts the TCP connect
    /// (non-blocking) to its first address.
    pub(crate) fn start(&self) -> Result<Started, ConnectError> {
        let target = Target::parse(&self.url).map_err(|e| ConnectError::Url(e.0))?;
        let tls = self.tls_session(&target)?;
        let addrs = target.resolve().map_err(ConnectError::Dns)?;
        let Some(&addr) = addrs.first() else {
            return Err(ConnectError::Dns(std::io::ErrorKind::NotFound.into()));
        };
        let mut request = target.request(&self.protocols, &self.headers, Limits::default());
        if let Some(deflate) = self.config.deflate {
            request = request.deflate(deflate);
        }
        let handshake = ClientHandshake::new(&request, &mut adapter::mask_rng())
            .map_err(ConnectError::Request)?;
        let socket = mio::net::TcpStream::connect(addr).map_err(ConnectError::Connect)?;
        let _ = socket.set_nodelay(true);
        Ok((socket, addr, handshake, tls))
    }

    #[cfg(feature = "tls")]
    fn tls_session(&self, target: &Target) -> Result<Option<Box<Tls>>, ConnectError> {
        if !target.secure {
            return Ok(None);
        }
        let config = match &self.tls {
            Some(config) => Arc::clone(config),
            None => hybi_std::default_client_config().map_err(ConnectError::Tls)?,
        };
        Tls::client(config, &target.host)
            .map(Some)
            .map_err(ConnectError::Tls)
    }

    #[cfg(not(feature = "tls"))]
    fn tls_session(&self, target: &Target) -> Result<Option<Box<Tls>>, ConnectError> {
        if target.secure {
            return Err(ConnectError::Url(format!(
                "{}: wss:// needs hybi-mio's `tls` feature",
                self.url
            )));
        }
        Ok(None)
    }
}

/// What [`ClientOptions::start`] makes: the socket, the address, the handshake, the
/// TLS session.
pub(crate) type Started = (
    mio::net::TcpStream,
    SocketAddr,
    ClientHandshake,
    Option<Box<Tls>>,
);

/// A client connection handed to a worker to register.
pub(crate) struct PendingConnect {
    pub(crate) socket: mio::net::TcpStream,
    pub(crate) tls: Option<Box<Tls>>,
    pub(crate) addr: SocketAddr,
    pub(crate) handshake: ClientHandshake,
    pub(crate) config: Config,
    pub(crate) handler: Box<dyn Handler>,
    pub(crate) serial: u64,
    /// Where the worker puts the connection's slot, for its [`Sender`](crate::Sender).
    pub(crate) token_cell: Arc<OnceLock<usize>>,
    pub(crate) handshake_timeout: Duration,
}

impl PendingConnect {
    /// The connection will never start: its handler hears why
    /// ([`Handler::on_connect_error`]), with a context whose sends are refused.
    pub(crate) fn fail(mut self, letterbox: Arc<dyn Letterbox>, error: ConnectError) {
        let info = ConnInfo {
            letterbox,
            token: usize::MAX,
            serial: self.serial,
            addr: self.addr,
            limit: 0,
        };
        self.handler
            .on_connect_error(&mut Context::closed(&info), error);
    }
}

/// Opens a client connection to `url` (`ws://host[:port][/path][?query]`, or
/// `wss://` with the `tls` feature) on an event loop of its own, with `handler`'s
/// callbacks: no [`Server`](crate::Server) to build first. See [`Client`].
///
/// ```no_run
/// use hybi_mio::{Context, Handler};
///
/// struct Hello;
/// impl Handler for Hello {
///     fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
///         println!("{text}");
///         let _ = ctx.close(hybi_mio::CloseCode::NORMAL, "done");
///     }
/// }
///
/// let client = hybi_mio::connect("ws://127.0.0.1:9003/echo", Hello)?;
/// // Held until the connection opens, then sent.
/// client.sender().send_text("hello")?;
/// client.join(); // until the connection is over
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn connect(url: &str, handler: impl Handler) -> Result<Client, ConnectError> {
    Client::connect(url, handler)
}

/// [`connect`] with subprotocols, headers, engine settings, a handshake timeout, a
/// TLS config.
pub fn connect_with(options: ClientOptions, handler: impl Handler) -> Result<Client, ConnectError> {
    Client::connect_with(options, handler)
}

/// One client connection running on an event loop (a thread) of its own, made with
/// [`connect`] or [`connect_with`]: the same [`Handler`] callbacks, [`Sender`] and
/// [`Completion`](crate::Completion)s as a connection on a [`Server`](crate::Server)'s
/// loops, for a program that only needs a client (for many client connections on a
/// few threads, use [`Server::connect`](crate::Server::connect) on
/// `Server::builder().start()` instead).
///
/// The call returns once the TCP connect has started; `on_open` follows when the
/// handshake completes, or [`Handler::on_connect_error`] if it fails. Sends made
/// before that are held and delivered after `on_open` (see
/// [`Sender`](Sender#before-the-connection-opens)). The loop uses the defaults of a
/// [`ServerBuilder`](crate::ServerBuilder) for what `ClientOptions` does not set: a
/// 1 MiB high-water mark with [`SlowPeer::Pause`](crate::SlowPeer::Pause).
///
/// The loop stops, and its thread ends, once the connection is over: after
/// `on_close` (or `on_connect_error`) and the orderly end of the TCP connection
/// (at most a few seconds more). [`join`](Self::join) waits for that;
/// [`shutdown`](Self::shutdown) ends the connection first, as
/// [`Server::shutdown`](crate::Server::shutdown) does. Dropping the `Client` shuts
/// it down with a one-second grace period, like dropping a `Server`: keep it (or
/// `join` it) for as long as the connection should live. Its [`Sender`]s need not
/// be dropped first; once the loop has stopped, their sends fail with
/// [`SendFailure::Gone`](crate::SendFailure::Gone).
pub struct Client {
    sender: Sender,
    mailbox: Arc<Inbox>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.sender.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl Client {
    /// The same as [`connect`].
    pub fn connect(url: &str, handler: impl Handler) -> Result<Client, ConnectError> {
        Client::connect_with(ClientOptions::new(url), handler)
    }

    /// The same as [`connect_with`].
    pub fn connect_with(
        options: ClientOptions,
        handler: impl Handler,
    ) -> Result<Client, ConnectError> {
        let worker = Worker::new(Arc::new(App::default()), None, 1)
            .map_err(ConnectError::Io)?
            .until_idle();
        let mailbox = worker.mailbox();
        let (pending, sender) = options.pending(&mailbox, Box::new(handler))?;
        // Posted before the loop runs: its first turn registers the connection, so
        // the loop does not find itself idle before it has one.
        if mailbox.post(Item::Order(Order::Connect(pending))).is_err() {
            return Err(ConnectError::Stopped);
        }
        let thread = std::thread::Builder::new()
            .name("hybi-mio-client".to_owned())
            .spawn(move || worker.run())
            .map_err(ConnectError::Io)?;
        Ok(Client {
            sender,
            mailbox,
            thread: Some(thread),
        })
    }

    /// The connection's [`Sender`] (clone it to keep one, or to hand it to another
    /// thread).
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.sender.id()
    }

    /// True once the loop has stopped: the connection is over, and its handler has
    /// heard so.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Blocks until the connection is over (closed by either side, failed, or never
    /// opened) and the loop has stopped.
    pub fn join(mut self) {
        self.wait();
    }

    /// Ends the connection as [`Server::shutdown`](crate::Server::shutdown) does: a
    /// close with 1001 if it is open (a connection still connecting is dropped, and
    /// its handler hears [`ConnectError::Stopped`]), up to `grace` for the closing
    /// handshake, then the loop stops. Returns when it has.
    pub fn shutdown(mut self, grace: Duration) {
        self.stop(grace);
    }

    fn stop(&mut self, grace: Duration) {
        let _ = self.mailbox.post(Item::Order(Order::Shutdown { grace }));
        self.wait();
    }

    /// Waits for the loop's thread, unless this is that thread (a handler that held
    /// its own `Client`): then the loop stops after the current turn by itself.
    fn wait(&mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Client {
    /// Dropping the handle shuts the connection down with a one-second grace period.
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop(Duration::from_secs(1));
        }
    }
}

impl ClientOptions {
    /// Starts the connect and makes what a worker (the one `mailbox` belongs to)
    /// registers, and the connection's [`Sender`].
    pub(crate) fn pending(
        self,
        mailbox: &Arc<Inbox>,
        handler: Box<dyn Handler>,
    ) -> Result<(Box<PendingConnect>, Sender), ConnectError> {
        let (socket, addr, handshake, tls) = self.start()?;
        let serial = mailbox.new_serial();
        let token_cell = Arc::new(OnceLock::new());
        let sender = Sender {
            letterbox: Arc::clone(mailbox) as Arc<dyn Letterbox>,
            target: mailbox::Target::Pending(Arc::clone(&token_cell)),
            serial,
        };
        let pending = PendingConnect {
            socket,
            tls,
            addr,
            handshake,
            config: self.config,
            handler,
            serial,
            token_cell,
            handshake_timeout: self.handshake_timeout,
        };
        Ok((Box::new(pending), sender))
    }
}
