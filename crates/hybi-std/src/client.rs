//! Connecting: `connect(url)` and a [`ClientBuilder`] for everything else.

use std::io;
use std::net::TcpStream;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::{Duration, Instant};

use hybi::Config;
use hybi::handshake::{ClientAccepted, ClientHandshake, Headers, Limits, Rejected, ResponseError};

use crate::adapter::{Target, mask_rng};
use crate::error::{Error, HandshakeError, Result};
use crate::socket::WebSocket;
use crate::stream::{Stream, read_head};
use crate::transport::MaybeTls;

/// What the server answered to a successful upgrade (hybi-tokio's clients return the
/// same type). A refusal is an error instead, whose
/// [`rejection`](crate::Error::rejection) holds the status, headers and body.
#[derive(Clone, Debug)]
pub struct Response {
    protocol: Option<String>,
    headers: Headers,
    deflate: Option<hybi::deflate::Agreement>,
}

impl Response {
    /// The response of a handshake the engine validated (for adapters that run the
    /// handshake themselves, as hybi-tokio does).
    pub fn from_accepted(accepted: &ClientAccepted) -> Response {
        Response {
            protocol: accepted.protocol().map(str::to_owned),
            headers: accepted.headers().clone(),
            deflate: accepted.deflate().copied(),
        }
    }

    /// The status: always 101 Switching Protocols, the only one that opens a
    /// connection (any other is an [`Error`] with a
    /// [`rejection`](crate::Error::rejection)).
    pub fn status(&self) -> u16 {
        101
    }

    /// The subprotocol the server chose (always one we offered).
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The subprotocol the server chose: the same as [`protocol`](Self::protocol).
    pub fn subprotocol(&self) -> Option<&str> {
        self.protocol()
    }

    /// The response's header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The value of the first header field called `name` (case-insensitive), if it
    /// is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get_str(name)
    }

    /// The `Sec-WebSocket-Extensions` the server answered with, as sent (the first
    /// field, if it is valid UTF-8); [`deflate`](Self::deflate) is what was agreed.
    pub fn extensions(&self) -> Option<&str> {
        self.header("Sec-WebSocket-Extensions")
    }

    /// The permessage-deflate parameters agreed, if compression is on (offered when
    /// the config's [`deflate`](hybi::Config::deflate) is set).
    pub fn deflate(&self) -> Option<&hybi::deflate::Agreement> {
        self.deflate.as_ref()
    }
}

/// Connects to a `ws://` or `wss://` URL with default settings (for `wss://`, the
/// `tls` feature, on by default: the server's certificate is checked against
/// [`default_client_config`](crate::default_client_config)'s roots). The same as
/// `ClientBuilder::new(url).connect()`.
///
/// ```no_run
/// let (mut ws, _response) = hybi_std::connect("wss://example.com/echo")?;
/// ws.send_text("hello")?;
/// println!("{:?}", ws.read()?);
/// # Ok::<(), hybi_std::Error>(())
/// ```
pub fn connect(url: &str) -> Result<(WebSocket<MaybeTls>, Response)> {
    ClientBuilder::new(url).connect()
}

/// Settings for a client connection.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    url: String,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
    connect_timeout: Option<Duration>,
    handshake_timeout: Duration,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    nodelay: bool,
    config: Config,
    limits: Limits,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn parse_url(url: &str) -> Result<Target> {
    Target::parse(url).map_err(|e| Error::Url(e.0))
}

impl ClientBuilder {
    /// Settings for connecting to `url` (`ws://host[:port][/path][?query]`, or
    /// `wss://` for TLS with the `tls` feature).
    pub fn new(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            protocols: Vec::new(),
            headers: Vec::new(),
            connect_timeout: None,
            handshake_timeout: Duration::from_secs(10),
            read_timeout: None,
            write_timeout: None,
            nodelay: true,
            config: crate::default_config(),
            limits: Limits::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Offers a subprotocol (in order of preference; call again for more).
    pub fn protocol(mut self, name: &str) -> ClientBuilder {
        self.protocols.push(name.to_owned());
        self
    }

    /// Adds a header to the request (Origin, Authorization, Cookie, ...).
    pub fn header(mut self, name: &str, value: &str) -> ClientBuilder {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Gives up connecting after this long (default: the OS's timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Gives up on the handshake after this long (default: 10 s): the TLS handshake
    /// (`wss://`) and the WebSocket upgrade together.
    pub fn handshake_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.handshake_timeout = timeout;
        self
    }

    /// The socket's read timeout (see [`WebSocket::set_read_timeout`]); default none.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> ClientBuilder {
        self.read_timeout = timeout;
        self
    }

    /// The TCP socket's write timeout; default none.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> ClientBuilder {
        self.write_timeout = timeout;
        self
    }

    /// Disables Nagle's algorithm (default: true, as every frame is written whole).
    pub fn nodelay(mut self, on: bool) -> ClientBuilder {
        self.nodelay = on;
        self
    }

    /// The engine's settings: limits, keepalive, close timeout, delivery mode.
    /// Default: [`default_config`](crate::default_config).
    pub fn config(mut self, config: Config) -> ClientBuilder {
        self.config = config;
        self
    }

    /// Limits on the handshake response's size.
    pub fn limits(mut self, limits: Limits) -> ClientBuilder {
        self.limits = limits;
        self
    }

    /// The TLS settings for `wss://`: trusted roots, client certificate, ALPN,
    /// protocol versions. Default: [`default_client_config`](crate::default_client_config)
    /// (Mozilla's roots, and the platform's with the `tls-native-roots` feature). The
    /// server's certificate is checked against the URL's host, a name or an IP
    /// address. Unused for `ws://`.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use hybi_std::rustls::{ClientConfig, RootCertStore, crypto::ring};
    /// # fn demo(my_ca: hybi_std::rustls::pki_types::CertificateDer<'static>) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut roots = RootCertStore::empty();
    /// roots.add(my_ca)?;
    /// let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let (mut ws, _) = hybi_std::ClientBuilder::new("wss://localhost:9443/echo")
    ///     .tls_config(Arc::new(config))
    ///     .connect()?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> ClientBuilder {
        self.tls = Some(config);
        self
    }

    /// Resolves the host, connects over TCP, runs the TLS handshake for `wss://`, and
    /// the WebSocket handshake, all within the handshake timeout after TCP connects.
    ///
    /// A `wss://` URL without the `tls` feature is an [`Error::Url`]. TLS failures
    /// (the certificate is expired or for another name, the server answers in plain
    /// HTTP) are [`Error::Tls`](crate::Error::Tls).
    pub fn connect(self) -> Result<(WebSocket<MaybeTls>, Response)> {
        let target = parse_url(&self.url)?;
        #[cfg(feature = "tls")]
        let tls = match (target.secure, &self.tls) {
            (false, _) => None,
            (true, Some(config)) => Some(Arc::clone(config)),
            (true, None) => Some(crate::tls::default_client_config()?),
        };
        #[cfg(not(feature = "tls"))]
        if target.secure {
            return Err(Error::Url(format!(
                "{}: wss:// needs hybi-std's tls feature",
                self.url
            )));
        }
        let tcp = self.connect_tcp(&target)?;
        let started = Instant::now();
        #[cfg(feature = "tls")]
        let stream = match tls {
            Some(config) => MaybeTls::Tls(crate::tls::TlsStream::connect(
                tcp,
                &target.host,
                config,
                self.handshake_timeout,
            )?),
            None => MaybeTls::Plain(tcp),
        };
        #[cfg(not(feature = "tls"))]
        let stream = MaybeTls::Plain(tcp);
        let left = self.handshake_timeout.saturating_sub(started.elapsed());
        self.handshake(stream, target, left)
    }

    /// Resolves the host and connects over TCP, with the socket options set.
    fn connect_tcp(&self, target: &Target) -> Result<TcpStream> {
        let addrs = target.resolve().map_err(Error::Dns)?;
        let mut last = None;
        let mut stream = None;
        for addr in &addrs {
            let attempt = match self.connect_timeout {
                Some(t) => TcpStream::connect_timeout(addr, t),
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(stream) = stream else {
            return Err(Error::Connect(last.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotConnected, "no address to connect to")
            })));
        };
        stream.set_nodelay(self.nodelay)?;
        stream.set_write_timeout(self.write_timeout)?;
        Ok(stream)
    }

    /// Runs the handshake over a stream you connected yourself (a Unix socket, a
    /// proxy tunnel, a [`TlsStream`](crate::TlsStream) you set up). The URL supplies
    /// the Host header and the path.
    pub fn connect_with_stream<S: Stream>(self, stream: S) -> Result<(WebSocket<S>, Response)> {
        let target = parse_url(&self.url)?;
        let timeout = self.handshake_timeout;
        self.handshake(stream, target, timeout)
    }

    fn handshake<S: Stream>(
        self,
        mut stream: S,
        target: Target,
        timeout: Duration,
    ) -> Result<(WebSocket<S>, Response)> {
        let mut request = target.request(&self.protocols, &self.headers, self.limits);
        if let Some(deflate) = self.config.deflate {
            request = request.deflate(deflate);
        }
        let mut rng = mask_rng();
        let mut handshake = ClientHandshake::new(&request, &mut rng)
            .map_err(|e| Error::Handshake(HandshakeError::InvalidRequest(e)))?;
        stream.write_all(handshake.request())?;
        stream.flush()?;

        let deadline = Instant::now() + timeout;
        let accepted = read_head(&mut stream, timeout, |bytes| {
            handshake
                .receive(bytes)
                .map_err(|e| Error::Handshake(HandshakeError::Response(e)))
        });
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(Error::Handshake(HandshakeError::Response(ResponseError::Rejected(mut r)))) => {
                read_body(&mut stream, &mut r, deadline);
                return Err(Error::Handshake(HandshakeError::Response(
                    ResponseError::Rejected(r),
                )));
            }
            Err(e) => return Err(e),
        };
        stream.set_read_timeout(None)?;
        let response = Response::from_accepted(&accepted);
        let conn = accepted.into_connection(self.config, rng);
        let mut ws = WebSocket::after_handshake(stream, conn);
        ws.set_read_timeout(self.read_timeout);
        Ok((ws, response))
    }
}

/// Reads the rest of a refusal's body, as far as it [wants](Rejected::wants_body) and
/// until the `deadline`; a read that fails or times out ends it with what came.
fn read_body<S: Stream>(stream: &mut S, rejected: &mut Rejected, deadline: Instant) {
    let mut buf = [0u8; 1024];
    while rejected.wants_body() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => rejected.extend_body(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let Ok(t) = parse_url("ws://example.com/chat?room=1") else {
            panic!("a ws URL")
        };
        assert_eq!(
            (t.host.as_str(), t.port, t.secure, t.path.as_str()),
            ("example.com", 80, false, "/chat?room=1")
        );
        let Ok(t) = parse_url("wss://[::1]:9443") else {
            panic!("a wss URL")
        };
        assert_eq!(
            (t.host.as_str(), t.port, t.secure, t.path.as_str()),
            ("::1", 9443, true, "/")
        );
        assert!(matches!(
            parse_url("http://example.com"),
            Err(Error::Url(_))
        ));
        assert!(matches!(parse_url("not a url"), Err(Error::Url(_))));
        assert!(matches!(
            parse_url("ws://example.com/#frag"),
            Err(Error::Url(_))
        ));
    }
}
