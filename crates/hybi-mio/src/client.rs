//! Client connections on the event loop: [`ClientOptions`] and what
//! [`Server::connect`](crate::Server::connect) posts to a worker.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hybi::handshake::{ClientHandshake, ClientRequest};
use hybi::{CloseCode, Config, RandomSource};
use rand::{RngCore, SeedableRng};

use crate::handler::{ConnInfo, Context, Handler};
use crate::sender::WorkerShared;

/// A random source for mask and handshake keys: ChaCha12, seeded from the OS.
pub(crate) fn mask_rng() -> impl RandomSource + 'static {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    move |buf: &mut [u8]| rng.fill_bytes(buf)
}

/// Why a client connection could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not `ws://host[:port][/path][?query]`.
    Url(String),
    /// The host did not resolve.
    Dns(std::io::Error),
    /// The socket could not be created or the connect not started.
    Connect(std::io::Error),
    /// The request could not be built (a bad header, say).
    Request(hybi::handshake::InvalidRequest),
    /// The event loop has stopped.
    Stopped,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Url(why) => write!(f, "bad URL: {why}"),
            ConnectError::Dns(e) => write!(f, "DNS lookup failed: {e}"),
            ConnectError::Connect(e) => write!(f, "connect failed: {e}"),
            ConnectError::Request(e) => write!(f, "bad request: {e}"),
            ConnectError::Stopped => f.write_str("the event loop has stopped"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Settings for a client connection made with
/// [`Server::connect_with`](crate::Server::connect_with).
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub(crate) url: String,
    pub(crate) protocols: Vec<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) config: Config,
    pub(crate) handshake_timeout: Duration,
}

impl ClientOptions {
    /// Connect to `url` (`ws://host[:port][/path][?query]`).
    pub fn new(url: &str) -> ClientOptions {
        ClientOptions {
            url: url.to_owned(),
            protocols: Vec::new(),
            headers: Vec::new(),
            config: crate::default_config(),
            handshake_timeout: Duration::from_secs(10),
        }
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

    /// Gives up if the connection is not open after this long (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> ClientOptions {
        self.handshake_timeout = timeout;
        self
    }

    /// Resolves the URL and starts the TCP connect (non-blocking).
    pub(crate) fn start(
        &self,
    ) -> Result<(mio::net::TcpStream, SocketAddr, ClientHandshake), ConnectError> {
        let url = url::Url::parse(&self.url)
            .map_err(|e| ConnectError::Url(format!("{}: {e}", self.url)))?;
        if url.scheme() != "ws" {
            return Err(ConnectError::Url(format!(
                "{}: only ws:// is supported on the event loop",
                self.url
            )));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(ConnectError::Url(format!("{}: no host", self.url))),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(ConnectError::Dns)?
            .next()
            .ok_or_else(|| {
                ConnectError::Dns(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} has no address"),
                ))
            })?;
        let mut request = ClientRequest::new(&host, Some(port), false).path(&path);
        for p in &self.protocols {
            request = request.protocol(p);
        }
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        let mut rng = mask_rng();
        let handshake = ClientHandshake::new(&request, &mut rng).map_err(ConnectError::Request)?;
        let socket = mio::net::TcpStream::connect(addr).map_err(ConnectError::Connect)?;
        let _ = socket.set_nodelay(true);
        Ok((socket, addr, handshake))
    }
}

/// A client connection handed to a worker to register.
pub(crate) struct PendingConnect {
    pub(crate) socket: mio::net::TcpStream,
    pub(crate) addr: SocketAddr,
    pub(crate) handshake: ClientHandshake,
    pub(crate) config: Config,
    pub(crate) handler: Box<dyn Handler>,
    pub(crate) serial: u64,
    pub(crate) token_cell: Arc<OnceLock<usize>>,
    pub(crate) handshake_timeout: Duration,
}

impl PendingConnect {
    /// The connection will never start: tell its handler.
    pub(crate) fn fail(self, shared: &Arc<WorkerShared>, why: &str) {
        let mut handler = self.handler;
        report_failure(&mut *handler, shared, self.addr, self.serial, why);
    }
}

/// Reports a client connection that failed before it had a slot on the loop. The
/// context it hands out is closed: sends from the callback are refused.
pub(crate) fn report_failure(
    handler: &mut dyn Handler,
    shared: &Arc<WorkerShared>,
    addr: SocketAddr,
    serial: u64,
    why: &str,
) {
    let mut placeholder = hybi::Connection::server(Config::default());
    let _ = placeholder.close(CloseCode::NORMAL, "");
    let info = ConnInfo {
        shared: Arc::clone(shared),
        token: usize::MAX,
        serial,
        addr,
        limit: 0,
    };
    let mut ctx = Context {
        out: placeholder.outbox(),
        info: &info,
    };
    handler.on_close(&mut ctx, CloseCode::ABNORMAL, why);
}
