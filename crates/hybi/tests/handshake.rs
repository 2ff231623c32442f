//! The opening handshake (RFC 6455 §4) through the public API: requests and responses
//! as bytes, every rejection, every split of the input, and client ↔ server round
//! trips into working connections.

// Test helpers outside `#[test]` functions unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{Ev, drain, take_output};

use hybi::handshake::{
    ClientAccepted, ClientHandshake, ClientRequest, HeadError, HeaderError, Headers, InvalidReply,
    InvalidRequest, Key, KeyError, Limits, Rejected, RequestError, Response, ResponseError,
    ServerHandshake, UpgradeRequest, accept_key,
};
use hybi::{Config, Connection};
use proptest::prelude::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A deterministic random source (splitmix64; a real one comes from the adapters).
fn rng(seed: u8) -> impl FnMut(&mut [u8]) + Send + 'static {
    let mut state = u64::from(seed);
    move |buf: &mut [u8]| {
        for b in buf {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *b = (z ^ (z >> 31)) as u8;
        }
    }
}

/// The request of RFC 6455 §1.3, with every line in `lines` after the request line.
fn request(request_line: &str, lines: &[&str]) -> Vec<u8> {
    let mut out = format!("{request_line}\r\n");
    for line in lines {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

const HOST: &str = "Host: server.example.com";
const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const KEY_LINE: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const VERSION: &str = "Sec-WebSocket-Version: 13";

fn valid_request() -> Vec<u8> {
    request(
        "GET /chat?room=1 HTTP/1.1",
        &[
            HOST,
            UPGRADE,
            CONNECTION,
            KEY_LINE,
            "Origin: http://example.com",
            "Sec-WebSocket-Protocol: chat, superchat",
            VERSION,
        ],
    )
}

/// A server outcome, with the bytes after the head: the request's leftover followed
/// by the pieces of input that were never fed (the caller would pass them to the
/// connection).
type ServerOutcome = Result<Option<(UpgradeRequest, Vec<u8>)>, RequestError>;

/// Feeds `input` to a server handshake in the pieces `cuts` delimit, stopping at the
/// first outcome.
fn feed_server(limits: Limits, input: &[u8], cuts: &[usize]) -> ServerOutcome {
    let mut server = ServerHandshake::with_limits(limits);
    let mut start = 0;
    for &cut in cuts.iter().chain([input.len()].iter()) {
        let cut = cut.clamp(start, input.len());
        match server.receive(&input[start..cut])? {
            None => start = cut,
            Some(request) => {
                let mut rest = request.leftover().to_vec();
                rest.extend_from_slice(&input[cut..]);
                return Ok(Some((request, rest)));
            }
        }
    }
    Ok(None)
}

/// What must not depend on the split: every field of the request and the bytes after
/// its head, or the error.
type ServerView = Result<Option<(String, Headers, Key, Vec<String>, Vec<u8>)>, RequestError>;

fn server_view(outcome: &ServerOutcome) -> ServerView {
    match outcome {
        Ok(Some((r, rest))) => Ok(Some((
            r.target().to_string(),
            r.headers().clone(),
            *r.key(),
            r.protocols().to_vec(),
            rest.clone(),
        ))),
        Ok(None) => Ok(None),
        Err(e) => Err(*e),
    }
}

/// Runs `input` through a server handshake whole, cut in two at every position, and
/// one byte at a time, and asserts the outcome is the same every time.
fn server_outcome(limits: Limits, input: &[u8]) -> Result<Option<UpgradeRequest>, RequestError> {
    let whole = feed_server(limits, input, &[]);
    let expected = server_view(&whole);
    for cut in 0..=input.len() {
        let split = feed_server(limits, input, &[cut]);
        assert_eq!(server_view(&split), expected, "cut at {cut}");
    }
    let bytes: Vec<usize> = (1..input.len()).collect();
    let trickled = feed_server(limits, input, &bytes);
    assert_eq!(server_view(&trickled), expected, "byte by byte");
    whole.map(|outcome| outcome.map(|(request, _)| request))
}

/// Parses `bytes` as an HTTP response with httparse: the head must be complete and
/// well-formed and the body exactly `Content-Length` long.
fn assert_well_formed(bytes: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let n = match res.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("not a complete response: {other:?}"),
    };
    assert_eq!(res.version, Some(1));
    let headers: Vec<(String, String)> = res
        .headers
        .iter()
        .map(|h| {
            let value = std::str::from_utf8(h.value).unwrap();
            (h.name.to_ascii_lowercase(), value.to_string())
        })
        .collect();
    let code = res.code.unwrap();
    let body = bytes[n..].to_vec();
    if code != 101 {
        let len = headers.iter().find(|(n, _)| n == "content-length").unwrap();
        assert_eq!(len.1.parse::<usize>().unwrap(), body.len());
        let connection = headers.iter().find(|(n, _)| n == "connection").unwrap();
        assert!(
            connection
                .1
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
        );
    } else {
        assert!(body.is_empty());
    }
    (code, headers, body)
}

/// Asserts `input` is refused with `expected` and `status` whatever its split, and
/// even with a frame after the head; returns the well-formed answer's headers.
fn assert_rejected(
    limits: Limits,
    input: &[u8],
    expected: RequestError,
    status: u16,
) -> Vec<(String, String)> {
    let error = server_outcome(limits, input).unwrap_err();
    assert_eq!(error, expected);
    assert_eq!(error.status(), status);
    // What follows the head cannot change the verdict.
    let mut with_frame = input.to_vec();
    with_frame.extend_from_slice(b"\x81\x85\x00\x00\x00\x00hello");
    assert_eq!(feed_server(limits, &with_frame, &[]).unwrap_err(), expected);

    let response = error.response();
    assert_eq!(response.status(), status);
    let (code, headers, body) = assert_well_formed(&response.to_bytes());
    assert_eq!(code, status);
    assert_eq!(body, error.reason().as_bytes());
    headers
}

fn has(headers: &[(String, String)], name: &str, value: &str) -> bool {
    headers.iter().any(|(n, v)| n == name && v == value)
}

// ------------------------------------------------------------------ keys

#[test]
fn rfc6455_example_key_gives_example_accept() {
    assert_eq!(accept_key(KEY.as_bytes()).as_str(), ACCEPT);
    assert_eq!(
        Key::parse(KEY.as_bytes()).unwrap().accept().as_str(),
        ACCEPT
    );
}

// ------------------------------------------------------------------ server: accepting

#[test]
fn server_accepts_rfc_example_request() {
    let mut input = valid_request();
    input.extend_from_slice(b"frames follow");
    let request = server_outcome(Limits::default(), &input).unwrap().unwrap();
    assert_eq!(request.method(), "GET");
    assert_eq!(request.target(), "/chat?room=1");
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.query(), Some("room=1"));
    assert_eq!(request.host(), "server.example.com");
    assert_eq!(request.origin(), Some("http://example.com"));
    assert_eq!(request.protocols(), ["chat", "superchat"]);
    assert_eq!(request.key().as_str(), KEY);
    assert_eq!(request.extensions().count(), 0);
    assert_eq!(request.headers().len(), 7);
    assert_eq!(request.leftover(), b"frames follow");

    let accepted = request.accept(Some("chat"), &[]).unwrap();
    let bytes = accepted.response().to_bytes();
    assert_eq!(
        bytes,
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
        )
        .as_bytes()
    );
    let (code, headers, _) = assert_well_formed(&bytes);
    assert_eq!(code, 101);
    assert!(has(&headers, "sec-websocket-accept", ACCEPT));
}

#[test]
fn server_matches_tokens_case_insensitively_in_lists() {
    let input = request(
        "GET / HTTP/1.1",
        &[
            "host: h",
            "UPGRADE: WebSocket",
            "connection: keep-alive, UPGRADE",
            "SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==",
            "sec-websocket-version: 13",
            "Sec-WebSocket-Protocol: a , b",
            "Sec-WebSocket-Protocol: c",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
        ],
    );
    let request = server_outcome(Limits::default(), &input).unwrap().unwrap();
    assert_eq!(request.protocols(), ["a", "b", "c"]);
    assert_eq!(request.query(), None);
    assert_eq!(
        request.extensions().collect::<Vec<_>>(),
        [&b"permessage-deflate; client_max_window_bits"[..]]
    );
    assert_eq!(request.headers().get("Upgrade"), Some(&b"WebSocket"[..]));
    // Accepting never enables an extension.
    let accepted = request.accept(None, &[]).unwrap();
    assert!(
        !accepted
            .response()
            .headers()
            .contains("Sec-WebSocket-Extensions")
    );
}

#[test]
fn server_accepts_absolute_form_target() {
    let input = request(
        "GET ws://server.example.com/chat?x=1 HTTP/1.1",
        &[HOST, UPGRADE, CONNECTION, KEY_LINE, VERSION],
    );
    let request = server_outcome(Limits::default(), &input).unwrap().unwrap();
    assert_eq!((request.path(), request.query()), ("/chat", Some("x=1")));
}

#[test]
fn server_parser_never_reads_past_the_head() {
    // Bytes after the blank line come back untouched, even when they look like HTTP.
    let mut input = valid_request();
    let tail = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff";
    input.extend_from_slice(tail);
    let request = server_outcome(Limits::default(), &input).unwrap().unwrap();
    assert_eq!(request.leftover(), tail);
    // And the head limit applies to the head only: a large tail is fine.
    let limits = Limits::default().with_max_header_bytes(valid_request().len());
    let mut big = valid_request();
    big.extend(std::iter::repeat_n(b'x', 10_000));
    let (request, _) = feed_server(limits, &big, &[]).unwrap().unwrap();
    assert_eq!(request.leftover().len(), 10_000);
}

#[test]
fn server_receive_after_outcome_is_an_error() {
    let mut server = ServerHandshake::new();
    assert!(server.receive(&valid_request()).unwrap().is_some());
    assert_eq!(server.receive(b"more"), Err(RequestError::Finished));
    let mut server = ServerHandshake::new();
    assert!(server.receive(b"\x00garbage\r\n").is_err());
    assert_eq!(server.receive(b""), Err(RequestError::Finished));
    assert_eq!(RequestError::Finished.status(), 500);
}

// ------------------------------------------------------------------ server: rejections

/// A minimal valid upgrade request with `request_line`, without the fields named in
/// `without`, and with the lines `extra` added.
fn upgrade(request_line: &str, without: &[&str], extra: &[&str]) -> Vec<u8> {
    let mut lines: Vec<&str> = [HOST, UPGRADE, CONNECTION, KEY_LINE, VERSION]
        .into_iter()
        .filter(|line| {
            !without
                .iter()
                .any(|name| line.starts_with(&format!("{name}:")))
        })
        .collect();
    lines.extend_from_slice(extra);
    request(request_line, &lines)
}

/// [`assert_rejected`] with the default limits.
fn rejected(input: &[u8], expected: RequestError, status: u16) -> Vec<(String, String)> {
    assert_rejected(Limits::default(), input, expected, status)
}

const GET: &str = "GET / HTTP/1.1";

#[test]
fn rejects_non_get_with_405_and_allow() {
    let headers = rejected(
        &upgrade("POST / HTTP/1.1", &[], &[]),
        RequestError::Method,
        405,
    );
    assert!(has(&headers, "allow", "GET"));
}

#[test]
fn rejects_http_1_0_with_400() {
    rejected(
        &upgrade("GET / HTTP/1.0", &[], &[]),
        RequestError::HttpVersion,
        400,
    );
}

#[test]
fn rejects_unknown_http_version_with_400() {
    let e = RequestError::Head(HeadError::Version);
    rejected(&upgrade("GET / HTTP/2.0", &[], &[]), e, 400);
}

#[test]
fn rejects_missing_host_with_400() {
    rejected(
        &upgrade(GET, &["Host"], &[]),
        RequestError::MissingHost,
        400,
    );
}

#[test]
fn rejects_empty_or_repeated_host_with_400() {
    rejected(
        &upgrade(GET, &["Host"], &["Host:"]),
        RequestError::InvalidHost,
        400,
    );
    let e = RequestError::DuplicateHeader("Host");
    rejected(&upgrade(GET, &[], &["Host: evil.example"]), e, 400);
}

#[test]
fn rejects_missing_upgrade_with_400() {
    let e = RequestError::NotWebSocketUpgrade;
    rejected(&upgrade(GET, &["Upgrade"], &[]), e, 400);
}

#[test]
fn rejects_wrong_upgrade_with_400() {
    let e = RequestError::NotWebSocketUpgrade;
    rejected(
        &upgrade(GET, &["Upgrade"], &["Upgrade: h2c, websockets"]),
        e,
        400,
    );
}

#[test]
fn rejects_missing_connection_with_400() {
    let e = RequestError::ConnectionNotUpgrade;
    rejected(&upgrade(GET, &["Connection"], &[]), e, 400);
}

#[test]
fn rejects_wrong_connection_with_400() {
    let e = RequestError::ConnectionNotUpgrade;
    let wrong = "Connection: keep-alive, upgraded";
    rejected(&upgrade(GET, &["Connection"], &[wrong]), e, 400);
}

#[test]
fn rejects_key_not_base64_with_400() {
    let e = RequestError::InvalidKey(KeyError::NotBase64);
    let bad = "Sec-WebSocket-Key: not*base64*at*all*here=";
    rejected(&upgrade(GET, &["Sec-WebSocket-Key"], &[bad]), e, 400);
}

#[test]
fn rejects_key_of_wrong_length_with_400() {
    let e = RequestError::InvalidKey(KeyError::WrongLength(15));
    let short = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j";
    rejected(&upgrade(GET, &["Sec-WebSocket-Key"], &[short]), e, 400);
}

#[test]
fn rejects_missing_key_with_400() {
    let e = RequestError::MissingKey;
    rejected(&upgrade(GET, &["Sec-WebSocket-Key"], &[]), e, 400);
}

#[test]
fn rejects_repeated_key_with_400() {
    let e = RequestError::DuplicateHeader("Sec-WebSocket-Key");
    rejected(&upgrade(GET, &[], &[KEY_LINE]), e, 400);
}

#[test]
fn rejects_wrong_version_with_426_and_version_header() {
    let e = RequestError::UnsupportedVersion;
    let old = "Sec-WebSocket-Version: 8";
    let headers = rejected(&upgrade(GET, &["Sec-WebSocket-Version"], &[old]), e, 426);
    assert!(has(&headers, "sec-websocket-version", "13"));
    assert!(has(&headers, "upgrade", "websocket"));
}

#[test]
fn rejects_missing_version_with_426_and_version_header() {
    let e = RequestError::UnsupportedVersion;
    let headers = rejected(&upgrade(GET, &["Sec-WebSocket-Version"], &[]), e, 426);
    assert!(has(&headers, "sec-websocket-version", "13"));
}

#[test]
fn rejects_invalid_subprotocol_with_400() {
    let e = RequestError::InvalidProtocol;
    rejected(
        &upgrade(GET, &[], &["Sec-WebSocket-Protocol: chat, a/b"]),
        e,
        400,
    );
}

#[test]
fn rejects_request_body_with_400() {
    for body in ["Content-Length: 5", "Transfer-Encoding: chunked"] {
        rejected(
            &upgrade(GET, &[], &[body]),
            RequestError::UnexpectedBody,
            400,
        );
    }
    let empty = upgrade(GET, &[], &["Content-Length: 0"]);
    assert!(server_outcome(Limits::default(), &empty).unwrap().is_some());
}

#[test]
fn rejects_fragment_in_target_with_400() {
    rejected(
        &upgrade("GET /chat#top HTTP/1.1", &[], &[]),
        RequestError::Target,
        400,
    );
}

#[test]
fn rejects_too_many_headers_with_431() {
    let limits = Limits::default().with_max_headers(8);
    let input = upgrade(GET, &[], &["X-A: 1", "X-B: 2", "X-C: 3"]);
    assert!(server_outcome(limits, &input).unwrap().is_some());
    let input = upgrade(GET, &[], &["X-A: 1", "X-B: 2", "X-C: 3", "X-D: 4"]);
    let e = RequestError::Head(HeadError::TooManyHeaders);
    assert_rejected(limits, &input, e, 431);
}

#[test]
fn rejects_too_many_bytes_with_431() {
    let input = valid_request();
    let fits = Limits::default().with_max_header_bytes(input.len());
    assert!(server_outcome(fits, &input).unwrap().is_some());
    let short = Limits::default().with_max_header_bytes(input.len() - 1);
    let e = RequestError::Head(HeadError::TooLarge);
    assert_rejected(short, &input, e, 431);
}

#[test]
fn rejects_endless_header_with_431_at_the_default_limit() {
    // A head that never ends is cut off at 16 KiB, however it arrives.
    let mut server = ServerHandshake::new();
    assert_eq!(server.receive(b"GET / HTTP/1.1\r\nX-Long: ").unwrap(), None);
    let chunk = [b'a'; 1000];
    let mut outcome = Ok(None);
    for _ in 0..17 {
        outcome = server.receive(&chunk);
        if outcome != Ok(None) {
            break;
        }
        assert!(server.buffered() <= 16 << 10);
    }
    assert_eq!(outcome, Err(RequestError::Head(HeadError::TooLarge)));
    assert_eq!(outcome.unwrap_err().response().status(), 431);
}

#[test]
fn rejects_garbage_with_400() {
    let cases: [(&[u8], HeadError); 4] = [
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            HeadError::Token,
        ),
        (
            b"GET / HTTP/1.1\r\n: no name\r\n\r\n",
            HeadError::HeaderName,
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\rX", HeadError::NewLine),
        (b"\r\n\r\n\r\n\r\n\r\n\r\n", HeadError::EmptyLines),
    ];
    for (input, e) in cases {
        rejected(input, RequestError::Head(e), 400);
    }
}

#[test]
fn application_rejection_is_exact() {
    let (request, _) = feed_server(Limits::default(), &valid_request(), &[])
        .unwrap()
        .unwrap();
    assert_eq!(request.origin(), Some("http://example.com"));
    let response = Response::reject(403, &[("Content-Type", "text/plain")], b"origin").unwrap();
    let bytes = response.to_bytes();
    assert_eq!(
        bytes,
        b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\n\
          Content-Length: 6\r\n\r\norigin"
    );
    let (code, _, body) = assert_well_formed(&bytes);
    assert_eq!((code, body.as_slice()), (403, &b"origin"[..]));
    let redirect = Response::reject(302, &[("Location", "/elsewhere")], b"").unwrap();
    assert_eq!(assert_well_formed(&redirect.to_bytes()).0, 302);
    assert_eq!(
        Response::reject(101, &[], b""),
        Err(InvalidReply::Status(101))
    );
}

// ------------------------------------------------------------------ server behind another stack

#[test]
fn from_parts_shares_the_validation() {
    let headers = [
        ("host", "server.example.com"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", " dGhlIHNhbXBsZSBub25jZQ==\t"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "chat, superchat"),
        ("origin", "http://example.com"),
    ];
    let request = UpgradeRequest::from_parts("GET", "/chat?room=1", headers).unwrap();
    assert_eq!((request.path(), request.query()), ("/chat", Some("room=1")));
    assert_eq!(request.protocols(), ["chat", "superchat"]);
    assert_eq!(request.leftover(), b"");
    let accepted = request.accept(Some("superchat"), &[("X-A", "1")]).unwrap();
    let response = accepted.response();
    assert_eq!(response.status(), 101);
    let listed: Vec<(&str, &[u8])> = response
        .headers()
        .iter()
        .map(|h| (h.name(), h.value()))
        .collect();
    assert_eq!(
        listed,
        [
            ("Upgrade", &b"websocket"[..]),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Accept", ACCEPT.as_bytes()),
            ("Sec-WebSocket-Protocol", b"superchat"),
            ("X-A", b"1"),
        ]
    );

    // The same rejections as the byte-level path, with status, fields and body.
    let no_version = &headers[..4];
    let e = UpgradeRequest::from_parts("GET", "/", no_version.iter().copied()).unwrap_err();
    assert_eq!(e, RequestError::UnsupportedVersion);
    let response = e.response();
    assert_eq!(response.status(), 426);
    assert_eq!(
        response.headers().get_str("Sec-WebSocket-Version"),
        Some("13")
    );
    assert_eq!(response.body(), e.reason().as_bytes());
    assert_eq!(
        UpgradeRequest::from_parts("PUT", "/", headers),
        Err(RequestError::Method)
    );
    assert_eq!(
        UpgradeRequest::from_parts("GET", "/a b", headers),
        Err(RequestError::Head(HeadError::Token))
    );
    assert_eq!(
        UpgradeRequest::from_parts("GET", "/", [("x-bad", "a\r\nb")]),
        Err(RequestError::Head(HeadError::HeaderValue))
    );
    assert_eq!(
        UpgradeRequest::from_parts("GET", "/", [("bad name", "v")]),
        Err(RequestError::Head(HeadError::HeaderName))
    );
}

// ------------------------------------------------------------------ client: the request

#[test]
fn client_request_is_exact_http() {
    let request = ClientRequest::new("server.example.com", Some(443), true)
        .path("/chat")
        .protocol("chat")
        .protocol("superchat")
        .header("Origin", "http://example.com")
        .header("Cookie", "a=b");
    // Every byte of the key comes from the caller's source.
    let handshake = ClientHandshake::new(&request, &mut |b: &mut [u8]| {
        b.copy_from_slice(b"the sample nonce")
    })
    .unwrap();
    assert_eq!(handshake.key().as_str(), KEY);
    let expected = format!(
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\nOrigin: http://example.com\r\n\
         Cookie: a=b\r\n\r\n"
    );
    assert_eq!(handshake.request(), expected.as_bytes());
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut headers);
    assert_eq!(
        req.parse(handshake.request()),
        Ok(httparse::Status::Complete(expected.len()))
    );
    assert_eq!((req.method, req.version), (Some("GET"), Some(1)));
}

#[test]
fn client_request_host_carries_non_default_port() {
    let key = |host: &str, port, secure| {
        let request = ClientRequest::new(host, port, secure);
        let handshake = ClientHandshake::new(&request, &mut rng(1)).unwrap();
        let text = String::from_utf8(handshake.request().to_vec()).unwrap();
        text.lines().nth(1).unwrap().to_string()
    };
    assert_eq!(key("a.example", None, false), "Host: a.example");
    assert_eq!(key("a.example", Some(80), false), "Host: a.example");
    assert_eq!(key("a.example", Some(8080), false), "Host: a.example:8080");
    assert_eq!(key("a.example", Some(80), true), "Host: a.example:80");
    assert_eq!(key("::1", Some(443), true), "Host: [::1]");
}

#[test]
fn client_keys_are_fresh_for_each_handshake() {
    let request = ClientRequest::new("h", None, false);
    let mut source = rng(9);
    let a = ClientHandshake::new(&request, &mut source).unwrap();
    let b = ClientHandshake::new(&request, &mut source).unwrap();
    assert_ne!(a.key(), b.key());
    assert!(Key::parse(a.key().as_str().as_bytes()).is_ok());
}

#[test]
fn client_request_refuses_what_it_cannot_write() {
    let mut source = rng(0);
    let base = || ClientRequest::new("h", None, false);
    let cases = [
        (
            base().protocol("a b"),
            InvalidRequest::Protocol("a b".into()),
        ),
        (base().protocol(""), InvalidRequest::Protocol("".into())),
        (
            base().protocol("chat").protocol("chat"),
            InvalidRequest::DuplicateProtocol("chat".into()),
        ),
        (
            base().header("Sec-WebSocket-Key", KEY),
            InvalidRequest::Header(HeaderError::Reserved("Sec-WebSocket-Key".into())),
        ),
        (
            base().header("host", "other"),
            InvalidRequest::Header(HeaderError::Reserved("host".into())),
        ),
        (
            base().header("X-Evil", "a\r\nHost: b"),
            InvalidRequest::Header(HeaderError::InvalidValue("X-Evil".into())),
        ),
        (
            base().header("X:Evil", "a"),
            InvalidRequest::Header(HeaderError::InvalidName("X:Evil".into())),
        ),
        (base().path("/a b"), InvalidRequest::Path("/a b".into())),
        (
            ClientRequest::new("bad host", None, false),
            InvalidRequest::Host("bad host".into()),
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(
            ClientHandshake::new(&request, &mut source).unwrap_err(),
            expected
        );
    }
}

// ------------------------------------------------------------------ client: the response

fn client(protocols: &[&str]) -> ClientHandshake {
    let mut request = ClientRequest::new("server.example.com", None, false).path("/chat");
    for p in protocols {
        request = request.protocol(p);
    }
    ClientHandshake::new(&request, &mut |b: &mut [u8]| {
        b.copy_from_slice(b"the sample nonce")
    })
    .unwrap()
}

fn response(lines: &[&str]) -> Vec<u8> {
    request("HTTP/1.1 101 Switching Protocols", lines)
}

const ACCEPT_LINE: &str = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

type ClientOutcome = Result<Option<ClientAccepted>, ResponseError>;

/// Feeds `input` to a client handshake in the pieces `cuts` delimit, stopping at the
/// first outcome; also returns the pieces of input that were never fed.
fn feed_client(protocols: &[&str], input: &[u8], cuts: &[usize]) -> (ClientOutcome, Vec<u8>) {
    let mut client = client(protocols);
    let mut start = 0;
    for &cut in cuts.iter().chain([input.len()].iter()) {
        match client.receive(&input[start..cut]) {
            Ok(None) => start = cut,
            outcome => return (outcome, input[cut..].to_vec()),
        }
    }
    (Ok(None), Vec::new())
}

/// What must not depend on the split: the outcome, where the bytes after the head
/// (leftover, or the body of a rejection) are followed by the bytes never fed.
type ClientView = Result<Option<(Option<String>, Headers, Vec<u8>)>, (ResponseError, Vec<u8>)>;

fn client_view((outcome, unfed): &(ClientOutcome, Vec<u8>)) -> ClientView {
    let joined = |a: &[u8]| [a, unfed.as_slice()].concat();
    match outcome {
        Ok(Some(a)) => Ok(Some((
            a.protocol().map(String::from),
            a.headers().clone(),
            joined(a.leftover()),
        ))),
        Ok(None) => Ok(None),
        Err(ResponseError::Rejected(r)) => Err((outcome.clone().unwrap_err(), joined(r.body()))),
        Err(e) => Err((e.clone(), Vec::new())),
    }
}

/// Asserts two client views agree; a rejection's fields must match and its body
/// joined with the unfed bytes must be the same.
fn assert_same_client(view: ClientView, expected: &ClientView, label: &str) {
    match (view, expected) {
        (Err((ResponseError::Rejected(a), body)), Err((ResponseError::Rejected(b), all))) => {
            let head = |r: &Rejected| (r.status(), r.reason().to_string(), r.headers().clone());
            assert_eq!(head(&a), head(b), "{label}");
            assert_eq!(&body, all, "{label}");
        }
        (view, expected) => assert_eq!(&view, expected, "{label}"),
    }
}

/// Runs `input` through a client handshake whole, cut in two at every position, and
/// one byte at a time, and asserts the outcome is the same every time.
fn client_outcome(protocols: &[&str], input: &[u8]) -> ClientOutcome {
    let whole = feed_client(protocols, input, &[]);
    let expected = client_view(&whole);
    for cut in 0..=input.len() {
        let split = feed_client(protocols, input, &[cut]);
        assert_same_client(client_view(&split), &expected, &format!("cut at {cut}"));
    }
    let bytes: Vec<usize> = (1..input.len()).collect();
    let trickled = feed_client(protocols, input, &bytes);
    assert_same_client(client_view(&trickled), &expected, "byte by byte");
    whole.0
}

#[test]
fn client_accepts_valid_response_and_keeps_leftover() {
    let mut input = response(&[
        "Upgrade: WebSocket",
        "Connection: keep-alive, upgrade",
        ACCEPT_LINE,
        "Sec-WebSocket-Protocol: chat",
        "Set-Cookie: s=1",
    ]);
    input.extend_from_slice(b"\x81\x02hi");
    let accepted = client_outcome(&["superchat", "chat"], &input)
        .unwrap()
        .unwrap();
    assert_eq!(accepted.protocol(), Some("chat"));
    assert_eq!(accepted.headers().get_str("set-cookie"), Some("s=1"));
    assert_eq!(accepted.leftover(), b"\x81\x02hi");
    let mut conn = accepted.into_connection(Config::default(), rng(3));
    assert_eq!(drain(&mut conn), [Ev::Text("hi".into())]);
}

#[test]
fn client_reports_non_101_with_status_headers_and_body() {
    let mut input = request(
        "HTTP/1.1 403 Forbidden",
        &["Content-Length: 12", "X-Why: origin"],
    );
    input.extend_from_slice(b"go away");
    match client_outcome(&[], &input) {
        Err(ResponseError::Rejected(r)) => {
            assert_eq!((r.status(), r.reason()), (403, "Forbidden"));
            assert_eq!(r.headers().get_str("x-why"), Some("origin"));
            // The body read so far: the rest may still be in flight.
            assert_eq!(r.body(), b"go away");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_rejection_takes_the_rest_of_its_body_up_to_its_length_and_4_kib() {
    let rejected = |lines: &[&str], body: &[u8]| {
        let mut input = request("HTTP/1.1 403 Forbidden", lines);
        input.extend_from_slice(body);
        match client(&[]).receive(&input) {
            Err(ResponseError::Rejected(r)) => r,
            other => panic!("{other:?}"),
        }
    };
    // The rest of a body of known length, and nothing after it.
    let mut r = rejected(&["Content-Length: 12"], b"go away");
    assert!(r.wants_body());
    r.extend_body(b", now\r\nHTTP/1.1 200 OK");
    assert_eq!(r.body_str(), Some("go away, now"));
    assert!(!r.wants_body());
    // Without a length, the body runs to the end of the connection: 4 KiB are kept.
    let mut r = rejected(&[], &[b'x'; 1000]);
    assert!(r.wants_body());
    r.extend_body(&[b'y'; 5000]);
    assert_eq!(r.body().len(), Rejected::MAX_BODY);
    assert!(!r.wants_body());
    // A long announced body is cut at 4 KiB, even if it came with the head.
    let r = rejected(&["Content-Length: 100000"], &[b'z'; 6000]);
    assert_eq!(
        (r.body().len(), r.wants_body()),
        (Rejected::MAX_BODY, false)
    );
    // No body for 304; a chunked body is kept as it came.
    let r = rejected(&[], b"");
    assert!(r.wants_body());
    let mut input = request("HTTP/1.1 304 Not Modified", &[]);
    input.extend_from_slice(b"junk");
    let Err(ResponseError::Rejected(r)) = client(&[]).receive(&input) else {
        panic!("a rejection")
    };
    assert_eq!((r.body(), r.wants_body()), (&b""[..], false));
    let r = rejected(&["Transfer-Encoding: chunked"], b"5\r\nhello\r\n");
    assert_eq!((r.body(), r.wants_body()), (&b"5\r\nhello\r\n"[..], false));
}

/// Asserts that a 101 with `lines` fails a client that offered `offered`.
fn client_fails(offered: &[&str], lines: &[&str], expected: ResponseError) {
    assert_eq!(client_outcome(offered, &response(lines)), Err(expected));
}

#[test]
fn client_fails_on_missing_or_wrong_accept() {
    client_fails(&[], &[UPGRADE, CONNECTION], ResponseError::MissingAccept);
    let wrong = "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==";
    let mismatch = ResponseError::AcceptMismatch;
    client_fails(&[], &[UPGRADE, CONNECTION, wrong], mismatch.clone());
    client_fails(
        &[],
        &[UPGRADE, CONNECTION, ACCEPT_LINE, ACCEPT_LINE],
        mismatch,
    );
}

#[test]
fn client_fails_on_missing_upgrade() {
    let e = ResponseError::NotWebSocketUpgrade;
    client_fails(&[], &[CONNECTION, ACCEPT_LINE], e.clone());
    client_fails(&[], &["Upgrade: h2c", CONNECTION, ACCEPT_LINE], e);
}

#[test]
fn client_fails_on_missing_connection() {
    let e = ResponseError::ConnectionNotUpgrade;
    client_fails(&[], &[UPGRADE, ACCEPT_LINE], e.clone());
    client_fails(&[], &[UPGRADE, "Connection: close", ACCEPT_LINE], e);
}

#[test]
fn client_fails_on_unoffered_protocol() {
    let superchat = [
        UPGRADE,
        CONNECTION,
        ACCEPT_LINE,
        "Sec-WebSocket-Protocol: superchat",
    ];
    let e = ResponseError::UnofferedProtocol("superchat".into());
    client_fails(&["chat"], &superchat, e.clone());
    client_fails(&[], &superchat, e);
    let both = [
        UPGRADE,
        CONNECTION,
        ACCEPT_LINE,
        "Sec-WebSocket-Protocol: chat, superchat",
    ];
    client_fails(
        &["chat", "superchat"],
        &both,
        ResponseError::MultipleProtocols,
    );
}

#[test]
fn client_fails_on_any_extension() {
    let deflate = "Sec-WebSocket-Extensions: permessage-deflate";
    let e = ResponseError::UnexpectedExtensions;
    client_fails(&[], &[UPGRADE, CONNECTION, ACCEPT_LINE, deflate], e);
}

#[test]
fn client_fails_on_http_1_0_switch() {
    let input = request(
        "HTTP/1.0 101 Switching Protocols",
        &[UPGRADE, CONNECTION, ACCEPT_LINE],
    );
    assert_eq!(client_outcome(&[], &input), Err(ResponseError::HttpVersion));
}

#[test]
fn client_bounds_the_response_head() {
    let input = response(&[UPGRADE, CONNECTION, ACCEPT_LINE, "X-Pad: 0123456789"]);
    let request = ClientRequest::new("h", None, false)
        .limits(Limits::default().with_max_header_bytes(input.len() - 1));
    let mut handshake = ClientHandshake::new(&request, &mut rng(0)).unwrap();
    assert_eq!(
        handshake.receive(&input),
        Err(ResponseError::Head(HeadError::TooLarge))
    );
    assert_eq!(handshake.receive(b""), Err(ResponseError::Finished));
    assert_eq!(
        client_outcome(&[], b"SSH-2.0-OpenSSH_9.6\r\n"),
        Err(ResponseError::Head(HeadError::Version))
    );
}

// ------------------------------------------------------------------ round trips

/// Runs a whole handshake in memory: `tail` is appended to the request bytes.
fn round_trip(
    request: &ClientRequest,
    tail: &[u8],
    choose: impl FnOnce(&UpgradeRequest) -> (Option<String>, Vec<(String, String)>),
) -> (UpgradeRequest, Connection, ClientAccepted) {
    let mut client = ClientHandshake::new(request, &mut rng(5)).unwrap();
    let mut bytes = client.request().to_vec();
    bytes.extend_from_slice(tail);
    let upgrade = ServerHandshake::new().receive(&bytes).unwrap().unwrap();
    let (protocol, headers) = choose(&upgrade);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let accepted = upgrade.accept(protocol.as_deref(), &headers).unwrap();
    let response = accepted.response().to_bytes();
    let server = accepted.into_connection(Config::default());
    let opened = client.receive(&response).unwrap().unwrap();
    (upgrade, server, opened)
}

#[test]
fn round_trip_negotiates_subprotocol() {
    let request = ClientRequest::new("h", None, false)
        .protocol("v3.chat")
        .protocol("v2.chat");
    let (upgrade, _, opened) = round_trip(&request, b"", |r| {
        assert_eq!(r.protocols(), ["v3.chat", "v2.chat"]);
        (Some("v2.chat".into()), vec![])
    });
    assert_eq!(opened.protocol(), Some("v2.chat"));
    // Choosing none is allowed too.
    let (_, _, opened) = round_trip(&request, b"", |_| (None, vec![]));
    assert_eq!(opened.protocol(), None);
    // An unoffered one is refused before anything is written; the request stays usable.
    assert_eq!(
        upgrade.accept(Some("v1.chat"), &[]),
        Err(InvalidReply::UnofferedProtocol("v1.chat".into()))
    );
    assert!(upgrade.accept(Some("v3.chat"), &[]).is_ok());
}

#[test]
fn round_trip_carries_extra_headers_both_ways() {
    let request = ClientRequest::new("h", Some(9000), false)
        .header("Authorization", "Bearer t0k3n")
        .header("Cookie", "session=1");
    let (upgrade, _, opened) = round_trip(&request, b"", |r| {
        assert_eq!(r.host(), "h:9000");
        assert_eq!(r.headers().get_str("authorization"), Some("Bearer t0k3n"));
        assert_eq!(r.headers().get_str("COOKIE"), Some("session=1"));
        (None, vec![("Set-Cookie".into(), "session=2".into())])
    });
    assert_eq!(opened.headers().get_str("set-cookie"), Some("session=2"));
    assert_eq!(
        upgrade.accept(None, &[("Sec-WebSocket-Accept", "x")]),
        Err(InvalidReply::Header(HeaderError::Reserved(
            "Sec-WebSocket-Accept".into()
        )))
    );
}

#[test]
fn round_trip_leftover_reaches_both_connections() {
    // A client frame sent right behind the request (the engine encodes it).
    let mut early = Connection::client(Config::default(), rng(7));
    early.send_text("early bird").unwrap();
    let frame = take_output(&mut early);

    let request = ClientRequest::new("h", None, false);
    let mut client = ClientHandshake::new(&request, &mut rng(5)).unwrap();
    let mut bytes = client.request().to_vec();
    bytes.extend_from_slice(&frame);
    let upgrade = ServerHandshake::new().receive(&bytes).unwrap().unwrap();
    assert_eq!(upgrade.leftover(), frame.as_slice());
    let accepted = upgrade.accept(None, &[]).unwrap();
    let mut response = accepted.response().to_bytes();
    let mut server = accepted.into_connection(Config::default());
    assert_eq!(drain(&mut server), [Ev::Text("early bird".into())]);

    // A server frame right behind the 101, in the same read.
    server.send_binary(b"\x00\x01").unwrap();
    response.extend(take_output(&mut server));
    let mut client = client
        .receive(&response)
        .unwrap()
        .unwrap()
        .into_connection(Config::default(), rng(8));
    assert_eq!(drain(&mut client), [Ev::Binary(b"\x00\x01".to_vec())]);
}

// ------------------------------------------------------------------ properties

/// A header line from a small vocabulary, some of it hostile.
fn header_line() -> impl Strategy<Value = Vec<u8>> {
    let names = prop_oneof![
        Just("Host".to_string()),
        Just("Upgrade".to_string()),
        Just("Connection".to_string()),
        Just("Sec-WebSocket-Key".to_string()),
        Just("Sec-WebSocket-Version".to_string()),
        Just("Sec-WebSocket-Protocol".to_string()),
        "[A-Za-z-]{1,12}",
        "[ -~]{0,6}",
    ];
    let values = prop_oneof![
        Just("websocket".to_string()),
        Just("Upgrade".to_string()),
        Just(KEY.to_string()),
        Just("13".to_string()),
        "[ -~]{0,24}",
    ];
    (names, values, prop::collection::vec(any::<u8>(), 0..3)).prop_map(|(n, v, noise)| {
        let mut line = format!("{n}: {v}").into_bytes();
        line.extend(noise);
        line.extend_from_slice(b"\r\n");
        line
    })
}

/// The outcome must be one of: need more, a 4xx with a well-formed answer, or a
/// request whose leftover is exactly what followed the head.
fn check_server_outcome(input: &[u8], outcome: ServerOutcome) {
    match outcome {
        Ok(None) => {}
        Ok(Some((request, rest))) => {
            assert!(input.ends_with(&rest));
            assert!(rest.starts_with(request.leftover()));
        }
        Err(e) => {
            assert!(matches!(e.status(), 400 | 405 | 426 | 431), "{e:?}");
            let (code, _, _) = assert_well_formed(&e.response().to_bytes());
            assert_eq!(code, e.status());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_random_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(0usize..600, 0..6),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let outcome = feed_server(Limits::default().with_max_header_bytes(400), &input, &cuts);
        check_server_outcome(&input, outcome);
        let mut client = client(&["chat"]);
        let _ = client.receive(&input);
    }

    #[test]
    fn prop_random_header_blocks_never_panic(
        method in prop_oneof![Just("GET".to_string()), Just("POST".to_string()), "[A-Z]{1,5}"],
        version in prop_oneof![Just("HTTP/1.1".to_string()), Just("HTTP/1.0".to_string()), "[ -~]{0,9}"],
        lines in prop::collection::vec(header_line(), 0..12),
        end in prop_oneof![Just(&b"\r\n"[..]), Just(&b""[..]), Just(&b"\n"[..])],
        cuts in prop::collection::vec(0usize..800, 0..6),
    ) {
        let mut input = format!("{method} /x {version}\r\n").into_bytes();
        for line in &lines {
            input.extend_from_slice(line);
        }
        input.extend_from_slice(end);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let limits = Limits::default().with_max_headers(10);
        let whole = feed_server(limits, &input, &[]);
        let split = feed_server(limits, &input, &cuts);
        prop_assert_eq!(server_view(&whole), server_view(&split));
        check_server_outcome(&input, whole);
    }

    #[test]
    fn prop_valid_requests_with_random_splits(
        path in "/[a-z0-9/._~-]{0,20}(\\?[a-z0-9=&]{0,12})?",
        protocols in prop::collection::btree_set("[a-z][a-z0-9.]{0,8}", 0..4),
        extra in prop::collection::vec(("X-[A-Za-z]{1,8}", "[!-~]([ -~]{0,14}[!-~])?"), 0..5),
        tail in prop::collection::vec(any::<u8>(), 0..40),
        seed in any::<u8>(),
        cuts in prop::collection::vec(0usize..400, 0..8),
    ) {
        let mut request = ClientRequest::new("example.com", Some(8080), false).path(&path);
        for p in &protocols {
            request = request.protocol(p);
        }
        for (n, v) in &extra {
            request = request.header(n, v);
        }
        let handshake = ClientHandshake::new(&request, &mut rng(seed)).unwrap();
        let mut input = handshake.request().to_vec();
        input.extend_from_slice(&tail);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let (upgrade, rest) = feed_server(Limits::default(), &input, &cuts).unwrap().unwrap();
        prop_assert_eq!(upgrade.target(), path.as_str());
        prop_assert_eq!(upgrade.host(), "example.com:8080");
        prop_assert_eq!(upgrade.key(), handshake.key());
        let offered: Vec<&String> = protocols.iter().collect();
        prop_assert_eq!(upgrade.protocols().iter().collect::<Vec<_>>(), offered);
        for (n, v) in &extra {
            prop_assert!(upgrade.headers().get_all(n).any(|got| got == v.as_bytes()));
        }
        prop_assert_eq!(rest, tail);
    }
}
