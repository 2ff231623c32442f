//! The `server_handshake` and `client_handshake` targets: arbitrary bytes, in chunks
//! the input chooses, into `ServerHandshake::receive` / `ClientHandshake::receive`.
//!
//! Input layout: `[split][bytes...]`. `split` seeds the chunk sizes (0: one chunk);
//! its top bit selects small [`Limits`] (512 bytes, 8 fields) instead of the defaults.
//!
//! Invariants (besides never panicking):
//! - the outcome arrives exactly when the head is complete (httparse agrees on where
//!   the head ends), and the bytes handed over after it (`leftover`, or a rejection's
//!   `body`) are exactly the input's bytes after the head;
//! - afterwards `receive` only says `Finished`;
//! - the outcome does not depend on the split when the input read ends with a line end
//!   or is at most 1 KiB (what `HeadReader` guarantees);
//! - server: an error's `response()` is well-formed HTTP/1.1 with the error's 4xx
//!   status, `Connection: close`, the headers its status calls for and an exact
//!   `Content-Length`; an accepted request has a method, path, host and key as
//!   validated, and accepting it gives a 101 whose `Sec-WebSocket-Accept` is
//!   `accept_key` of the key sent, with only offered subprotocols accepted;
//! - server, behind another HTTP stack: `UpgradeRequest::from_parts` on the method,
//!   target and fields httparse read from the same head reaches the same verdict as
//!   `receive` (the same request, or the same error), for HTTP/1.1 heads;
//! - client: a 101 is accepted only with our accept key, an offered (or no)
//!   subprotocol and no extensions; a non-101 is `Rejected` with its status and the
//!   bytes after the head as its body, up to the body's end (its `Content-Length`,
//!   `Rejected::MAX_BODY`, none for 1xx, 204 and 304).

use hybi::handshake::{
    ClientHandshake, ClientRequest, HeadError, Limits, Rejected, RequestError, ResponseError,
    ServerHandshake, UpgradeRequest, accept_key,
};

/// The key the client target's handshake uses: RFC 6455 §1.3's nonce.
pub const NONCE: &[u8; 16] = b"the sample nonce";
/// `Sec-WebSocket-Accept` for [`NONCE`]'s key.
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// Subprotocols the client target offers.
pub const OFFERED: [&str; 2] = ["chat", "superchat"];

const SIZES: [usize; 12] = [1, 2, 3, 4, 7, 16, 31, 64, 200, 512, 1025, 4096];

/// Splits `data` into chunks from the seed `split`.
fn chunks(split: u8, data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut state = u32::from(split) | 0x5a00;
    let mut rest = data;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if split & 0x7F == 0 {
            rest.len()
        } else {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            SIZES[(state % SIZES.len() as u32) as usize].min(rest.len())
        };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

fn limits(split: u8) -> Limits {
    if split & 0x80 != 0 {
        Limits::default()
            .with_max_header_bytes(512)
            .with_max_headers(8)
    } else {
        Limits::default()
    }
}

/// How httparse sees the head at the start of `buf`, read as the engine reads it (the
/// first `max_header_bytes` bytes, `max_headers` fields).
fn httparse_head(
    buf: &[u8],
    limits: Limits,
    request: bool,
) -> Result<Option<usize>, httparse::Error> {
    let window = &buf[..buf.len().min(limits.max_header_bytes)];
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let status = if request {
        httparse::Request::new(&mut headers).parse(window)?
    } else {
        httparse::Response::new(&mut headers).parse(window)?
    };
    Ok(match status {
        httparse::Status::Complete(n) => Some(n),
        httparse::Status::Partial => None,
    })
}

/// Number of empty lines before the start line (the engine refuses more than 4).
fn leading_empty_lines(mut buf: &[u8]) -> usize {
    let mut n = 0;
    loop {
        buf = match buf {
            [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] => rest,
            _ => return n,
        };
        n += 1;
    }
}

/// The outcome of one server handshake, reduced to what must not depend on the split.
#[derive(Debug, PartialEq, Eq)]
enum ServerOutcome {
    Pending,
    Accepted { leftover: Vec<u8> },
    Refused(RequestError),
}

/// Feeds `data` in chunks; returns the outcome and how many bytes were fed.
fn server_feed(split: u8, data: &[u8]) -> (ServerOutcome, usize) {
    let limits = limits(split);
    let mut hs = ServerHandshake::with_limits(limits);
    let mut fed = 0;
    for chunk in chunks(split, data) {
        let before = fed;
        fed += chunk.len();
        match hs.receive(chunk) {
            Ok(None) => {
                assert!(
                    hs.buffered() == fed,
                    "bytes held {} != fed {fed}",
                    hs.buffered()
                );
            }
            Ok(Some(req)) => {
                check_request(&req, &data[..fed], &data[..before], limits);
                let outcome = ServerOutcome::Accepted {
                    leftover: req.leftover().to_vec(),
                };
                assert_eq!(hs.receive(b"x"), Err(RequestError::Finished));
                assert_eq!(hs.buffered(), 0);
                return (outcome, fed);
            }
            Err(e) => {
                check_request_error(&e, &data[..fed], limits);
                assert_eq!(hs.receive(b"x"), Err(RequestError::Finished));
                assert_eq!(hs.buffered(), 0);
                return (ServerOutcome::Refused(e), fed);
            }
        }
    }
    // Still waiting: the head is really incomplete and within the limits.
    assert!(
        fed <= limits.max_header_bytes,
        "more than the limit held without an error"
    );
    if leading_empty_lines(data) <= 4 {
        assert!(
            !matches!(httparse_head(data, limits, true), Ok(Some(_))),
            "a complete head is still pending"
        );
    }
    (ServerOutcome::Pending, fed)
}

/// Runs the server handshake target on one input.
pub fn run_server(data: &[u8]) {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let (outcome, fed) = server_feed(split, data);
    let read = &data[..fed];
    // The same bytes in one piece give the same outcome (when the guarantee applies).
    if split & 0x7F != 0 && (read.ends_with(b"\n") || read.len() <= 1024) {
        let (whole, _) = server_feed(split & 0x80, read);
        assert_eq!(whole, outcome, "outcome depends on the split");
    }
}

/// `UpgradeRequest::from_parts` on the head httparse reads from `read`, for HTTP/1.1
/// heads (it takes the version to be 1.1).
fn from_parts(read: &[u8], limits: Limits) -> Option<Result<UpgradeRequest, RequestError>> {
    let window = &read[..read.len().min(limits.max_header_bytes)];
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(window), Ok(httparse::Status::Complete(_))) || req.version != Some(1) {
        return None;
    }
    let fields = req.headers.iter().map(|h| (h.name, h.value));
    Some(UpgradeRequest::from_parts(req.method?, req.path?, fields))
}

fn check_request(
    req: &hybi::handshake::UpgradeRequest,
    read: &[u8],
    before: &[u8],
    limits: Limits,
) {
    // The head ends where httparse says, and everything after it is handed over.
    let n = match httparse_head(read, limits, true) {
        Ok(Some(n)) => n,
        other => panic!("accepted, but httparse says {other:?}"),
    };
    assert_eq!(
        req.leftover(),
        &read[n..],
        "leftover is not the bytes after the head"
    );
    // The head was not complete before the last chunk.
    assert!(
        !matches!(httparse_head(before, limits, true), Ok(Some(_))),
        "head was complete a chunk earlier"
    );
    assert_eq!(req.method(), "GET");
    assert!(req.path().starts_with('/'));
    assert!(!req.host().is_empty());
    assert!(req.target().bytes().all(|b| b > b' ' && b != 0x7f));
    // Accepting answers with the hash of the key as the client sent it.
    // A panic in these oracles is the finding: an accepted request carries its key
    // and can be accepted.
    let sent_key = req.headers().get("Sec-WebSocket-Key").expect("key header"); // ok: oracle
    let accepted = req.accept(None, &[]).expect("accept without a subprotocol"); // ok: oracle
    let response = accepted.response();
    assert_eq!(response.status(), 101);
    let want = accept_key(sent_key);
    assert_eq!(
        response.headers().get_str("Sec-WebSocket-Accept"),
        Some(want.as_str())
    );
    assert_eq!(req.key().accept().as_str(), want.as_str());
    let bytes = response.to_bytes();
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    assert_eq!(
        parsed.parse(&bytes),
        Ok(httparse::Status::Complete(bytes.len()))
    );
    assert_eq!(parsed.code, Some(101));
    let got = parsed
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Accept"))
        .map(|h| h.value)
        .collect::<Vec<_>>();
    assert_eq!(got, [want.as_str().as_bytes()]);
    // Subprotocols: any offered one can be chosen; an unoffered one is refused.
    for p in req.protocols() {
        let a = req.accept(Some(p), &[]).expect("an offered subprotocol"); // ok: oracle
        assert_eq!(a.protocol(), Some(p.as_str()));
        assert_eq!(
            a.response().headers().get_str("Sec-WebSocket-Protocol"),
            Some(p.as_str())
        );
    }
    if !req.protocols().iter().any(|p| p == "zz-not-offered") {
        assert!(req.accept(Some("zz-not-offered"), &[]).is_err());
    }
    // The same head through `from_parts`: the same request.
    match from_parts(read, limits) {
        Some(Ok(other)) => {
            assert_eq!(other.method(), req.method());
            assert_eq!(other.target(), req.target());
            assert_eq!(other.path(), req.path());
            assert_eq!(other.query(), req.query());
            assert_eq!(other.headers(), req.headers());
            assert_eq!(other.key(), req.key());
            assert_eq!(other.protocols(), req.protocols());
            assert!(other.leftover().is_empty());
        }
        Some(Err(e)) => panic!("receive accepts, from_parts refuses: {e:?}"),
        None => panic!("accepted head that is not HTTP/1.1"),
    }
    let leftover = req.leftover().to_vec();
    let conn = accepted.into_connection(hybi::Config::default());
    assert_eq!(conn.buffered_input(), leftover.len());
}

fn check_request_error(e: &RequestError, read: &[u8], limits: Limits) {
    assert_ne!(*e, RequestError::Finished);
    let status = e.status();
    assert!((400..500).contains(&status), "status {status} for {e:?}");
    match e {
        RequestError::Head(HeadError::TooLarge) => {
            assert!(
                read.len() > limits.max_header_bytes,
                "too large at {} bytes",
                read.len()
            );
        }
        RequestError::Head(HeadError::EmptyLines) => assert!(leading_empty_lines(read) > 4),
        RequestError::Head(HeadError::TooManyHeaders) => {
            assert_eq!(
                httparse_head(read, limits, true),
                Err(httparse::Error::TooManyHeaders)
            );
        }
        RequestError::Head(_) => {
            assert!(
                httparse_head(read, limits, true).is_err(),
                "{e:?}, httparse disagrees"
            );
        }
        _ => {
            // Refused after reading a whole head.
            assert!(
                matches!(httparse_head(read, limits, true), Ok(Some(_))),
                "{e:?} without a whole head"
            );
            // The same head through `from_parts`: the same refusal.
            if let Some(other) = from_parts(read, limits) {
                assert_eq!(other.err(), Some(*e), "from_parts disagrees with receive");
            }
        }
    }
    // The answer is well-formed HTTP/1.1 with its status, and an exact body.
    let response = e.response();
    assert_eq!(response.status(), status);
    let bytes = response.to_bytes();
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(n)) = parsed.parse(&bytes) else {
        panic!(
            "error response does not parse: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    };
    assert_eq!(parsed.code, Some(status));
    assert_eq!(parsed.version, Some(1));
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    // hybi wrote this response: a missing or malformed Content-Length is the finding.
    let length: usize = header("Content-Length")
        .and_then(|v| core::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .expect("a numeric Content-Length"); // ok: oracle
    assert_eq!(
        n + length,
        bytes.len(),
        "Content-Length is not the body's length"
    );
    assert!(
        header("Connection")
            .is_some_and(|v| v.windows(5).any(|w| w.eq_ignore_ascii_case(b"close")))
    );
    match status {
        405 => assert_eq!(header("Allow"), Some(&b"GET"[..])),
        426 => assert_eq!(header("Sec-WebSocket-Version"), Some(&b"13"[..])),
        _ => {}
    }
}

/// The outcome of one client handshake, reduced to what must not depend on the split.
#[derive(Debug, PartialEq, Eq)]
enum ClientOutcome {
    Pending,
    Accepted {
        protocol: Option<String>,
        leftover: Vec<u8>,
    },
    Failed(ResponseError),
}

fn client_feed(split: u8, data: &[u8]) -> (ClientOutcome, usize) {
    let limits = limits(split);
    let mut request = ClientRequest::new("server.example.com", None, false).limits(limits);
    for p in OFFERED {
        request = request.protocol(p);
    }
    let mut rng = |buf: &mut [u8]| buf.copy_from_slice(&NONCE[..buf.len()]);
    // The harness builds a valid request: its rejection is the finding.
    let mut hs = ClientHandshake::new(&request, &mut rng).expect("a valid request"); // ok: oracle
    assert_eq!(hs.key().accept().as_str(), ACCEPT);
    let mut fed = 0;
    for chunk in chunks(split, data) {
        let before = fed;
        fed += chunk.len();
        let read = &data[..fed];
        let outcome = match hs.receive(chunk) {
            Ok(None) => continue,
            Ok(Some(acc)) => {
                let n = check_head_end(read, &data[..before], limits);
                assert_eq!(
                    acc.leftover(),
                    &read[n..],
                    "leftover is not the bytes after the head"
                );
                let headers = acc.headers();
                assert_eq!(headers.get_str("Sec-WebSocket-Accept"), Some(ACCEPT));
                assert!(!headers.contains("Sec-WebSocket-Extensions"));
                assert!(headers.has_token("Upgrade", "websocket"));
                assert!(headers.has_token("Connection", "upgrade"));
                if let Some(p) = acc.protocol() {
                    assert!(OFFERED.contains(&p), "unoffered subprotocol {p:?} accepted");
                }
                let status = parse_status(read, limits);
                assert_eq!(status, 101);
                ClientOutcome::Accepted {
                    protocol: acc.protocol().map(str::to_string),
                    leftover: acc.leftover().to_vec(),
                }
            }
            Err(e) => {
                assert_ne!(e, ResponseError::Finished);
                match &e {
                    ResponseError::Head(HeadError::TooLarge) => {
                        assert!(read.len() > limits.max_header_bytes)
                    }
                    ResponseError::Head(HeadError::EmptyLines) => {
                        assert!(leading_empty_lines(read) > 4)
                    }
                    ResponseError::Head(_) => {
                        assert!(httparse_head(read, limits, false).is_err(), "{e:?}")
                    }
                    ResponseError::Rejected(r) => {
                        let n = check_head_end(read, &data[..before], limits);
                        assert_ne!(r.status(), 101);
                        assert_eq!(r.status(), parse_status(read, limits));
                        // The body is the bytes after the head, cut only where it
                        // ends: at its length, at 4 KiB, or at once for a status
                        // without one (or a chunked body, kept as it came).
                        let (body, after) = (r.body(), &read[n..]);
                        assert!(body.len() <= Rejected::MAX_BODY, "{}", body.len());
                        assert_eq!(
                            body,
                            &after[..body.len()],
                            "body is not the bytes after the head"
                        );
                        if body.len() < after.len() {
                            assert!(
                                !r.wants_body(),
                                "body cut short: {} of {}",
                                body.len(),
                                after.len()
                            );
                        }
                    }
                    _ => {
                        check_head_end(read, &data[..before], limits);
                        assert_eq!(parse_status(read, limits), 101);
                    }
                }
                ClientOutcome::Failed(e)
            }
        };
        assert_eq!(hs.receive(b"x"), Err(ResponseError::Finished));
        return (outcome, fed);
    }
    (ClientOutcome::Pending, fed)
}

/// The head ends in `read` where httparse says, and had not ended in `before`.
fn check_head_end(read: &[u8], before: &[u8], limits: Limits) -> usize {
    let n = match httparse_head(read, limits, false) {
        Ok(Some(n)) => n,
        other => panic!("a whole head, but httparse says {other:?}"),
    };
    assert!(
        !matches!(httparse_head(before, limits, false), Ok(Some(_))),
        "head was complete a chunk earlier"
    );
    n
}

fn parse_status(read: &[u8], limits: Limits) -> u16 {
    let window = &read[..read.len().min(limits.max_header_bytes)];
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut r = httparse::Response::new(&mut headers);
    let _ = r.parse(window);
    r.code.expect("a status code") // ok: oracle: hybi wrote this status line
}

/// Runs the client handshake target on one input.
pub fn run_client(data: &[u8]) {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let (outcome, fed) = client_feed(split, data);
    let read = &data[..fed];
    if split & 0x7F != 0 && (read.ends_with(b"\n") || read.len() <= 1024) {
        let (whole, _) = client_feed(split & 0x80, read);
        assert_eq!(whole, outcome, "outcome depends on the split");
    }
}
