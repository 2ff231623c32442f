//! # hybi-std: blocking WebSockets over std sockets
//!
//! A thin adapter that drives the [`hybi`] engine over blocking `std::io` streams:
//! every protocol decision stays in the engine; this crate moves bytes and time.
//!
//! - Clients: [`connect`] or a [`ClientBuilder`] (subprotocols, headers, timeouts,
//!   engine [`Config`]); [`ClientBuilder::connect_with_stream`] runs over any stream
//!   (TLS, Unix socket).
//! - Servers: [`accept`] / [`accept_with`] on a stream you accepted, or the
//!   thread-per-connection [`Server`] with routes and [`Handler`] callbacks.
//! - The socket: [`WebSocket`] reads messages (answering pings, running the keepalive
//!   and close timers), sends text, binary and fragments, closes with a code and
//!   reason, and splits into a [`Reader`] and a [`Writer`] for two threads.
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
//! ## Server
//!
//! ```no_run
//! use hybi_std::{Error, Message};
//! use std::net::TcpListener;
//!
//! let listener = TcpListener::bind("127.0.0.1:9002")?;
//! for stream in listener.incoming() {
//!     std::thread::spawn(move || -> hybi_std::Result<()> {
//!         let mut ws = hybi_std::accept(stream?)?;
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

mod accept;
mod client;
mod clock;
mod error;
mod message;
mod server;
mod socket;
mod split;
mod stream;
mod workers;

pub use accept::{Acceptor, accept, accept_with};
pub use client::{ClientBuilder, Response, connect};
pub use error::{Error, HandshakeError, Result};
pub use message::{CloseInfo, Message};
pub use server::{Handler, Peer, Server, ServerBuilder, ServerHandle};
pub use socket::WebSocket;
pub use split::{Reader, Writer};
pub use stream::{Stream, TryClone, Untimed};

pub use hybi::handshake::{Decision, Headers, Limits, UpgradeRequest};
pub use hybi::{CloseCode, Config, Delivery, Event, MessageKind, SendError, State};

/// The engine this crate drives, for everything not re-exported above (its error
/// types, the handshake module, frames).
pub use hybi;
