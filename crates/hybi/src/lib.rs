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
//! ## A client and a server, in memory
//!
//! ```
//! use hybi::{CloseCode, Config, Connection, Event, State};
//!
//! // The caller supplies randomness for the client's mask keys.
//! let mut client = Connection::client(Config::default(), |buf: &mut [u8]| buf.fill(0x5a));
//! let mut server = Connection::server(Config::default());
//!
//! // Move whatever one side wants to write into the other side.
//! fn pump(from: &mut Connection, to: &mut Connection) {
//!     while from.has_output() {
//!         let bytes = from.pending_output();
//!         let n = bytes.len();
//!         to.receive(bytes);
//!         from.consume_output(n);
//!     }
//! }
//!
//! client.send_text("hello, hybi").unwrap();
//! pump(&mut client, &mut server);
//! // Events borrow the engine's buffer: no copy, no allocation.
//! while let Some(event) = server.poll_event().unwrap() {
//!     if let Event::Text(text) = event {
//!         let reply = text.to_uppercase();
//!         server.send_text(&reply).unwrap();
//!     }
//! }
//! pump(&mut server, &mut client);
//! assert_eq!(client.poll_event().unwrap(), Some(Event::Text("HELLO, HYBI")));
//!
//! // The closing handshake: the client closes, the server echoes the code.
//! client.close(CloseCode::NORMAL, "done").unwrap();
//! pump(&mut client, &mut server);
//! match server.poll_event().unwrap() {
//!     Some(Event::Close(frame)) => assert_eq!((frame.code, frame.reason), (CloseCode::NORMAL, "done")),
//!     other => panic!("{other:?}"),
//! }
//! pump(&mut server, &mut client);
//! assert!(matches!(client.poll_event().unwrap(), Some(Event::Close(_))));
//! assert_eq!(server.state(), State::Closed);
//! // The server closes TCP first (RFC 6455 §7.1.1).
//! assert!(server.should_close_transport());
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
