//! The server's opening handshake over an async transport: [`accept`],
//! [`accept_with`] and the [`Acceptor`] that holds their settings.

use std::time::Duration;

use hybi::Config;
use hybi::handshake::{Answer, Decision, Limits, ServerHandshake, UpgradeRequest};
use hybi_std::{Error, HandshakeError, Result};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::head::{answer_and_end, read_head};
use crate::socket::WebSocket;

/// Runs the server's opening handshake on `stream` and accepts any valid upgrade,
/// with [`Acceptor::new`]'s settings.
///
/// # Cancel safety
/// Not cancel safe: dropped midway, the handshake is lost (drop the stream too).
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Acceptor::new().accept(stream).await
}

/// Runs the server's opening handshake on `stream`; `decide` sees the request (path,
/// headers, offered subprotocols) and accepts it (with a subprotocol, extra headers)
/// or refuses it (with a status, headers and a body, written before the error
/// returns).
///
/// # Cancel safety
/// Not cancel safe: dropped midway, the handshake is lost (drop the stream too).
pub async fn accept_with<S>(
    stream: S,
    decide: impl FnOnce(&UpgradeRequest) -> Decision,
) -> Result<WebSocket<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Acceptor::new().accept_with(stream, decide).await
}

/// Settings for accepting connections: the engine's config, the request's limits
/// and the handshake timeout.
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
    /// [`default_config`](crate::default_config), the default request limits, and a
    /// handshake timeout of 10 s.
    pub fn new() -> Acceptor {
        Acceptor {
            config: crate::default_config(),
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// The engine's settings for accepted connections (permessage-deflate is agreed
    /// to when `config.deflate` is set and the client offers it).
    pub fn config(mut self, config: Config) -> Acceptor {
        self.config = config;
        self
    }

    /// Limits on the request's size.
    pub fn limits(mut self, limits: Limits) -> Acceptor {
        self.limits = limits;
        self
    }

    /// How long the client has to send its whole request (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Acceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    #[cfg(feature = "tls")]
    pub(crate) fn timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// [`accept`] with these settings.
    pub async fn accept<S>(&self, stream: S) -> Result<WebSocket<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_with(stream, |_| Decision::accept()).await
    }

    /// [`accept_with`] with these settings.
    pub async fn accept_with<S>(
        &self,
        stream: S,
        decide: impl FnOnce(&UpgradeRequest) -> Decision,
    ) -> Result<WebSocket<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // On the heap while it runs: the handshake's state would otherwise stay part
        // of the caller's future (a connection's task) for the connection's life.
        Box::pin(self.handshake(stream, decide)).await
    }

    async fn handshake<S>(
        &self,
        mut stream: S,
        decide: impl FnOnce(&UpgradeRequest) -> Decision,
    ) -> Result<WebSocket<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut handshake = ServerHandshake::with_limits(self.limits);
        let request = read_head(&mut stream, self.handshake_timeout, |bytes| {
            handshake
                .receive(bytes)
                .map_err(|e| Error::Handshake(HandshakeError::Request(e)))
        })
        .await;
        let request = match request {
            Ok(request) => request,
            Err(Error::Handshake(HandshakeError::Request(e))) => {
                answer_and_end(&mut stream, &e.response().to_bytes()).await;
                return Err(Error::Handshake(HandshakeError::Request(e)));
            }
            Err(e) => return Err(e),
        };
        match request.answer_with(&decide(&request), self.config.deflate.as_ref()) {
            Answer::Upgrade(accepted) => {
                stream.write_all(&accepted.response().to_bytes()).await?;
                stream.flush().await?;
                let conn = accepted.into_connection(self.config.clone());
                Ok(WebSocket::from_parts(stream, conn))
            }
            Answer::Refuse(response) => {
                answer_and_end(&mut stream, &response.to_bytes()).await;
                Err(Error::Handshake(HandshakeError::Rejected(
                    response.status(),
                )))
            }
            Answer::Invalid(e, response) => {
                answer_and_end(&mut stream, &response.to_bytes()).await;
                Err(Error::Handshake(HandshakeError::InvalidReply(e)))
            }
        }
    }
}
