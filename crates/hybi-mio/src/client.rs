//! Client connections on the event loop: [`ClientOptions`] and what
//! [`Server::connect`](crate::Server::connect) hands a worker.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hybi::handshake::{ClientHandshake, Limits};
use hybi::{CloseCode, Config};
use hybi_std::adapter::{self, Target};

use crate::handler::{ConnInfo, Context, Handler};
use crate::mailbox::Letterbox;

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

    /// Resolves the URL and starts the TCP connect (non-blocking) to its first address.
    pub(crate) fn start(
        &self,
    ) -> Result<(mio::net::TcpStream, SocketAddr, ClientHandshake), ConnectError> {
        let target = Target::parse(&self.url).map_err(|e| ConnectError::Url(e.0))?;
        if target.secure {
            return Err(ConnectError::Url(format!(
                "{}: only ws:// is supported on the event loop",
                self.url
            )));
        }
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
    /// Where the worker puts the connection's slot, for its [`Sender`](crate::Sender).
    pub(crate) token_cell: Arc<OnceLock<usize>>,
    pub(crate) handshake_timeout: Duration,
}

impl PendingConnect {
    /// The connection will never start: its handler hears why (1006), with a context
    /// whose sends are refused.
    pub(crate) fn fail(mut self, letterbox: Arc<dyn Letterbox>, why: &str) {
        let info = ConnInfo {
            letterbox,
            token: usize::MAX,
            serial: self.serial,
            addr: self.addr,
            limit: 0,
        };
        self.handler
            .on_close(&mut Context::closed(&info), CloseCode::ABNORMAL, why);
    }
}
