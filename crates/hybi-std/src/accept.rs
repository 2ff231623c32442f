//! Accepting: the server side of the handshake over a stream.

use std::time::Duration;

use hybi::Config;
use hybi::handshake::{
    Answer, Decision, HttpRequest, Incoming, Limits, ServerHandshake, UpgradeRequest,
};

use crate::error::{Error, HandshakeError, Result};
use crate::socket::WebSocket;
use crate::stream::{Stream, read_head};

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
    /// Defaults: engine [`default_config`](crate::default_config), handshake [`Limits::default`], 10 s to
    /// complete the handshake.
    pub fn new() -> Acceptor {
        Acceptor {
            config: crate::default_config(),
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
        stream: S,
        callback: impl FnOnce(&UpgradeRequest) -> Decision,
    ) -> Result<WebSocket<S>> {
        self.accept_within(stream, self.handshake_timeout, callback)
    }

    /// The handshake timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// [`accept_with`](Self::accept_with) with `timeout` for reading the request
    /// instead of the handshake timeout (what is left of it after a TLS handshake).
    pub(crate) fn accept_within<S: Stream>(
        &self,
        mut stream: S,
        timeout: Duration,
        callback: impl FnOnce(&UpgradeRequest) -> Decision,
    ) -> Result<WebSocket<S>> {
        let request = match self.read_request(&mut stream, timeout) {
            Ok(r) => r,
            Err(e) => return Err(refuse_bad_request(&mut stream, e)),
        };
        self.answer(stream, &request, callback)
    }

    /// [`accept_within`](Self::accept_within) for a server that also serves plain HTTP:
    /// a request without `Upgrade` is answered with `page`'s bytes and the connection
    /// closed (`Ok(None)`).
    pub(crate) fn accept_or_answer<S: Stream>(
        &self,
        mut stream: S,
        timeout: Duration,
        callback: impl FnOnce(&UpgradeRequest) -> Decision,
        page: impl FnOnce(&HttpRequest) -> Vec<u8>,
    ) -> Result<Option<WebSocket<S>>> {
        let mut handshake = ServerHandshake::with_limits(self.limits);
        let incoming = read_head(&mut stream, timeout, |bytes| {
            handshake
                .receive_any(bytes)
                .map_err(|e| Error::Handshake(HandshakeError::Request(e)))
        });
        match incoming {
            Ok(Incoming::Upgrade(request)) => self.answer(stream, &request, callback).map(Some),
            Ok(Incoming::Http(request)) => {
                let _ = stream.write_all(&page(&request));
                finish(&mut stream);
                Ok(None)
            }
            Err(e) => Err(refuse_bad_request(&mut stream, e)),
        }
    }

    /// Answers a valid upgrade request as `callback` decides.
    fn answer<S: Stream>(
        &self,
        mut stream: S,
        request: &UpgradeRequest,
        callback: impl FnOnce(&UpgradeRequest) -> Decision,
    ) -> Result<WebSocket<S>> {
        match request.answer_with(&callback(request), self.config.deflate.as_ref()) {
            Answer::Upgrade(accepted) => {
                stream.write_all(&accepted.response().to_bytes())?;
                stream.flush()?;
                stream.set_read_timeout(None)?;
                Ok(WebSocket::after_handshake(
                    stream,
                    accepted.into_connection(self.config.clone()),
                ))
            }
            Answer::Refuse(response) => {
                let _ = stream.write_all(&response.to_bytes());
                finish(&mut stream);
                Err(Error::Handshake(HandshakeError::Rejected(
                    response.status(),
                )))
            }
            Answer::Invalid(e, response) => {
                let _ = stream.write_all(&response.to_bytes());
                finish(&mut stream);
                Err(Error::Handshake(HandshakeError::InvalidReply(e)))
            }
        }
    }

    fn read_request<S: Stream>(&self, stream: &mut S, timeout: Duration) -> Result<UpgradeRequest> {
        let mut handshake = ServerHandshake::with_limits(self.limits);
        read_head(stream, timeout, |bytes| {
            handshake
                .receive(bytes)
                .map_err(|e| Error::Handshake(HandshakeError::Request(e)))
        })
    }
}

/// Reading the request failed: a malformed one is answered with its error's response
/// before the connection closes; otherwise the stream is shut down.
fn refuse_bad_request<S: Stream>(stream: &mut S, e: Error) -> Error {
    match e {
        Error::Handshake(HandshakeError::Request(e)) => {
            let _ = stream.write_all(&e.response().to_bytes());
            finish(stream);
            Error::Handshake(HandshakeError::Request(e))
        }
        e => {
            let _ = stream.shutdown();
            e
        }
    }
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
