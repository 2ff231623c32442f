//! The opening handshake (RFC 6455 §4), client and server.
//!
//! Like the rest of the engine this does no I/O: the caller moves bytes. HTTP heads are
//! parsed with [`httparse`](https://docs.rs/httparse), incrementally (input may arrive
//! in pieces of any size) and within [`Limits`] on bytes and fields. Bytes that follow
//! a head belong to the WebSocket connection and are handed to it, never dropped.
//!
//! - **Client**: describe the request with a [`ClientRequest`], start a
//!   [`ClientHandshake`] (which draws the `Sec-WebSocket-Key` from your
//!   [`RandomSource`](crate::RandomSource)), write [`ClientHandshake::request`], feed the
//!   response to [`ClientHandshake::receive`] and, once it returns a
//!   [`ClientAccepted`], turn that into a [`Connection`](crate::Connection).
//! - **Server**: feed the request to [`ServerHandshake::receive`]; inspect the
//!   [`UpgradeRequest`] (path, query, origin, offered subprotocols, headers), then
//!   [`accept`](UpgradeRequest::accept) it (write the 101 [`Response`], then use the
//!   [`ServerAccepted::into_connection`]) or answer with [`Response::reject`]. A bad
//!   request yields a [`RequestError`] whose [`response`](RequestError::response) is the
//!   exact 400, 405, 426 or 431 to write.
//! - **Behind another HTTP stack**: [`UpgradeRequest::from_parts`] validates a request
//!   someone else parsed, and [`ServerAccepted::response`] lists the status and header
//!   fields for that stack to send.
//!
//! ## A whole handshake, in memory
//!
//! ```
//! use hybi::handshake::{ClientHandshake, ClientRequest, ServerHandshake};
//! use hybi::{Config, Event, Next};
//!
//! // Client: the request, with a key from the caller's random source.
//! let mut rng = |buf: &mut [u8]| buf.fill(0x42); // use a CSPRNG in real code
//! let request = ClientRequest::new("example.com", None, false)
//!     .path("/chat?room=rust")
//!     .protocol("chat.v2")
//!     .protocol("chat.v1")
//!     .header("Origin", "https://example.com");
//! let mut client = ClientHandshake::new(&request, &mut rng).unwrap();
//!
//! // Server: the request arrives (here in two pieces).
//! let mut server = ServerHandshake::new();
//! let (first, second) = client.request().split_at(10);
//! assert!(server.receive(first).unwrap().is_none());
//! let upgrade = server.receive(second).unwrap().expect("a whole request");
//! assert_eq!((upgrade.path(), upgrade.query()), ("/chat", Some("room=rust")));
//! assert_eq!(upgrade.origin(), Some("https://example.com"));
//! assert_eq!(upgrade.protocols(), ["chat.v2", "chat.v1"]);
//!
//! // The application accepts with a subprotocol the client offered.
//! let accepted = upgrade.accept(Some("chat.v1"), &[("X-Served-By", "hybi")]).unwrap();
//! let response = accepted.response().to_bytes();
//! let mut server_conn = accepted.into_connection(Config::default());
//!
//! // Client: the response arrives, followed at once by a first frame from the server.
//! server_conn.send_text("welcome").unwrap();
//! let mut wire = response;
//! let output = server_conn.transmit().unwrap();
//! wire.extend_from_slice(output.bytes());
//! let n = output.len();
//! output.consume(n);
//! let opened = client.receive(&wire).unwrap().expect("a whole response");
//! assert_eq!(opened.protocol(), Some("chat.v1"));
//! assert_eq!(opened.headers().get_str("x-served-by"), Some("hybi"));
//! let mut client_conn = opened.into_connection(Config::default(), rng);
//! assert!(matches!(client_conn.next(), Next::Event(Event::Text("welcome"), _)));
//!
//! // And a message the other way, through the resulting connections.
//! client_conn.send_text("hello").unwrap();
//! server_conn.receive(client_conn.transmit().unwrap().bytes());
//! assert!(matches!(server_conn.next(), Next::Event(Event::Text("hello"), _)));
//! ```

mod client;
mod decision;
mod head;
mod headers;
mod key;
mod response;
mod server;

pub use client::{
    ClientAccepted, ClientHandshake, ClientRequest, InvalidRequest, Rejected, ResponseError,
};
pub use decision::{Answer, Decision, DeflateChoice};
pub use head::{HeadError, Limits};
pub use headers::{Header, HeaderError, Headers};
pub use key::{AcceptKey, GUID, Key, KeyError, accept_key};
pub use response::{InvalidReply, Response};
pub use server::{
    HttpRequest, Incoming, RequestError, ServerAccepted, ServerHandshake, UpgradeRequest,
};
