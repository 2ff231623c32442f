//! Accepting: the server side of the handshake over a stream.

use std::io;
use std::time::{Duration, Instant as StdInstant};

use hybi::Config;
use hybi::handshake::{Limits, Response, ServerHandshake, UpgradeRequest};

use crate::error::{Error, HandshakeError, Result};
use crate::socket::WebSocket;
use crate::stream::Stream;

/// The application's answer to an upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Upgrade, with an optional subprotocol (one the client offered) and extra
    /// response headers.
    Accept {
        /// The chosen subprotocol.
        protocol: Option<String>,
        /// Extra header fields for the 101 response.
        headers: Vec<(String, String)>,
    },
    /// Refuse with an HTTP status, header fields and a body.
    Reject {
        /// The status (e.g. 403).
        status: u16,
        /// Extra header fields.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
}

impl Decision {
    /// Accept, without subprotocol or extra headers.
    pub fn accept() -> Decision {
        Decision::Accept {
            protocol: None,
            headers: Vec::new(),
        }
    }

    /// Refuse with `status` and a short text body.
    pub fn reject(status: u16, body: &str) -> Decision {
        Decision::Reject {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// Sets the subprotocol of an `Accept`.
    pub fn with_protocol(mut self, name: &str) -> Decision {
        if let Decision::Accept { protocol, .. } = &mut self {
            *protocol = Some(name.to_owned());
        }
        self
    }

    /// Adds a header field to the answer.
    pub fn with_header(mut self, name: &str, value: &str) -> Decision {
        match &mut self {
            Decision::Accept { headers, .. } | Decision::Reject { headers, .. } => {
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        self
    }
}

/// Accepts a WebSocket on `stream` with default settings, whatever the request's path.
pub fn accept<S: Stream>(stream: S) -> Result<WebSocket<S>> {
    Acceptor::new().accept(stream)
}

/// Accepts a WebSocket on `stream`, letting `callback` inspect the request (path,
/// query, headers, origin, offered subprotocols) and decide.
///
/// ```no_run
/// use hybi_std::{accept_with, Decision};
/// let listener = std::net::TcpListener::bind("127.0.0.1:9002")?;
/// let (stream, _) = listener.accept()?;
/// let mut ws = accept_with(stream, |req| {
///     if req.origin() != Some("https://example.com") {
///         return Decision::reject(403, "forbidden origin");
///     }
///     match req.protocols().iter().any(|p| p == "chat") {
///         true => Decision::accept().with_protocol("chat"),
///         false => Decision::accept(),
///     }
/// })?;
/// # Ok::<(), hybi_std::Error>(())
/// ```
pub fn accept_with<S: Stream>(
    stream: S,
    callback: impl FnOnce(&UpgradeRequest) -> Decision,
) -> Result<WebSocket<S>> {
    Acceptor::new().accept_with(stream, callback)
}

/// Server-side handshake settings.
#[derive(Clone, Debug)]
pub struct Acceptor {
    config: Config,
    limits: Limits,
    handshake_timeout: Duration,
}

impl Default for Acceptor {
    fn default() -> Acceptor {
        Acceptor::new()
    }
}

impl Acceptor {
    /// Defaults: engine [`Config::default`], handshake [`Limits::default`], 10 s to
    /// complete the handshake.
    pub fn new() -> Acceptor {
        Acceptor {
            config: Config::default(),
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// The engine's settings for accepted connections.
    pub fn config(mut self, config: Config) -> Acceptor {
        self.config = config;
        self
    }

    /// Limits on the request's size.
    pub fn limits(mut self, limits: Limits) -> Acceptor {
        self.limits = limits;
        self
    }

    /// A client that has not sent its whole request after this long is dropped.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Acceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// Accepts whatever the request's path.
    pub fn accept<S: Stream>(&self, stream: S) -> Result<WebSocket<S>> {
        self.accept_with(stream, |_| Decision::accept())
    }

    /// Reads the request, lets `callback` decide, and answers.
    pub fn accept_with<S: Stream>(
        &self,
        mut stream: S,
        callback: impl FnOnce(&UpgradeRequest) -> Decision,
    ) -> Result<WebSocket<S>> {
        let request = match self.read_request(&mut stream) {
            Ok(r) => r,
            Err(Error::Handshake(HandshakeError::Request(e))) => {
                let _ = stream.write_all(&e.response().to_bytes());
                finish(&mut stream);
                return Err(Error::Handshake(HandshakeError::Request(e)));
            }
            Err(e) => {
                let _ = stream.shutdown();
                return Err(e);
            }
        };
        let (protocol, headers, reject) = match callback(&request) {
            Decision::Accept { protocol, headers } => (protocol, headers, None),
            Decision::Reject {
                status,
                headers,
                body,
            } => (None, headers, Some((status, body))),
        };
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some((status, body)) = reject {
            let (bytes, err) = match Response::reject(status, &header_refs, &body) {
                Ok(r) => (r.to_bytes(), HandshakeError::Rejected(status)),
                Err(e) => (internal_error(), HandshakeError::InvalidReply(e)),
            };
            let _ = stream.write_all(&bytes);
            finish(&mut stream);
            return Err(Error::Handshake(err));
        }
        match request.accept(protocol.as_deref(), &header_refs) {
            Ok(accepted) => {
                stream.write_all(&accepted.response().to_bytes())?;
                stream.flush()?;
                stream.set_read_timeout(None)?;
                Ok(WebSocket::from_parts(
                    stream,
                    accepted.into_connection(self.config.clone()),
                ))
            }
            Err(e) => {
                let _ = stream.write_all(&internal_error());
                finish(&mut stream);
                Err(Error::Handshake(HandshakeError::InvalidReply(e)))
            }
        }
    }

    fn read_request<S: Stream>(&self, stream: &mut S) -> Result<UpgradeRequest> {
        let mut handshake = ServerHandshake::with_limits(self.limits);
        let deadline = StdInstant::now() + self.handshake_timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                return Err(Error::Handshake(HandshakeError::Timeout));
            }
            stream.set_read_timeout(Some(left))?;
            let n = match stream.read(&mut buf) {
                Ok(0) => return Err(Error::Handshake(HandshakeError::UnexpectedEof)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(Error::Io(e)),
            };
            match handshake.receive(&buf[..n]) {
                Ok(Some(request)) => return Ok(request),
                Ok(None) => {}
                Err(e) => return Err(Error::Handshake(HandshakeError::Request(e))),
            }
        }
    }
}

fn internal_error() -> Vec<u8> {
    b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".to_vec()
}

/// After an HTTP error answer: end our side, let the client read it, then close.
fn finish<S: Stream>(stream: &mut S) {
    let _ = stream.flush();
    let _ = stream.shutdown_write();
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut scratch = [0u8; 1024];
    for _ in 0..16 {
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let _ = stream.shutdown();
}
