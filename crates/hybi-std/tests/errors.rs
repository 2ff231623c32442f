//! Errors as users see them: a chain (`Display`, then `source()`, then its source...)
//! says each thing once, and a refused handshake hands the client the server's status,
//! headers and body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use hybi::handshake::{
    ClientHandshake, ClientRequest, HeadError, HeaderError, InvalidReply, InvalidRequest, KeyError,
    RequestError, ResponseError,
};
use hybi::{ProtocolError, SendError};
use hybi_std::{ClientBuilder, Decision, Error, HandshakeError};

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

/// An error with a cause, as an application's transport might have.
#[derive(Debug)]
struct Outer(Inner);
#[derive(Debug)]
struct Inner;
impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the tunnel broke")
    }
}
impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the proxy hung up")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
impl std::error::Error for Inner {}

/// The server's 403, as the engine reports it.
fn rejected_by_engine() -> ResponseError {
    let request = ClientRequest::new("example.com", None, false);
    let mut handshake = ClientHandshake::new(&request, &mut |b: &mut [u8]| b.fill(7)).unwrap();
    handshake
        .receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 12\r\n\r\nmembers only")
        .unwrap_err()
}

#[test]
fn error_chains_say_each_thing_once() {
    // The case that printed "server answered 403 Forbidden" three times.
    let e = Error::Handshake(HandshakeError::Response(rejected_by_engine()));
    assert_eq!(
        assert_says_each_thing_once(&e),
        ["handshake failed: server answered 403 Forbidden"]
    );

    let errors: Vec<Error> = vec![
        Error::Url("ftp://x: not a ws:// or wss:// URL".into()),
        Error::Dns(io::Error::new(io::ErrorKind::NotFound, "no such host")),
        Error::Connect(io::Error::from(io::ErrorKind::ConnectionRefused)),
        Error::Handshake(HandshakeError::Response(ResponseError::Head(
            HeadError::Status,
        ))),
        Error::Handshake(HandshakeError::InvalidRequest(InvalidRequest::Header(
            HeaderError::InvalidName("a b".into()),
        ))),
        Error::Handshake(HandshakeError::Request(RequestError::InvalidKey(
            KeyError::NotBase64,
        ))),
        Error::Handshake(HandshakeError::Request(RequestError::Head(
            HeadError::TooLarge,
        ))),
        Error::Handshake(HandshakeError::InvalidReply(InvalidReply::Header(
            HeaderError::Reserved("Upgrade".into()),
        ))),
        Error::Handshake(HandshakeError::Timeout),
        Error::Protocol(hybi::Error::Protocol(ProtocolError::ReservedBits)),
        Error::Protocol(hybi::Error::PongTimeout),
        Error::Send(SendError::Closed),
        Error::Io(io::Error::other(Outer(Inner))),
        #[cfg(feature = "tls")]
        Error::Tls(hybi_std::TlsError::Rustls(
            hybi_std::rustls::Error::InvalidCertificate(
                hybi_std::rustls::CertificateError::UnknownIssuer,
            ),
        )),
        #[cfg(feature = "tls")]
        Error::Tls(hybi_std::TlsError::NotTls),
    ];
    for e in &errors {
        let messages = assert_says_each_thing_once(e);
        // `{}` alone says what went wrong, not just where.
        assert!(
            messages[0].contains(": ") || messages.len() == 1,
            "{messages:?}"
        );
    }
    // Display includes the wrapped error; the chain goes on with that error's cause.
    assert_eq!(
        chain(&errors[12]),
        ["I/O error: the tunnel broke", "the proxy hung up"]
    );
    assert_eq!(
        chain(&errors[5]),
        ["handshake failed: request refused: Sec-WebSocket-Key is not base64 (400)"]
    );
    assert_eq!(
        chain(&errors[9]),
        ["connection failed: protocol error: reserved bits set (close code 1002)"]
    );
    // The engine's own wrappers alike.
    for e in [
        &hybi::Error::Protocol(ProtocolError::InvalidUtf8) as &(dyn std::error::Error + 'static),
        &ResponseError::Head(HeadError::HeaderName),
        &RequestError::InvalidKey(KeyError::WrongLength(3)),
        &InvalidRequest::Header(HeaderError::InvalidValue("X".into())),
        &InvalidReply::Header(HeaderError::InvalidName("".into())),
    ] {
        assert_eq!(assert_says_each_thing_once(e).len(), 1);
    }
}

/// A server that reads the request head, then answers with `head`, then after a
/// moment with `rest`, then keeps the connection open (`linger`) or closes it.
fn refusing_server(head: &'static [u8], rest: Vec<u8>, linger: Duration) -> String {
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
        let _ = tcp.write_all(&rest);
        thread::sleep(linger);
    });
    format!("ws://{addr}/private")
}

#[test]
fn a_refusal_gives_the_client_its_status_headers_and_whole_body() {
    // The body comes in two writes; the server then keeps the connection open: the
    // client stops at its Content-Length.
    let url = refusing_server(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 29\r\nX-Reason: origin\r\n\r\nmembers",
        b" only, says the server".to_vec(),
        Duration::from_secs(5),
    );
    let started = Instant::now();
    let e = hybi_std::connect(&url).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{e}");
    let r = e.rejection().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!((r.status(), r.reason()), (403, "Forbidden"));
    assert_eq!(r.headers().get_str("x-reason"), Some("origin"));
    assert_eq!(r.body_str(), Some("members only, says the server"));
    assert!(matches!(&e, Error::Handshake(h) if h.status() == Some(403)));
    assert_eq!(assert_says_each_thing_once(&e).len(), 1);
}

#[test]
fn a_refusal_without_a_length_is_read_to_the_end_and_kept_to_4_kib() {
    let url = refusing_server(
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy",
        vec![b'.'; 10_000],
        Duration::ZERO,
    );
    let e = ClientBuilder::new(&url)
        .handshake_timeout(Duration::from_secs(5))
        .connect()
        .unwrap_err();
    let r = e.rejection().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(r.status(), 503);
    assert_eq!(r.body().len(), hybi::handshake::Rejected::MAX_BODY);
    assert!(r.body().starts_with(b"busy...."));
}

#[test]
fn a_successful_handshake_tells_its_status_headers_and_subprotocol() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let ws = hybi_std::accept_with(tcp, |_| {
            Decision::accept()
                .with_protocol("chat")
                .with_header("X-Served-By", "hybi")
        });
        ws.map(drop)
    });
    let (_ws, response) = ClientBuilder::new(&format!("ws://{addr}/"))
        .protocol("chat")
        .connect()
        .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(
        (response.protocol(), response.subprotocol()),
        (Some("chat"), Some("chat"))
    );
    assert_eq!(response.header("x-served-by"), Some("hybi"));
    assert_eq!(response.header("upgrade"), Some("websocket"));
    assert!(response.headers().contains("Sec-WebSocket-Accept"));
    assert_eq!(response.extensions(), None);
    server.join().unwrap().unwrap();
}
