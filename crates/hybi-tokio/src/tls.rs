//! TLS on tokio-rustls (the `tls` feature): the server side of [`Acceptor`]
//! (`accept_tls`), and rustls' failures as [`TlsError`]s.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use hybi::handshake::{Decision, UpgradeRequest};
use hybi_std::adapter::{NOT_TLS_ANSWER, looks_like_http};
use hybi_std::{Error, HandshakeError, Result, TlsError};
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::accept::Acceptor;
use crate::head::answer_and_end;
use crate::socket::WebSocket;

/// An I/O error from tokio-rustls as hybi's error: rustls' own failures (a
/// certificate refused, an alert, bytes that are not TLS) become [`Error::Tls`].
pub(crate) fn error(e: io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls) => Error::Tls(TlsError::Rustls(rustls.clone())),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            Error::Handshake(HandshakeError::UnexpectedEof)
        }
        None => Error::Io(e),
    }
}

impl Acceptor {
    /// Runs the TLS handshake with `config`, then [`accept`](Acceptor::accept), both
    /// within the handshake timeout. A client that speaks plain HTTP is answered `400`
    /// in plain text and gets [`TlsError::NotTls`].
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped midway, the handshake is lost.
    pub async fn accept_tls(
        &self,
        tcp: TcpStream,
        config: Arc<ServerConfig>,
    ) -> Result<WebSocket<TlsStream<TcpStream>>> {
        self.accept_tls_with(tcp, config, |_| Decision::accept())
            .await
    }

    /// [`accept_tls`](Self::accept_tls) with the upgrade decision of
    /// [`accept_with`](Acceptor::accept_with).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped midway, the handshake is lost.
    pub async fn accept_tls_with(
        &self,
        mut tcp: TcpStream,
        config: Arc<ServerConfig>,
        decide: impl FnOnce(&UpgradeRequest) -> Decision,
    ) -> Result<WebSocket<TlsStream<TcpStream>>> {
        let started = tokio::time::Instant::now();
        let timeout = self.timeout();
        let tls = tokio::time::timeout(timeout, async {
            let mut first = [0u8; 1];
            if tcp.peek(&mut first).await? == 0 {
                return Err(Error::Handshake(HandshakeError::UnexpectedEof));
            }
            if looks_like_http(first[0]) {
                answer_and_end(&mut tcp, NOT_TLS_ANSWER).await;
                return Err(Error::Tls(TlsError::NotTls));
            }
            tokio_rustls::TlsAcceptor::from(config)
                .accept(tcp)
                .await
                .map_err(error)
        })
        .await
        .unwrap_or(Err(Error::Handshake(HandshakeError::Timeout)))?;
        let left = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        self.clone()
            .handshake_timeout(left)
            .accept_with(tls, decide)
            .await
    }
}
