//! # hybi: a sans-IO WebSocket engine
//!
//! hybi implements the WebSocket protocol (RFC 6455) as a pure state machine: bytes
//! go in, events come out, and the caller decides how bytes travel and when time
//! passes. It never touches a socket, a clock or an OS random source, so it runs over
//! blocking sockets, an event loop, an async runtime, an embedded TCP stack, a fuzzer
//! or a benchmark alike. It is `no_std` (with `alloc`).
//!
//! The layers, each usable on its own:
//!
//! - [`frame`] and [`mask`]: frame headers and payload masking;
//! - [`utf8`]: incremental, fail-fast UTF-8 validation;
//! - [`handshake`]: the opening handshake for both roles;
//! - [`Connection`]: one open WebSocket, client or server.
//!
//! Over real sockets, use an adapter: `hybi-std` (blocking), `hybi-mio` (an event
//! loop) or `hybi-tokio` (async).
//!
//! ## Cargo features
//!
//! - `std` (default): links `std` for run-time CPU feature detection: SIMD UTF-8
//!   validation (simdutf8) and, on x86-64, AVX2 masking. Without it
//!   (`default-features = false`) the engine is `no_std` with `alloc`, with the same
//!   API.
//!
//! The minimum supported Rust version is 1.85 (edition 2024).
//!
//! ## A client and a server, in memory
//!
//! ```
//! use hybi::{CloseCode, Config, Connection, Event, Next, State};
//!
//! // The caller supplies randomness for the client's mask keys.
//! let mut client = Connection::client(Config::default(), |buf: &mut [u8]| buf.fill(0x5a));
//! let mut server = Connection::server(Config::default());
//!
//! // Move whatever one side wants to write into the other side, as a transport would.
//! fn pump(from: &mut Connection, to: &mut Connection) {
//!     while let Some(output) = from.transmit() {
//!         to.receive(output.bytes());
//!         let n = output.bytes().len();
//!         output.consume(n);
//!     }
//! }
//!
//! client.send_text("hello, hybi").unwrap();
//! pump(&mut client, &mut server);
//! // The one drive rule: call next() until it says Wait. Events borrow the engine's
//! // buffer (no copy, no allocation), and the outbox replies while they do.
//! loop {
//!     match server.next() {
//!         Next::Event(Event::Text(text), mut out) => out.send_text(&text.to_uppercase()).unwrap(),
//!         Next::Event(..) => {}
//!         Next::Write(output) => {
//!             client.receive(output.bytes());
//!             let n = output.bytes().len();
//!             output.consume(n);
//!         }
//!         Next::Wait(_) | Next::Close(_) => break,
//!     }
//! }
//! assert!(matches!(client.next(), Next::Event(Event::Text("HELLO, HYBI"), _)));
//!
//! // The closing handshake: the client closes, the server echoes the code.
//! client.close(CloseCode::NORMAL, "done").unwrap();
//! pump(&mut client, &mut server);
//! match server.next() {
//!     Next::Event(Event::Close(frame), _) => assert_eq!((frame.code, frame.reason), (CloseCode::NORMAL, "done")),
//!     other => panic!("{other:?}"),
//! }
//! pump(&mut server, &mut client);
//! assert!(matches!(client.next(), Next::Event(Event::Close(_), _)));
//! assert_eq!(server.state(), State::Closed);
//! // The server closes TCP first (RFC 6455 §7.1.1).
//! assert!(matches!(server.next(), Next::Close(closed) if closed.is_clean()));
//! ```
#![no_std]
// Two measured fast paths use `unsafe`: `utf8::validated_str` and the AVX2 masking
// loops in `mask::avx2`; nothing else may.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod close;
pub mod config;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod event;
pub mod frame;
pub mod handshake;
#[cfg(feature = "std")]
mod io;
pub mod mask;
mod output;
pub mod random;
pub mod time;
pub mod utf8;

pub use close::CloseCode;
pub use config::{Config, Delivery};
pub use connection::{Closed, Connection, Next, Outbox, Role, State, Transmit};
pub use error::{Error, ProtocolError, SendError};
pub use event::{CloseFrame, Event, Fragment, MessageKind};
pub use frame::{FrameHeader, OpCode};
pub use random::RandomSource;
pub use time::Instant;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
