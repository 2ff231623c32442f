//! The client: [`connect_async`] and the [`ClientBuilder`] behind it, the handshake
//! over a stream the caller connected ([`client_async`]), and the server's
//! [`Response`].

use std::io;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use hybi::Config;
use hybi::handshake::{ClientHandshake, Limits, Rejected, ResponseError};
use hybi_std::adapter::{Target, mask_rng};
use hybi_std::{Error, HandshakeError, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::head::read_head;
use crate::socket::WebSocket;
use crate::transport::MaybeTlsStream;

/// What the server answered to the opening handshake: hybi-std's
/// [`Response`](hybi_std::Response), so that both clients agree (`status`, `headers`,
/// `header`, `protocol`, `extensions`, `deflate`). A refusal is an error whose
/// [`rejection`](hybi_std::Error::rejection) carries the status, headers and body.
pub use hybi_std::Response;

/// Connects to a `ws://` or `wss://` URL with default settings: `ClientBuilder::new(url).connect()`.
///
/// # Cancel safety
/// Not cancel safe: dropped midway, the connection attempt is abandoned.
pub async fn connect_async(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response)> {
    ClientBuilder::new(url).connect().await
}

/// Runs the client's opening handshake for `url` over a `stream` the caller
/// connected (a Unix socket, a proxy tunnel, a TLS stream): the URL gives the Host
/// header and the path.
///
/// # Cancel safety
/// Not cancel safe: dropped midway, the handshake is lost (drop the stream too).
pub async fn client_async<S>(url: &str, stream: S) -> Result<(WebSocket<S>, Response)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ClientBuilder::new(url).connect_with_stream(stream).await
}

/// Settings for a client connection.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    url: String,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
    connect_timeout: Option<Duration>,
    handshake_timeout: Duration,
    nodelay: bool,
    config: Config,
    limits: Limits,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientBuilder {
    /// Settings for connecting to `url` (`ws://host[:port][/path][?query]`).
    pub fn new(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            protocols: Vec::new(),
            headers: Vec::new(),
            connect_timeout: None,
            handshake_timeout: Duration::from_secs(10),
            nodelay: true,
            config: crate::default_config(),
            limits: Limits::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The TLS settings for `wss://`: trusted roots, client certificate, ALPN.
    /// Default: [`default_client_config`](crate::default_client_config) (Mozilla's
    /// roots). The server's certificate is checked against the URL's host, a name or
    /// an IP address. Unused for `ws://`.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> ClientBuilder {
        self.tls = Some(config);
        self
    }

    /// Offers a subprotocol (in order of preference; call again for more).
    pub fn protocol(mut self, name: &str) -> ClientBuilder {
        self.protocols.push(name.to_owned());
        self
    }

    /// Adds a header field to the request (`Authorization`, `Origin`, cookies...).
    pub fn header(mut self, name: &str, value: &str) -> ClientBuilder {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// How long the TCP connect may take (default: the system's).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long the server has to answer the handshake (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.handshake_timeout = timeout;
        self
    }

    /// Disables Nagle's algorithm (default: true, as every frame is written whole).
    pub fn nodelay(mut self, on: bool) -> ClientBuilder {
        self.nodelay = on;
        self
    }

    /// The engine's settings: limits, keepalive, timeouts, delivery mode, and
    /// permessage-deflate (offered when `config.deflate` is set). Default:
    /// [`default_config`](crate::default_config).
    pub fn config(mut self, config: Config) -> ClientBuilder {
        self.config = config;
        self
    }

    /// Limits on the handshake response's size.
    pub fn limits(mut self, limits: Limits) -> ClientBuilder {
        self.limits = limits;
        self
    }

    /// Resolves the host, connects (with TLS for `wss://`) and runs the handshake;
    /// the handshake timeout covers the TLS handshake too.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped midway, the connection attempt is abandoned.
    pub async fn connect(self) -> Result<(WebSocket<MaybeTlsStream>, Response)> {
        let target = Target::parse(&self.url).map_err(|e| Error::Url(e.0))?;
        let tcp = self.connect_tcp(&target).await?;
        let started = tokio::time::Instant::now();
        let stream = match target.secure {
            false => MaybeTlsStream::Plain(tcp),
            #[cfg(feature = "tls")]
            true => MaybeTlsStream::Rustls(Box::new(self.connect_tls(tcp, &target).await?)),
            #[cfg(not(feature = "tls"))]
            true => {
                return Err(Error::Url(format!(
                    "{}: wss:// needs hybi-tokio's tls feature",
                    self.url
                )));
            }
        };
        let left = self.handshake_timeout.saturating_sub(started.elapsed());
        self.handshake_within(stream, target, left).await
    }

    /// The TLS handshake, within the handshake timeout.
    #[cfg(feature = "tls")]
    async fn connect_tls(
        &self,
        tcp: TcpStream,
        target: &Target,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
        use hybi_std::TlsError;
        let config = match &self.tls {
            Some(config) => Arc::clone(config),
            None => hybi_std::default_client_config().map_err(Error::Tls)?,
        };
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| Error::Tls(TlsError::InvalidServerName(target.host.clone())))?;
        let connecting = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
        match tokio::time::timeout(self.handshake_timeout, connecting).await {
            Err(_) => Err(Error::Handshake(HandshakeError::Timeout)),
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(crate::tls::error(e)),
        }
    }

    /// Runs the handshake over a stream you connected yourself (see [`client_async`]).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped midway, the handshake is lost (drop the stream too).
    pub async fn connect_with_stream<S>(self, stream: S) -> Result<(WebSocket<S>, Response)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let target = Target::parse(&self.url).map_err(|e| Error::Url(e.0))?;
        let timeout = self.handshake_timeout;
        self.handshake_within(stream, target, timeout).await
    }

    async fn connect_tcp(&self, target: &Target) -> Result<TcpStream> {
        let addrs = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(Error::Dns)?;
        let mut last = None;
        for addr in addrs {
            let attempt = TcpStream::connect(addr);
            let result = match self.connect_timeout {
                Some(t) => tokio::time::timeout(t, attempt)
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
                None => attempt.await,
            };
            match result {
                Ok(tcp) => {
                    tcp.set_nodelay(self.nodelay)?;
                    return Ok(tcp);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(Error::Connect(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} has no address", target.host),
            )
        })))
    }

    async fn handshake_within<S>(
        self,
        stream: S,
        target: Target,
        timeout: Duration,
    ) -> Result<(WebSocket<S>, Response)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // On the heap while it runs, not in the caller's future for good.
        Box::pin(self.handshake(stream, target, timeout)).await
    }

    async fn handshake<S>(
        self,
        mut stream: S,
        target: Target,
        timeout: Duration,
    ) -> Result<(WebSocket<S>, Response)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut request = target.request(&self.protocols, &self.headers, self.limits);
        if let Some(deflate) = self.config.deflate {
            request = request.deflate(deflate);
        }
        let mut rng = mask_rng();
        let mut handshake = ClientHandshake::new(&request, &mut rng)
            .map_err(|e| Error::Handshake(HandshakeError::InvalidRequest(e)))?;
        stream.write_all(handshake.request()).await?;
        stream.flush().await?;
        let deadline = tokio::time::Instant::now() + timeout;
        let accepted = read_head(&mut stream, timeout, |bytes| {
            handshake
                .receive(bytes)
                .map_err(|e| Error::Handshake(HandshakeError::Response(e)))
        })
        .await;
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(Error::Handshake(HandshakeError::Response(ResponseError::Rejected(mut r)))) => {
                // Up to its deadline; what came by then is the body.
                let _ = tokio::time::timeout_at(deadline, read_body(&mut stream, &mut r)).await;
                return Err(Error::Handshake(HandshakeError::Response(
                    ResponseError::Rejected(r),
                )));
            }
            Err(e) => return Err(e),
        };
        let response = Response::from_accepted(&accepted);
        let conn = accepted.into_connection(self.config, rng);
        Ok((WebSocket::from_parts(stream, conn), response))
    }
}

/// Reads the rest of a refusal's body, as far as it [wants](Rejected::wants_body); a
/// read that fails ends it with what came.
async fn read_body<S: AsyncRead + Unpin>(stream: &mut S, rejected: &mut Rejected) {
    let mut buf = vec![0u8; 1024];
    while rejected.wants_body() {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => rejected.extend_body(&buf[..n]),
        }
    }
}
