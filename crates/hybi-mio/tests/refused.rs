//! A refused upgrade on the event loop: the client's handler hears a [`ConnectError`]
//! with the server's status, headers and body, and the error's chain says each thing
//! once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use hybi::handshake::{HeaderError, InvalidRequest, ResponseError};
use hybi_mio::{ClientOptions, ConnectError, Context, Handler, SendFailure, Server};

/// Every message of the chain, outermost first.
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        out.push(e.to_string());
        next = e.source();
    }
    out
}

/// Asserts that no message of the chain says again what another one said.
fn assert_says_each_thing_once(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let messages = chain(e);
    for (i, outer) in messages.iter().enumerate() {
        for inner in &messages[i + 1..] {
            assert!(!outer.contains(inner.as_str()), "repeated: {messages:?}");
        }
    }
    messages
}

/// Reports how the connection attempt ended.
struct Client(mpsc::Sender<Result<(), ConnectError>>);

impl Handler for Client {
    fn on_open(&mut self, _: &mut Context<'_>) {
        let _ = self.0.send(Ok(()));
    }
    fn on_connect_error(&mut self, _: &mut Context<'_>, error: ConnectError) {
        let _ = self.0.send(Err(error));
    }
}

/// A server that reads the request head, answers `head`, after a moment `rest`, and
/// then keeps the connection open for a while.
fn refusing_server(head: &'static [u8], rest: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = tcp.read(&mut buf).unwrap();
            assert!(n > 0, "the client hung up");
            request.extend_from_slice(&buf[..n]);
        }
        tcp.write_all(head).unwrap();
        thread::sleep(Duration::from_millis(100));
        let _ = tcp.write_all(rest);
        thread::sleep(Duration::from_secs(5));
    });
    format!("ws://{addr}/private")
}

#[test]
fn a_refused_client_hears_the_status_headers_and_whole_body() {
    let url = refusing_server(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 29\r\nX-Reason: origin\r\n\r\nmembers",
        b" only, says the server",
    );
    let event_loop = Server::builder().workers(1).start().unwrap();
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let options = ClientOptions::new(&url).handshake_timeout(Duration::from_secs(5));
    event_loop.connect_with(options, Client(tx)).unwrap();
    let heard = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the client hung");
    // It stopped at the body's length, not at the handshake timeout.
    assert!(started.elapsed() < Duration::from_secs(2));
    let e = heard.expect_err("the server refused");
    let r = e.rejection().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!((r.status(), r.reason()), (403, "Forbidden"));
    assert_eq!(r.headers().get_str("x-reason"), Some("origin"));
    assert_eq!(r.body_str(), Some("members only, says the server"));
    assert_eq!(
        assert_says_each_thing_once(&e),
        ["handshake failed: server answered 403 Forbidden"]
    );
    event_loop.shutdown(Duration::from_millis(100));
}

#[test]
fn connect_errors_and_send_failures_say_each_thing_once() {
    let errors = [
        ConnectError::Url("ftp://x: not a ws:// or wss:// URL".into()),
        ConnectError::Dns(io::Error::new(io::ErrorKind::NotFound, "no such host")),
        ConnectError::Connect(io::Error::from(io::ErrorKind::ConnectionRefused)),
        ConnectError::Request(InvalidRequest::Header(HeaderError::InvalidName(
            "a b".into(),
        ))),
        ConnectError::Response(ResponseError::MissingAccept),
        ConnectError::Io(io::Error::from(io::ErrorKind::ConnectionReset)),
        ConnectError::Closed,
        ConnectError::Timeout,
        #[cfg(feature = "tls")]
        ConnectError::Tls(hybi_mio::TlsError::NotTls),
    ];
    for e in &errors {
        let messages = assert_says_each_thing_once(e);
        assert_eq!(messages.len(), 1, "{messages:?}");
    }
    assert_eq!(
        errors[3].to_string(),
        "bad request: invalid header name \"a b\""
    );
    assert!(errors[4].rejection().is_none());
    let refused = SendFailure::Refused(hybi::SendError::Closed);
    assert_eq!(
        assert_says_each_thing_once(&refused),
        ["refused: the connection is closing or closed"]
    );
}
