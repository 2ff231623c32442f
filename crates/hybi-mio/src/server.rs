//! Building and running the event loops: [`ServerBuilder`], [`Server`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use hybi::Config;
use hybi::handshake::{Decision, Limits, UpgradeRequest};
use socket2::{Domain, Protocol, Socket, Type};

use crate::app::{App, SlowPeer};
use crate::balance::Loads;
use crate::client::{ClientOptions, ConnectError, PendingConnect};
use crate::handler::Handler;
use crate::mailbox::{Item, Target};
use crate::sender::Sender;
use crate::worker::{Inbox, Order, Team, Worker};

/// Builds a [`Server`]: routes, hooks, limits, number of workers.
pub struct ServerBuilder {
    app: App,
    workers: usize,
    max_connections: usize,
    reuse_port: bool,
}

impl Default for ServerBuilder {
    fn default() -> ServerBuilder {
        ServerBuilder::new()
    }
}

impl ServerBuilder {
    /// Defaults: one worker per available core, no routes (every path gets 404),
    /// engine settings [`default_config`](crate::default_config), 10 s handshake
    /// timeout, 1 MiB high-water mark with [`SlowPeer::Pause`], 100,000 connections.
    pub fn new() -> ServerBuilder {
        ServerBuilder {
            app: App::default(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_connections: 100_000,
            reuse_port: false,
        }
    }

    /// The number of event loops (threads), each with its own connections. They
    /// share one listening socket: whichever loop is ready first accepts, and hands
    /// the connection to the loop that holds fewest (itself, unless another holds
    /// fewer), so the loops hold equal shares however the connections arrive.
    pub fn workers(mut self, n: usize) -> ServerBuilder {
        self.workers = n.max(1);
        self
    }

    /// Opt-in: bind with `SO_REUSEPORT`, one listening socket per worker, which the
    /// kernel spreads connections across (by a hash of their addresses; the workers
    /// still hand connections to whichever holds fewest). Off by
    /// default, and then [`bind`](Self::bind) fails with
    /// [`AddrInUse`](io::ErrorKind::AddrInUse) if another socket holds the address.
    ///
    /// With it on, any other socket of the same user that sets `SO_REUSEPORT` can bind
    /// the same address too: a second process (or [`Server`]) then shares the port,
    /// and each client reaches only one of them. Use it only to run several processes
    /// on one port on purpose. Binding fails with
    /// [`Unsupported`](io::ErrorKind::Unsupported) where the option does not exist.
    pub fn reuse_port(mut self, on: bool) -> ServerBuilder {
        self.reuse_port = on;
        self
    }

    /// Serves WebSockets at `path` (exact match, without the query): `factory` makes
    /// the handler of each connection from its request.
    pub fn route<H, F>(mut self, path: &str, factory: F) -> ServerBuilder
    where
        H: Handler,
        F: Fn(&UpgradeRequest) -> H + Send + Sync + 'static,
    {
        self.app.routes.insert(
            path,
            Box::new(move |req| Box::new(factory(req)) as Box<dyn Handler>),
        );
        self
    }

    /// Serves a plain HTTP page at `path` to requests that are not WebSocket upgrades
    /// (a browser fetching the page that then opens a WebSocket, say). The page is
    /// sent with `Connection: close`.
    pub fn page(
        mut self,
        path: &str,
        content_type: &str,
        body: impl Into<Arc<[u8]>>,
    ) -> ServerBuilder {
        self.app.pages.insert(path, content_type, body.into());
        self
    }

    /// Serves every path that has no route of its own.
    pub fn fallback<H, F>(mut self, factory: F) -> ServerBuilder
    where
        H: Handler,
        F: Fn(&UpgradeRequest) -> H + Send + Sync + 'static,
    {
        self.app.routes.set_fallback(Box::new(move |req| {
            Box::new(factory(req)) as Box<dyn Handler>
        }));
        self
    }

    /// A hook that sees every request to a served path before the upgrade and decides:
    /// reject (status, headers, body) or accept (subprotocol, extra headers). A path's
    /// own hook ([`should_upgrade_at`](Self::should_upgrade_at)) runs first.
    pub fn should_upgrade(
        mut self,
        hook: impl Fn(&UpgradeRequest) -> Decision + Send + Sync + 'static,
    ) -> ServerBuilder {
        self.app.routes.set_hook(Box::new(hook));
        self
    }

    /// A hook for upgrade requests to `path` alone, run before the global
    /// [`should_upgrade`](Self::should_upgrade) hook: its rejection is the answer; if
    /// it accepts, the global hook may still reject, and otherwise the path hook's
    /// subprotocol and headers are used.
    ///
    /// `path` needs no [`route`](Self::route): a hook alone rejects requests to a path
    /// without a dummy handler. If such a hook accepts, the request goes on to the
    /// [`fallback`](Self::fallback), or is answered 404 without one (the same rule as
    /// hybi-std's [`ServerBuilder::should_upgrade_at`](hybi_std::ServerBuilder::should_upgrade_at);
    /// see [`Routes::decide`](hybi_std::adapter::Routes::decide)).
    ///
    /// ```no_run
    /// use hybi_mio::{Decision, Server};
    /// # struct Echo; impl hybi_mio::Handler for Echo {}
    /// let server = Server::builder()
    ///     .fallback(|_req| Echo)
    ///     .should_upgrade_at("/admin", |_req| Decision::reject(403, "not here"))
    ///     .bind("127.0.0.1:9003")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn should_upgrade_at(
        mut self,
        path: &str,
        hook: impl Fn(&UpgradeRequest) -> Decision + Send + Sync + 'static,
    ) -> ServerBuilder {
        self.app.routes.set_hook_at(path, Box::new(hook));
        self
    }

    /// The engine's settings for every connection: size limits, keepalive, idle and
    /// close timeouts, delivery mode. Start from [`default_config`](crate::default_config)
    /// to keep hybi-mio's larger (pooled) receive buffer.
    pub fn config(mut self, config: Config) -> ServerBuilder {
        self.app.config = config;
        self
    }

    /// Limits on the size of upgrade requests.
    pub fn limits(mut self, limits: Limits) -> ServerBuilder {
        self.app.limits = limits;
        self
    }

    /// Serves every connection over TLS with `config` (the `tls` feature): routes
    /// become `wss://`, pages `https://`. The TLS handshake runs on the worker's loop
    /// like the rest (no extra thread), within the
    /// [`handshake_timeout`](Self::handshake_timeout). A client that speaks plain HTTP
    /// is answered `400 Bad Request` in plain text and dropped; one whose handshake
    /// fails (garbage, an alert, no common version) is dropped; both are logged at
    /// info level. A config from
    /// `rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))`
    /// needs no process-wide provider.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use hybi_mio::rustls::{self, pki_types::{CertificateDer, PrivateKeyDer}};
    /// # fn demo(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<(), Box<dyn std::error::Error>> {
    /// let config = rustls::ServerConfig::builder_with_provider(Arc::new(
    ///     rustls::crypto::ring::default_provider(),
    /// ))
    /// .with_safe_default_protocol_versions()?
    /// .with_no_client_auth()
    /// .with_single_cert(chain, key)?;
    /// let server = hybi_mio::Server::builder()
    ///     .tls(Arc::new(config))
    ///     .route("/echo", |_req| Echo)
    ///     .bind("0.0.0.0:443")?;
    /// # Ok(()) }
    /// # struct Echo; impl hybi_mio::Handler for Echo {}
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> ServerBuilder {
        self.app.tls = Some(config);
        self
    }

    /// A client that has not completed its upgrade request (and, over TLS, its TLS
    /// handshake before it) after this is dropped.
    pub fn handshake_timeout(mut self, timeout: Duration) -> ServerBuilder {
        self.app.handshake_timeout = timeout;
        self
    }

    /// Queued output per connection above which [`SlowPeer`] applies.
    pub fn high_water(mut self, bytes: usize) -> ServerBuilder {
        self.app.high_water = bytes;
        self
    }

    /// What to do with a slow reader.
    pub fn slow_peer(mut self, policy: SlowPeer) -> ServerBuilder {
        self.app.slow_peer = policy;
        self
    }

    /// Connections accepted at most (over all workers); more are closed at once.
    pub fn max_connections(mut self, n: usize) -> ServerBuilder {
        self.max_connections = n;
        self
    }

    /// Binds `addr` and starts the workers. Fails with
    /// [`AddrInUse`](io::ErrorKind::AddrInUse) if another socket (of this process or
    /// another) listens on it, unless both it and this server set
    /// [`reuse_port`](Self::reuse_port).
    pub fn bind(self, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let first = if self.reuse_port {
            let addr = addr
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
            reuse_port_listener(addr)?
        } else {
            hybi_std::adapter::listen(addr)?
        };
        let actual = first.local_addr()?;
        let mut listeners = Vec::with_capacity(self.workers);
        for _ in 1..self.workers {
            // Each worker registers a descriptor of its own with its own poll.
            let next = if self.reuse_port {
                reuse_port_listener(actual)?
            } else {
                first.try_clone()?
            };
            listeners.push(next);
        }
        listeners.push(first);
        let mut ready = Vec::with_capacity(listeners.len());
        for listener in listeners {
            listener.set_nonblocking(true)?;
            ready.push(Some(mio::net::TcpListener::from_std(listener)));
        }
        self.start_with(ready, Some(actual))
    }

    /// Starts the workers without a listener: an event loop for client connections
    /// ([`Server::connect`]).
    pub fn start(self) -> io::Result<Server> {
        let none = (0..self.workers).map(|_| None).collect();
        self.start_with(none, None)
    }

    fn start_with(
        self,
        listeners: Vec<Option<mio::net::TcpListener>>,
        addr: Option<SocketAddr>,
    ) -> io::Result<Server> {
        let app = Arc::new(self.app);
        let mut workers = Vec::with_capacity(listeners.len());
        for listener in listeners {
            workers.push(Worker::new(
                Arc::clone(&app),
                listener,
                self.max_connections,
            )?);
        }
        let mailboxes: Arc<[Arc<Inbox>]> = workers.iter().map(Worker::mailbox).collect();
        let loads = Arc::new(Loads::new(workers.len()));
        let mut handles = Vec::with_capacity(workers.len());
        for (index, worker) in workers.into_iter().enumerate() {
            let worker = worker.join(Team {
                index,
                loads: Arc::clone(&loads),
                mailboxes: Arc::clone(&mailboxes),
            });
            let mailbox = worker.mailbox();
            let thread = std::thread::Builder::new()
                .name(format!("hybi-mio-{index}"))
                .spawn(move || worker.run())?;
            handles.push(WorkerHandle {
                mailbox,
                thread: Some(thread),
            });
        }
        Ok(Server {
            workers: handles,
            addr,
            next: AtomicUsize::new(0),
        })
    }
}

/// A listening socket with `SO_REUSEPORT` (and, as std and
/// [`listen`](hybi_std::adapter::listen) set it, `SO_REUSEADDR` on Unix) and the same
/// 4,096 backlog.
fn reuse_port_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    set_reuse_port(&socket)?;
    socket.bind(&addr.into())?;
    socket.listen(hybi_std::adapter::BACKLOG)?;
    Ok(socket.into())
}

#[cfg(all(
    unix,
    not(any(
        target_os = "solaris",
        target_os = "illumos",
        target_os = "cygwin",
        target_os = "nuttx"
    ))
))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(
    unix,
    not(any(
        target_os = "solaris",
        target_os = "illumos",
        target_os = "cygwin",
        target_os = "nuttx"
    ))
)))]
fn set_reuse_port(_: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is not available on this platform",
    ))
}

struct WorkerHandle {
    mailbox: Arc<Inbox>,
    thread: Option<JoinHandle<()>>,
}

/// Running event loops: a WebSocket server (if bound) and a place for client
/// connections.
///
/// ```no_run
/// use hybi_mio::{Context, Handler, Server};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
///         let _ = ctx.send_text(text);
///     }
///     fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
///         let _ = ctx.send_binary(data);
///     }
/// }
///
/// let server = Server::builder().route("/echo", |_req| Echo).bind("127.0.0.1:9003")?;
/// println!("listening on {}", server.local_addr());
/// server.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Server {
    workers: Vec<WorkerHandle>,
    addr: Option<SocketAddr>,
    next: AtomicUsize,
}

impl Server {
    /// A builder.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// The address the server listens on (the port the system chose for port 0). A
    /// loop started with [`ServerBuilder::start`] listens nowhere: its address is the
    /// unspecified `0.0.0.0:0`, as for an unbound socket. The same as hybi-std's
    /// `Server::local_addr` and `ServerHandle::local_addr`.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Opens a client connection to `url` on one of the loops, with `handler`'s
    /// callbacks. Returns at once with the connection's [`Sender`]; `on_open` follows
    /// when the handshake completes, or [`Handler::on_connect_error`] (by default
    /// `on_close` with 1006 and the reason) if it fails. What the `Sender` sends
    /// meanwhile is held and delivered after `on_open` (see
    /// [`Sender`](Sender#before-the-connection-opens)). For one client without a
    /// server, see [`connect`](crate::connect).
    pub fn connect(&self, url: &str, handler: impl Handler) -> Result<Sender, ConnectError> {
        self.connect_with(ClientOptions::new(url), handler)
    }

    /// [`connect`](Self::connect) with subprotocols, headers and engine settings.
    pub fn connect_with(
        &self,
        options: ClientOptions,
        handler: impl Handler,
    ) -> Result<Sender, ConnectError> {
        let (socket, addr, handshake, tls) = options.start()?;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let mailbox = &self.workers[i].mailbox;
        let serial = mailbox.new_serial();
        let token_cell = Arc::new(OnceLock::new());
        let pending = PendingConnect {
            socket,
            tls,
            addr,
            handshake,
            config: options.config,
            handler: Box::new(handler),
            serial,
            token_cell: Arc::clone(&token_cell),
            handshake_timeout: options.handshake_timeout,
        };
        match mailbox.post(Item::Order(Order::Connect(Box::new(pending)))) {
            Ok(()) => Ok(Sender {
                letterbox: Arc::clone(mailbox) as _,
                target: Target::Pending(token_cell),
                serial,
            }),
            Err(_) => Err(ConnectError::Stopped),
        }
    }

    /// Graceful shutdown: stop accepting, send close 1001 to every connection, wait up
    /// to `grace` for the closing handshakes, then drop what is left and stop the
    /// loops. Returns when every worker has stopped.
    pub fn shutdown(mut self, grace: Duration) {
        self.stop(grace);
    }

    fn stop(&mut self, grace: Duration) {
        for w in &self.workers {
            let _ = w.mailbox.post(Item::Order(Order::Shutdown { grace }));
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Blocks until the loops stop: for a server meant to run until the process ends
    /// (the loops stop only by [`shutdown`](Self::shutdown), which takes the handle).
    /// An error if a loop panicked. hybi-std's `ServerHandle::join` alike.
    pub fn join(mut self) -> io::Result<()> {
        let mut result = Ok(());
        for w in &mut self.workers {
            let panicked = w.thread.take().is_some_and(|t| t.join().is_err());
            if panicked {
                result = Err(io::Error::other("an event loop panicked"));
            }
        }
        result
    }

    /// Serves until the loops stop: [`join`](Self::join), named as hybi-std's
    /// `Server::run`, which serves on the calling thread, so that a `main` reads the
    /// same with either adapter (the loops started at [`ServerBuilder::bind`]).
    pub fn run(self) -> io::Result<()> {
        self.join()
    }
}

impl Drop for Server {
    /// Dropping the handle shuts the loops down with a one-second grace period.
    fn drop(&mut self) {
        if self.workers.iter().any(|w| w.thread.is_some()) {
            self.stop(Duration::from_secs(1));
        }
    }
}
