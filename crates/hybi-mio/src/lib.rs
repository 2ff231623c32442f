//! # hybi-mio: many WebSocket connections per thread
//!
//! An event-loop adapter that drives the [`hybi`] engine over [mio]: one loop per
//! worker thread (all accepting from one listening socket, each connection placed on
//! the loop that holds fewest), thousands of connections each. Every protocol decision
//! stays in the engine ([`hybi::Connection::next`] says what to do); this crate moves
//! bytes and time.
//!
//! - [`Server::builder`]: routes by path ([`route`](ServerBuilder::route), a
//!   [`fallback`](ServerBuilder::fallback), 404 otherwise), plain HTTP
//!   [`page`](ServerBuilder::page)s, a [`should_upgrade`](ServerBuilder::should_upgrade)
//!   hook that can reject or add headers and one per path
//!   ([`should_upgrade_at`](ServerBuilder::should_upgrade_at), which also rejects a path
//!   that has no route), limits on connections, handshake time and size. Binding an
//!   address that another socket holds fails with `AddrInUse` (unless every server on
//!   it opts into `SO_REUSEPORT`, [`ServerBuilder::reuse_port`]).
//! - [`Server`]: [`local_addr`](Server::local_addr), [`run`](Server::run) /
//!   [`join`](Server::join) to block while it serves, [`shutdown(grace)`](Server::shutdown)
//!   (close 1001, wait up to `grace` for the closing handshakes). hybi-std's blocking
//!   server has the same builder methods and lifetime, the same route rules (the
//!   route table is `hybi_std::adapter::Routes`, shared), a `ConnId` and a `Room`.
//! - [`Handler`]: callbacks per connection (open, text, binary, fragment, ping, pong,
//!   close, backpressure), each handed a [`Context`] to reply through.
//! - [`Sender`]: a `Clone + Send + Sync` handle to any connection, usable from any
//!   thread (broadcast to a room), woken into the loop through a `mio::Waker`, with a
//!   [`Completion`] that says when the message reached the kernel. It sends what a
//!   [`Context`] sends (whole messages, fragments, pings, pongs, close), runs
//!   closures on the connection's loop with its `Context` ([`Sender::run`]), and, for
//!   a client connection still connecting, holds what is sent until the open, in
//!   order and bounded ([before the open](Sender#before-the-connection-opens)).
//! - Backpressure: a high-water mark on each connection's queued output, and a
//!   [`SlowPeer`] policy: pause reading or drop.
//! - Timers from the engine (keepalive, pong deadline, idle and close timeouts) on a
//!   heap per loop; graceful shutdown with close 1001.
//! - Client connections on the same loops ([`Server::connect`]), or one on a loop of
//!   its own, without a server: [`connect`] returns a [`Client`] (its [`Sender`],
//!   `join`, `shutdown`).
//! - TLS (the `tls` feature, on by default: rustls with the ring provider) in the
//!   same loops, no extra thread: [`ServerBuilder::tls`] serves wss:// and https://,
//!   `wss://` URLs connect over TLS ([`ClientOptions::tls_config`], Mozilla's roots
//!   by default), and [`Handler::on_connect_error`] says why a client's handshake
//!   failed ([`ConnectError::Tls`]). See [TLS](#tls).
//!
//! The hot path allocates nothing per message: the engine reads straight into
//! buffers lent from a per-worker pool (returned when a connection goes idle, so idle
//! connections hold none), events borrow them, replies are encoded into a pooled
//! output buffer and written with one vectored write per batch. Because receive
//! buffers are pooled, hybi-mio uses larger ones than the engine's default (see
//! [`default_config`]).
//!
//! ## Cargo features
//!
//! - `tls` (default): `wss://` clients and TLS servers on rustls 0.23 with the ring
//!   provider, in the event loop: [`ServerBuilder::tls`], [`ClientOptions::tls_config`];
//!   `wss://` without a config checks servers against Mozilla's roots (webpki-roots,
//!   through hybi-std).
//! - `redis` (off): rooms shared by several processes or machines through Redis
//!   pub/sub (`Room::bridged`, `RedisBridge`, hybi-std's bridge); delivery across nodes
//!   is at most once, as Redis pub/sub is.
//! - `test-redis` (off): runs the tests against a real `redis-server` (on PATH).
//!
//! The minimum supported Rust version is 1.85 (edition 2024).
//!
//! ## An echo server and a chat room
//!
//! ```no_run
//! use hybi_mio::{Context, Handler, Room, Server};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
//!         let _ = ctx.send_text(text);
//!     }
//! }
//!
//! struct Member(Room);
//! impl Handler for Member {
//!     fn on_open(&mut self, ctx: &mut Context<'_>) {
//!         self.0.join(ctx);
//!     }
//!     fn on_text(&mut self, _ctx: &mut Context<'_>, text: &str) {
//!         self.0.broadcast(text);
//!     }
//!     fn on_close(&mut self, ctx: &mut Context<'_>, _code: hybi::CloseCode, _reason: &str) {
//!         self.0.leave(ctx.id());
//!     }
//! }
//!
//! let room = Room::new();
//! let server = Server::builder()
//!     .route("/echo", |_req| Echo)
//!     .route("/chat", move |_req| Member(room.clone()))
//!     .bind("127.0.0.1:9003")?;
//! server.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## A client
//!
//! ```no_run
//! use hybi_mio::{CloseCode, Context, Handler};
//!
//! struct Print;
//! impl Handler for Print {
//!     fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
//!         println!("{text}");
//!         let _ = ctx.close(CloseCode::NORMAL, "thanks");
//!     }
//! }
//!
//! let client = hybi_mio::connect("ws://127.0.0.1:9003/echo", Print)?;
//! // Sent once the connection opens.
//! client.sender().send_text("hello")?;
//! client.join(); // returns once the connection is over
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## TLS
//!
//! With the `tls` feature each connection may carry a rustls session, driven by the
//! loop's readiness like the socket under it: its handshake runs inside the first
//! reads and writes of the WebSocket handshake, within the same
//! [`handshake_timeout`](ServerBuilder::handshake_timeout), and the connection reads
//! and writes plaintext through it. At most one write's worth of records (64 KiB)
//! waits in rustls; the rest stays in the engine, under the high-water mark. Closing
//! sends `close_notify` before the FIN. An idle wss:// connection costs about 9 KB
//! per end (a plain one about 4.6 KB).
//!
//! A server answers a plain-HTTP client on its TLS port with `400 Bad Request` in
//! plain text, drops clients whose handshake fails (garbage, truncated, stalled, an
//! alert), and logs each at info level. A client's failures are typed: a certificate
//! that is not trusted or not valid for the URL's host, a server that answered in
//! plain HTTP ([`TlsError::NotTls`]), an alert, a timeout.
//!
//! ```no_run
//! use hybi_mio::{ClientOptions, ConnectError, Context, Handler, Server};
//!
//! struct Client;
//! impl Handler for Client {
//!     fn on_open(&mut self, ctx: &mut Context<'_>) {
//!         let _ = ctx.send_text("hello over wss");
//!     }
//!     fn on_connect_error(&mut self, _ctx: &mut Context<'_>, error: ConnectError) {
//!         if let ConnectError::Tls(tls) = &error {
//!             eprintln!("certificate problem: {:?}", tls.certificate());
//!         }
//!         eprintln!("could not connect: {error}");
//!     }
//! }
//!
//! let event_loop = Server::builder().workers(1).start()?;
//! // Mozilla's roots; `.tls_config(Arc::new(config))` for your own.
//! event_loop.connect_with(ClientOptions::new("wss://example.com/chat"), Client)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accepting;
mod app;
mod balance;
mod client;
mod conn;
mod connecting;
mod env;
mod handler;
mod mailbox;
mod open;
mod outgoing;
mod pool;
mod room;
mod sender;
mod server;
mod socket;
#[cfg_attr(not(feature = "tls"), path = "tls_off.rs")]
mod tls;
mod worker;

pub use app::SlowPeer;
pub use client::{Client, ClientOptions, ConnectError, connect, connect_with};
pub use handler::{Context, Handler};
#[cfg(feature = "redis")]
pub use hybi_std::redis::{
    BridgeOptions, BridgeStats, CHANNEL_PREFIX, RedisBridge, RemoteMessage, RemoteSink,
    encode_envelope,
};
pub use outgoing::{Completion, Outgoing, SendFailure};
pub use room::Room;
pub use sender::{ConnId, Sender};
pub use server::{Server, ServerBuilder};

pub use hybi::handshake::{Decision, Rejected, UpgradeRequest};
pub use hybi::{CloseCode, Config, Delivery, Fragment, MessageKind};
/// A client connection's handshake response, from [`Context::response`] in `on_open`
/// (the same type as hybi-std's and hybi-tokio's).
pub use hybi_std::Response;

/// The engine this crate drives, for everything not re-exported above (deflate
/// settings, error types, the handshake module).
pub use hybi;

/// rustls, for the TLS configs [`ServerBuilder::tls`] and
/// [`ClientOptions::tls_config`] take (the `tls` feature).
#[cfg(feature = "tls")]
pub use rustls;

/// Why a TLS handshake failed (in [`ConnectError::Tls`]), and the client config
/// `wss://` uses when none is given (the `tls` feature).
#[cfg(feature = "tls")]
pub use hybi_std::{TlsError, default_client_config};

/// The receive buffer size of [`default_config`]: 256 KiB.
pub const READ_BUFFER_SIZE: usize = 256 << 10;

/// The engine settings servers and clients start from: [`Config::default`] with a
/// [`READ_BUFFER_SIZE`] receive buffer instead of 64 KiB.
///
/// A worker lends receive buffers from a pool only while a connection has bytes in
/// flight, so their size does not add to the memory of idle connections, and a few
/// buffers serve thousands of connections. A buffer well above the largest common
/// message keeps a whole frame in one read: 64 KiB messages are then delivered from
/// the buffer they were read into (no copy into a message buffer), and reads end on
/// frame boundaries, so a busy connection rarely holds a buffer across turns of the
/// loop. Measured with 64 KiB echoes over loopback (1,000 connections × 16 in
/// flight): 74% → 98% of a raw TCP echo, and the server's peak RSS fell from 39 MiB to
/// 3 MiB. Build on it to keep the size:
///
/// ```
/// let config = hybi_mio::default_config().with_max_message_size(1 << 20);
/// assert_eq!(config.read_buffer_size, hybi_mio::READ_BUFFER_SIZE);
/// ```
pub fn default_config() -> Config {
    Config::default().with_read_buffer_size(READ_BUFFER_SIZE)
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The workspace README's examples (a hybi-std client, a hybi-mio server), compiled
/// as doctests here, where both crates are at hand.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct WorkspaceReadmeDoctests;
