//! # hybi-std: blocking WebSockets over std sockets
//!
//! A thin adapter that drives the [`hybi`] engine over blocking `std::io` streams:
//! every protocol decision stays in the engine; this crate moves bytes and time.
//!
//! - Clients: [`connect`] or a [`ClientBuilder`] (subprotocols, headers, timeouts,
//!   engine [`Config`]) for `ws://` and `wss://` URLs;
//!   [`ClientBuilder::connect_with_stream`] runs over any stream (a Unix socket, a
//!   proxy tunnel).
//! - TLS (the `tls` feature, on by default; rustls with the ring provider):
//!   `wss://` checks the server against Mozilla's roots or the caller's
//!   `rustls::ClientConfig` (`ClientBuilder::tls_config`); `ServerBuilder::tls` serves
//!   TLS with the caller's `rustls::ServerConfig`; `TlsStream` is the stream both run
//!   over, and splits like a `TcpStream`. `tls-native-roots` adds the platform's roots.
//! - Servers: [`accept`] / [`accept_with`] on a stream you accepted (with
//!   [`AcceptBackoff`] to keep your accept loop going through `EMFILE` and the like),
//!   or the thread-per-connection [`Server`] with routes and [`Handler`] callbacks
//!   (see [The server](#the-server)).
//! - The socket: [`WebSocket`] reads messages (answering pings, running the keepalive
//!   and close timers), sends text, binary and fragments, closes with a code and
//!   reason, and splits into a [`Reader`] and a [`Writer`] for two threads.
//!
//! A refused upgrade is an [`Error`] whose [`rejection`](Error::rejection) holds the
//! server's status, headers and body; a successful one gives a [`Response`].
//!
//! ## Cargo features
//!
//! - `tls` (default): `wss://` clients and TLS servers on rustls 0.23 with the ring
//!   provider: `TlsStream`, `ClientBuilder::tls_config`, `ServerBuilder::tls`;
//!   `wss://` without a config checks servers against Mozilla's roots
//!   (webpki-roots).
//! - `tls-native-roots`: the platform's root certificates too (implies `tls`).
//!
//! The minimum supported Rust version is 1.85 (edition 2024).
//!
//! ## Client
//!
//! ```no_run
//! use hybi_std::{ClientBuilder, CloseCode, Message};
//!
//! let (mut ws, response) = ClientBuilder::new("ws://127.0.0.1:9002/chat")
//!     .protocol("chat.v1")
//!     .header("Origin", "http://127.0.0.1")
//!     .connect()?;
//! println!("subprotocol: {:?}", response.protocol());
//! ws.send_text("hello")?;
//! if let Message::Text(reply) = ws.read()? {
//!     println!("{reply}");
//! }
//! let theirs = ws.close_and_wait(CloseCode::NORMAL, "bye")?;
//! println!("server closed with {} {}", theirs.code, theirs.reason);
//! # Ok::<(), hybi_std::Error>(())
//! ```
//!
//! ## The server
//!
//! [`Server::builder`] gives the same builder as hybi-mio's, over the same route table
//! ([`adapter::Routes`]):
//!
//! - [`route`](ServerBuilder::route) (exact path, without the query) and
//!   [`fallback`](ServerBuilder::fallback) (every other path; without one, 404) make a
//!   [`Handler`] per connection;
//! - [`page`](ServerBuilder::page) answers a plain HTTP `GET` of a path with a body
//!   and `Connection: close` (a browser client's page, say);
//! - [`should_upgrade`](ServerBuilder::should_upgrade) decides every upgrade, and
//!   [`should_upgrade_at`](ServerBuilder::should_upgrade_at) those of one path, first;
//!   a path with a hook and no route can only be refused (`/admin` → 403);
//! - [`config`](ServerBuilder::config), [`limits`](ServerBuilder::limits),
//!   [`handshake_timeout`](ServerBuilder::handshake_timeout),
//!   [`write_timeout`](ServerBuilder::write_timeout),
//!   [`high_water`](ServerBuilder::high_water) and `tls`.
//!
//! [`bind`](ServerBuilder::bind) gives a [`Server`]: [`local_addr`](Server::local_addr),
//! then [`run`](Server::run) serves on the calling thread, or [`spawn`](Server::spawn)
//! on one of its own, returning a [`ServerHandle`] with `local_addr`,
//! [`peers`](ServerHandle::peers), [`join`](ServerHandle::join) and
//! [`shutdown(grace)`](ServerHandle::shutdown) (close 1001 to every connection, wait up
//! to `grace` for the closing handshakes, end the rest). Each connection's [`Peer`]
//! (named by a [`ConnId`]) sends from any thread; a [`Room`] broadcasts to a set of
//! them with [`Peer::try_send`], which skips a member that does not keep up instead of
//! waiting for it (see [`TrySendError`]).
//!
//! ```no_run
//! use hybi_std::{CloseCode, Decision, Handler, Peer, Room, Server};
//! use std::time::Duration;
//!
//! struct Member(Room);
//! impl Handler for Member {
//!     fn on_open(&mut self, peer: &Peer) {
//!         self.0.join(peer);
//!     }
//!     fn on_text(&mut self, _peer: &Peer, text: &str) {
//!         self.0.broadcast(text);
//!     }
//!     fn on_close(&mut self, peer: &Peer, _code: CloseCode, _reason: &str) {
//!         self.0.leave(peer.id());
//!     }
//! }
//!
//! let room = Room::new();
//! let server = Server::builder()
//!     .route("/chat", move |_req| Member(room.clone()))
//!     .page("/", "text/html; charset=utf-8", &b"<script>/* ... */</script>"[..])
//!     .should_upgrade_at("/admin", |_req| Decision::reject(403, "not here"))
//!     .bind("127.0.0.1:9002")?
//!     .spawn()?;
//! println!("chat on ws://{}/chat", server.local_addr());
//! // ...
//! server.shutdown(Duration::from_secs(5));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Your own accept loop
//!
//! ```no_run
//! use hybi_std::{AcceptBackoff, Error, Message};
//! use std::net::TcpListener;
//!
//! let listener = TcpListener::bind("127.0.0.1:9002")?;
//! // Out of file descriptors, say, accept fails at once until one is free: wait
//! // between tries instead of spinning (see AcceptBackoff).
//! let mut backoff = AcceptBackoff::new();
//! for stream in listener.incoming() {
//!     let Some(stream) = backoff.check(stream)? else {
//!         continue;
//!     };
//!     std::thread::spawn(move || -> hybi_std::Result<()> {
//!         let mut ws = hybi_std::accept(stream)?;
//!         loop {
//!             match ws.read() {
//!                 Ok(Message::Text(t)) => ws.send_text(&t)?,
//!                 Ok(Message::Binary(b)) => ws.send_binary(&b)?,
//!                 Ok(_) => {}
//!                 Err(Error::ConnectionClosed) => return Ok(()),
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!     });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accept;
pub mod adapter;
mod client;
mod engine;
mod error;
mod idle;
mod message;
#[cfg(feature = "redis")]
pub mod redis;
mod room;
mod server;
mod socket;
mod split;
mod stream;
mod timeout;
#[cfg(feature = "tls")]
mod tls;
mod transport;

pub use accept::{Acceptor, accept, accept_with};
pub use client::{ClientBuilder, Response, connect};
pub use error::{Error, HandshakeError, Result};
pub use message::{CloseInfo, Message};
pub use room::Room;
pub use server::{
    AcceptBackoff, ConnId, Handler, Peer, Server, ServerBuilder, ServerHandle, TrySendError,
};
pub use socket::WebSocket;
pub use split::{Reader, Writer};
pub use stream::{Stream, TryClone, Untimed};
#[cfg(feature = "tls")]
pub use tls::{TlsError, TlsStream, default_client_config};
pub use transport::MaybeTls;

pub use hybi::handshake::{Decision, Headers, Limits, Rejected, UpgradeRequest};
pub use hybi::{CloseCode, Config, Delivery, Event, MessageKind, SendError, State};

/// The receive buffer size of [`default_config`]: 256 KiB.
pub const READ_BUFFER_SIZE: usize = 256 << 10;

/// The engine settings [`Acceptor`], [`Server`] and [`ClientBuilder`] start from:
/// [`Config::default`] with a receive buffer of up to [`READ_BUFFER_SIZE`] instead of
/// 64 KiB.
///
/// The engine allocates 64 KiB at first and grows the buffer only once it fills, so
/// connections carrying small messages keep 64 KiB. Where large messages arrive, a
/// split [`Reader`] reads up to 256 KiB at a time straight into the engine: several
/// 64 KiB frames per `read(2)`, each delivered from where it was read (measured in
/// docs/PERFORMANCE.md). Build on it to keep the size:
///
/// ```
/// let config = hybi_std::default_config().with_max_message_size(1 << 20);
/// assert_eq!(config.read_buffer_size, hybi_std::READ_BUFFER_SIZE);
/// ```
pub fn default_config() -> Config {
    Config::default().with_read_buffer_size(READ_BUFFER_SIZE)
}

/// The engine this crate drives, for everything not re-exported above (its error
/// types, the handshake module, frames).
pub use hybi;

/// The TLS library `wss://` and TLS servers run on (the `tls` feature), for building
/// a [`rustls::ClientConfig`] or [`rustls::ServerConfig`] of the same version.
#[cfg(feature = "tls")]
pub use rustls;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
