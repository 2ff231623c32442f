//! # hybi-tokio
//!
//! WebSockets (RFC 6455) for tokio, driven by the sans-IO [`hybi`] engine: a
//! [`WebSocket`] over any `AsyncRead + AsyncWrite + Unpin` transport (a
//! `TcpStream`, a TLS stream, an upgraded hyper connection), with `async fn`
//! methods ([`recv`](WebSocket::recv), [`send`](WebSocket::send),
//! [`close`](WebSocket::close)) and the `futures` [`Stream`](futures_core::Stream)
//! and [`Sink`](futures_sink::Sink), a [`split`](WebSocket::split) into halves for
//! two tasks, a client ([`connect_async`], [`ClientBuilder`], [`client_async`]) and
//! the server's handshake ([`accept`], [`accept_with`], [`Acceptor`], and over TLS
//! `Acceptor::accept_tls`). `wss://` runs on tokio-rustls (the `tls` feature, on by
//! default).
//!
//! Every protocol decision is the engine's; this crate only moves bytes between it
//! and the transport and keeps its clock on tokio's timer: the driving loop is one
//! function (`drive.rs`). Pings are answered and the keepalive, idle and close timers
//! run whenever the socket is polled, for reading or for writing.
//!
//! A server:
//!
//! ```no_run
//! use hybi_tokio::{Message, accept};
//! use tokio::net::TcpListener;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let mut ws = accept(tcp).await?;
//!         loop {
//!             match ws.recv().await? {
//!                 message @ (Message::Text(_) | Message::Binary(_)) => ws.send(message).await?,
//!                 _ => {} // pings are answered, the close frame echoed
//!             }
//!         }
//!         #[allow(unreachable_code)]
//!         Ok::<(), hybi_tokio::Error>(())
//!     });
//! }
//! # }
//! ```
//!
//! A client:
//!
//! ```no_run
//! # async fn demo() -> hybi_tokio::Result<()> {
//! let (mut ws, _response) = hybi_tokio::connect_async("ws://127.0.0.1:9001/echo").await?;
//! ws.send_text("hello").await?;
//! let reply = ws.recv().await?;
//! ws.close(hybi_tokio::CloseCode::NORMAL, "bye").await?;
//! # Ok(()) }
//! ```
//!
//! ## Cargo features
//!
//! - `tls` (default): `wss://` clients on tokio-rustls (rustls 0.23, the ring
//!   provider): `ClientBuilder::tls_config`, `MaybeTlsStream::Rustls`; servers accept
//!   over TLS with `Acceptor::accept_tls`. `wss://` without a config checks servers
//!   against Mozilla's roots.
//! - `hyper`: `upgrade::upgrade_with` answers an upgrade request behind a hyper 1
//!   server, over HTTP/1.1 and HTTP/2 (RFC 8441), and hands over the upgraded
//!   connection.
//! - `axum` (implies `hyper`): the `axum::WebSocketUpgrade` extractor.
//!
//! A refused upgrade is an [`Error`] whose [`rejection`](Error::rejection) holds the
//! server's status, headers and body; a successful one gives a [`Response`].
//!
//! The minimum supported Rust version is 1.85 (edition 2024).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accept;
#[cfg(feature = "axum")]
pub mod axum;
mod client;
mod drive;
mod head;
mod pool;
mod socket;
mod split;
#[cfg(feature = "tls")]
mod tls;
mod transport;
#[cfg(feature = "hyper")]
pub mod upgrade;

pub use accept::{Acceptor, accept, accept_with};
pub use client::{ClientBuilder, Response, client_async, connect_async};
pub use socket::{DEFAULT_HIGH_WATER, WebSocket};
pub use split::{ReadHalf, WriteHalf};
pub use transport::MaybeTlsStream;

pub use hybi::handshake::{Decision, Headers, Limits, Rejected, UpgradeRequest};
pub use hybi::{CloseCode, Config, Delivery, MessageKind, SendError, State};
pub use hybi_std::{CloseInfo, Error, HandshakeError, Message, Result};

/// The engine settings [`Acceptor`] and [`ClientBuilder`] start from:
/// [`Config::default`] (a 64 KiB receive buffer, which idle connections give back to
/// a per-thread pool).
pub fn default_config() -> Config {
    Config::default()
}

/// The engine this crate drives, for everything not re-exported above.
pub use hybi;

/// TLS for `wss://` (the `tls` feature): the rustls and tokio-rustls this crate runs
/// on, for building a [`rustls::ClientConfig`] or [`rustls::ServerConfig`] of the
/// same version, and the client's default configuration.
#[cfg(feature = "tls")]
pub use {hybi_std::TlsError, hybi_std::default_client_config, rustls, tokio_rustls};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
