//! The server's side of the opening handshake (RFC 6455 §4.2): read and validate the
//! client's request, let the application accept or reject it, and write the answer.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::head::{HeadError, HeadReader, Limits, RequestHead};
use super::headers::{HeaderError, Headers, Repeated, check_header, is_token, trim_ows};
use super::key::{Key, KeyError};
use super::response::{InvalidReply, Response};
use crate::config::Config;
use crate::connection::Connection;
use crate::deflate::{Agreement, NegotiationError, Offer};

/// Headers the 101 response writes itself, so [`UpgradeRequest::accept`] may not set
/// them.
const ACCEPT_RESERVED: &[&str] = &[
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Version",
    "Content-Length",
    "Transfer-Encoding",
];

/// A server handshake in progress: reads the client's request as it arrives.
///
/// Hand every byte read from the transport to [`receive`](Self::receive) until it
/// returns the validated [`UpgradeRequest`] or a [`RequestError`], whose
/// [`response`](RequestError::response) is the exact HTTP answer to write before
/// closing the transport.
#[derive(Debug)]
pub struct ServerHandshake {
    reader: HeadReader,
}

impl Default for ServerHandshake {
    fn default() -> ServerHandshake {
        ServerHandshake::new()
    }
}

impl ServerHandshake {
    /// A handshake with the default [`Limits`] (16 KiB of head, 64 fields).
    pub fn new() -> ServerHandshake {
        ServerHandshake::with_limits(Limits::default())
    }

    /// A handshake that reads at most `limits` of request head.
    pub fn with_limits(limits: Limits) -> ServerHandshake {
        ServerHandshake {
            reader: HeadReader::new(limits),
        }
    }

    /// Adds bytes read from the client; they may arrive in pieces of any size, down to
    /// one byte at a time.
    ///
    /// Returns `Ok(None)` while the request head is incomplete, then once either the
    /// validated request (holding the bytes that followed its head, which belong to
    /// the connection) or why it is refused. Never reads more than
    /// [`Limits::max_header_bytes`] as head; never treats a byte after the head as part
    /// of it. Later calls return [`RequestError::Finished`].
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<UpgradeRequest>, RequestError> {
        if self.reader.is_finished() {
            return Err(RequestError::Finished);
        }
        match self.reader.receive::<RequestHead>(data) {
            Ok(None) => Ok(None),
            Ok(Some((head, rest))) => UpgradeRequest::validate(head, rest).map(Some),
            Err(e) => Err(RequestError::Head(e)),
        }
    }

    /// Like [`receive`](Self::receive), but a request that does not ask for a
    /// WebSocket at all (no `Upgrade: websocket` header: a browser fetching a page, a
    /// health check) comes back as [`Incoming::Http`] instead of an error, for a server
    /// that also answers plain HTTP. Every other request is validated as by `receive`.
    pub fn receive_any(&mut self, data: &[u8]) -> Result<Option<Incoming>, RequestError> {
        if self.reader.is_finished() {
            return Err(RequestError::Finished);
        }
        match self.reader.receive::<RequestHead>(data) {
            Ok(None) => Ok(None),
            Ok(Some((head, rest))) => {
                if head.headers.contains("Upgrade") {
                    UpgradeRequest::validate(head, rest).map(|r| Some(Incoming::Upgrade(r)))
                } else {
                    HttpRequest::new(head).map(|r| Some(Incoming::Http(r)))
                }
            }
            Err(e) => Err(RequestError::Head(e)),
        }
    }

    /// Bytes received and held while the head is incomplete.
    pub fn buffered(&self) -> usize {
        self.reader.buffered()
    }
}

/// What [`ServerHandshake::receive_any`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A valid WebSocket upgrade request.
    Upgrade(UpgradeRequest),
    /// A plain HTTP request (no `Upgrade` header).
    Http(HttpRequest),
}

/// A plain HTTP request a WebSocket server received: well-formed, HTTP/1.0 or later,
/// without an `Upgrade` header. Answer it with a [`Response`] (e.g.
/// [`Response::reject`] with status 200 and a body), then close: the connection is
/// not kept alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    method: String,
    path: String,
    query: Option<String>,
    headers: Headers,
}

impl HttpRequest {
    fn new(head: RequestHead) -> Result<HttpRequest, RequestError> {
        let (path, query) = split_target(&head.target).ok_or(RequestError::Target)?;
        Ok(HttpRequest {
            path: path.to_string(),
            query: query.map(ToString::to_string),
            method: head.method,
            headers: head.headers,
        })
    }

    /// The method (`GET`, `HEAD`, ...).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path of the request target, without the query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
}

/// A valid WebSocket upgrade request (RFC 6455 §4.2.1), for the application to inspect
/// and then [`accept`](Self::accept) or reject (with [`Response::reject`]).
///
/// Every value here passed validation: the method is `GET`, the version HTTP/1.1 or
/// later, there is exactly one non-empty `Host`, `Upgrade` holds `websocket`,
/// `Connection` holds `Upgrade`, `Sec-WebSocket-Version` is 13, there is exactly one
/// `Sec-WebSocket-Key` decoding to 16 bytes, every offered subprotocol is a token, and
/// there is at most one `Origin`, in UTF-8, and no request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeRequest {
    method: String,
    target: String,
    path: String,
    query: Option<String>,
    headers: Headers,
    key: Key,
    protocols: Vec<String>,
    leftover: Vec<u8>,
}

impl UpgradeRequest {
    /// Validates a request another HTTP stack already parsed (hyper, say, or any
    /// server that performs the upgrade itself): its method, request target and
    /// header fields. The checks are those of [`ServerHandshake::receive`]; the HTTP
    /// version is taken to be 1.1, since only HTTP/1.1 has upgrades.
    ///
    /// On success, [`accept`](Self::accept) gives the 101 status and the header fields
    /// for that stack to send (see [`Response::headers`]); on failure,
    /// [`RequestError::response`] gives the status, fields and body of the refusal.
    ///
    /// ```
    /// use hybi::handshake::UpgradeRequest;
    ///
    /// let headers = [
    ///     ("host", "example.com"),
    ///     ("upgrade", "websocket"),
    ///     ("connection", "Upgrade"),
    ///     ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ///     ("sec-websocket-version", "13"),
    /// ];
    /// let request = UpgradeRequest::from_parts("GET", "/chat", headers).unwrap();
    /// let accepted = request.accept(None, &[]).unwrap();
    /// let response = accepted.response();
    /// assert_eq!(response.status(), 101);
    /// assert_eq!(
    ///     response.headers().get_str("Sec-WebSocket-Accept"),
    ///     Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    /// );
    /// ```
    pub fn from_parts<I, N, V>(
        method: &str,
        target: &str,
        headers: I,
    ) -> Result<UpgradeRequest, RequestError>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        if !target.bytes().all(|b| b > b' ' && b != 0x7f) {
            return Err(RequestError::Head(HeadError::Token));
        }
        let mut list = Headers::default();
        for (name, value) in headers {
            // Trimmed as httparse trims, so both paths see the same values.
            let (name, value) = (name.as_ref(), trim_ows(value.as_ref()));
            check_header(name, value).map_err(|e| {
                RequestError::Head(match e {
                    HeaderError::InvalidValue(_) => HeadError::HeaderValue,
                    _ => HeadError::HeaderName,
                })
            })?;
            list.push(name, value);
        }
        let head = RequestHead {
            method: method.to_string(),
            target: target.to_string(),
            minor_version: 1,
            headers: list,
        };
        UpgradeRequest::validate(head, Vec::new())
    }

    /// RFC 6455 §4.2.1: the checks of the client's handshake, in an order that gives
    /// the most useful answer: 405 for another method, 426 for another (or no)
    /// version of an otherwise well-formed upgrade, 400 for the rest.
    fn validate(head: RequestHead, leftover: Vec<u8>) -> Result<UpgradeRequest, RequestError> {
        let RequestHead {
            method,
            target,
            minor_version,
            headers,
        } = head;
        if method != "GET" {
            return Err(RequestError::Method);
        }
        if minor_version < 1 {
            return Err(RequestError::HttpVersion);
        }
        let (path, query) = split_target(&target).ok_or(RequestError::Target)?;
        match single(&headers, "Host")? {
            None => return Err(RequestError::MissingHost),
            Some(h) if h.is_empty() || core::str::from_utf8(h).is_err() => {
                return Err(RequestError::InvalidHost);
            }
            Some(_) => {}
        }
        if !headers.has_token("Upgrade", "websocket") {
            return Err(RequestError::NotWebSocketUpgrade);
        }
        if !headers.has_token("Connection", "upgrade") {
            return Err(RequestError::ConnectionNotUpgrade);
        }
        if single(&headers, "Sec-WebSocket-Version")? != Some(&b"13"[..]) {
            return Err(RequestError::UnsupportedVersion);
        }
        let key = match single(&headers, "Sec-WebSocket-Key")? {
            None => return Err(RequestError::MissingKey),
            Some(k) => Key::parse(k).map_err(RequestError::InvalidKey)?,
        };
        let mut protocols = Vec::new();
        for p in headers.tokens("Sec-WebSocket-Protocol") {
            match core::str::from_utf8(p) {
                Ok(p) if is_token(p) => protocols.push(p.to_string()),
                _ => return Err(RequestError::InvalidProtocol),
            }
        }
        // A body would be taken for WebSocket frames: refuse rather than guess.
        let body = headers.contains("Transfer-Encoding")
            || headers.get_all("Content-Length").any(|v| v != b"0");
        if body {
            return Err(RequestError::UnexpectedBody);
        }
        if let Some(origin) = single(&headers, "Origin")? {
            if core::str::from_utf8(origin).is_err() {
                return Err(RequestError::InvalidOrigin);
            }
        }
        Ok(UpgradeRequest {
            method,
            path: path.to_string(),
            query: query.map(ToString::to_string),
            target,
            headers,
            key,
            protocols,
            leftover,
        })
    }

    /// The request method (always `GET`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent: `/chat?room=1`, or an absolute URI.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path of the target, without the query: `/chat`. Always starts with `/`;
    /// percent-encodings are left as they are.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query of the target, after the `?`: `room=1`; `None` without a `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// Every header field of the request.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The `Host` header (present, single, non-empty UTF-8).
    pub fn host(&self) -> &str {
        self.headers.get_str("Host").unwrap_or_default()
    }

    /// The `Origin` header, which browsers always send (RFC 6455 §4.2.1 step 7 and
    /// §10.2): check it to refuse pages from other sites. `None` when absent
    /// (non-browser clients).
    pub fn origin(&self) -> Option<&str> {
        self.headers.get_str("Origin")
    }

    /// The `Sec-WebSocket-Key`.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The subprotocols the client offered, most preferred first, from every
    /// `Sec-WebSocket-Protocol` field (comma-separated, trimmed, each a token).
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The permessage-deflate offers the client made, in its order of preference,
    /// each parsed or refused (RFC 7692 §7.1).
    pub fn deflate_offers(&self) -> Vec<Result<Offer, NegotiationError>> {
        crate::deflate::negotiate::parse_offers(self.extensions())
    }

    /// The raw values of every `Sec-WebSocket-Extensions` field. Of the extensions,
    /// hybi negotiates permessage-deflate ([`deflate_offers`](Self::deflate_offers)).
    pub fn extensions(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.headers.get_all("Sec-WebSocket-Extensions")
    }

    /// Bytes the client sent after its request head; they belong to the connection
    /// and [`ServerAccepted::into_connection`] feeds them to it.
    pub fn leftover(&self) -> &[u8] {
        &self.leftover
    }

    /// Accepts the upgrade, optionally with one of the offered
    /// [`protocols`](Self::protocols), and extra response header fields
    /// (`Set-Cookie`, ...).
    ///
    /// A `protocol` the client did not offer is refused with
    /// [`InvalidReply::UnofferedProtocol`] rather than sent (the client would fail the
    /// connection); so is a malformed extra header or one the 101 writes itself
    /// (`Upgrade`, `Connection`, `Sec-WebSocket-*`, `Content-Length`,
    /// `Transfer-Encoding`). The request is left as it was, so it can still be
    /// rejected.
    pub fn accept(
        &self,
        protocol: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<ServerAccepted, InvalidReply> {
        self.accept_with(protocol, headers, None)
    }

    /// [`accept`](Self::accept), with the permessage-deflate parameters agreed (from
    /// [`deflate_offers`](Self::deflate_offers) and
    /// [`negotiate::choose`](crate::deflate::negotiate::choose)): the 101 carries them
    /// in `Sec-WebSocket-Extensions` and the connection compresses by them.
    pub fn accept_with(
        &self,
        protocol: Option<&str>,
        headers: &[(&str, &str)],
        deflate: Option<Agreement>,
    ) -> Result<ServerAccepted, InvalidReply> {
        if let Some(p) = protocol {
            if !self.protocols.iter().any(|o| o == p) {
                return Err(InvalidReply::UnofferedProtocol(p.to_string()));
            }
        }
        let mut list = Headers::default();
        list.push("Upgrade", b"websocket");
        list.push("Connection", b"Upgrade");
        list.push(
            "Sec-WebSocket-Accept",
            self.key.accept().as_str().as_bytes(),
        );
        if let Some(p) = protocol {
            list.push("Sec-WebSocket-Protocol", p.as_bytes());
        }
        for (name, value) in headers {
            list.push_checked(name, value.as_bytes(), ACCEPT_RESERVED)?;
        }
        if let Some(agreement) = deflate {
            list.push("Sec-WebSocket-Extensions", agreement.response().as_bytes());
        }
        Ok(ServerAccepted {
            response: Response::switching_protocols(list),
            protocol: protocol.map(ToString::to_string),
            leftover: self.leftover.clone(),
            deflate,
        })
    }
}

/// The value of the field `name` if it appears at most once.
fn single<'a>(headers: &'a Headers, name: &'static str) -> Result<Option<&'a [u8]>, RequestError> {
    headers
        .get_unique(name)
        .map_err(|Repeated| RequestError::DuplicateHeader(name))
}

/// Splits a request target into path and query. Accepts the origin form (`/p?q`) and
/// the absolute form with a `ws`, `wss`, `http` or `https` scheme (RFC 7230 §5.3.2
/// requires servers to accept it); refuses fragments (RFC 6455 §3) and other forms.
fn split_target(target: &str) -> Option<(&str, Option<&str>)> {
    if target.contains('#') {
        return None;
    }
    let resource = if target.starts_with('/') {
        target
    } else {
        let (scheme, rest) = target.split_once("://")?;
        if !["ws", "wss", "http", "https"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme))
        {
            return None;
        }
        let start = rest.find(['/', '?']).unwrap_or(rest.len());
        if start == 0 {
            return None;
        }
        &rest[start..]
    };
    let (path, query) = match resource.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (resource, None),
    };
    Some((if path.is_empty() { "/" } else { path }, query))
}

/// An accepted handshake: the 101 response to send and the connection it opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAccepted {
    response: Response,
    protocol: Option<String>,
    leftover: Vec<u8>,
    deflate: Option<Agreement>,
}

impl ServerAccepted {
    /// The `101 Switching Protocols` response: write
    /// [`to_bytes`](Response::to_bytes), or hand its status and header fields to the
    /// HTTP stack that parsed the request.
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// The subprotocol in use, if one was chosen.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The permessage-deflate parameters agreed, if the extension is on.
    pub fn deflate(&self) -> Option<&Agreement> {
        self.deflate.as_ref()
    }

    /// The open connection in the server role, with the bytes the client sent after
    /// its request head already received into it. Write the
    /// [`response`](Self::response) first: the connection's output follows it.
    pub fn into_connection(self, config: Config) -> Connection {
        let deflate = config.deflate.unwrap_or_default();
        let mut connection = Connection::server(config);
        if let Some(agreement) = self.deflate {
            connection.enable_deflate(agreement, deflate);
        }
        connection.receive(&self.leftover);
        connection
    }
}

/// Why a client's request is refused, with the HTTP answer it gets
/// ([`response`](Self::response)). After writing it, close the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The head is malformed (400) or exceeds the [`Limits`] (431).
    Head(HeadError),
    /// The method is not `GET` (405, with `Allow: GET`).
    Method,
    /// HTTP/1.0: the upgrade needs HTTP/1.1 or later (400).
    HttpVersion,
    /// The request target is neither `/path?query` nor an absolute `ws`, `wss`, `http`
    /// or `https` URI, or it has a `#fragment` (400).
    Target,
    /// No `Host` header (400).
    MissingHost,
    /// An empty or non-UTF-8 `Host` header (400).
    InvalidHost,
    /// A header that may appear only once appears more often: `Host`,
    /// `Sec-WebSocket-Key`, `Sec-WebSocket-Version` or `Origin` (400).
    DuplicateHeader(&'static str),
    /// No `Upgrade` header with the token `websocket` (400).
    NotWebSocketUpgrade,
    /// No `Connection` header with the token `Upgrade` (400).
    ConnectionNotUpgrade,
    /// `Sec-WebSocket-Version` missing or not 13 (426, with
    /// `Sec-WebSocket-Version: 13`, RFC 6455 §4.4).
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key` header (400).
    MissingKey,
    /// A `Sec-WebSocket-Key` that is not base64 of 16 bytes (400).
    InvalidKey(KeyError),
    /// A `Sec-WebSocket-Protocol` element that is not a token (400).
    InvalidProtocol,
    /// A non-UTF-8 `Origin` header (400).
    InvalidOrigin,
    /// A `Transfer-Encoding` or a non-zero `Content-Length`: a request body, whose bytes
    /// would otherwise be taken for WebSocket frames (400).
    UnexpectedBody,
    /// [`ServerHandshake::receive`] was called after it returned its outcome: an
    /// application bug (500).
    Finished,
}

impl RequestError {
    /// The HTTP status of the answer: 400, 405, 426, 431 (or 500 for
    /// [`Finished`](Self::Finished)).
    pub const fn status(&self) -> u16 {
        match self {
            RequestError::Head(e) if e.is_limit() => 431,
            RequestError::Method => 405,
            RequestError::UnsupportedVersion => 426,
            RequestError::Finished => 500,
            _ => 400,
        }
    }

    /// A short description, also the body of the answer.
    pub const fn reason(&self) -> &'static str {
        match self {
            RequestError::Head(e) => e.reason(),
            RequestError::Method => "WebSocket handshake must use GET",
            RequestError::HttpVersion => "WebSocket handshake needs HTTP/1.1",
            RequestError::Target => "invalid request target",
            RequestError::MissingHost => "missing Host header",
            RequestError::InvalidHost => "invalid Host header",
            RequestError::DuplicateHeader(_) => "header field repeated",
            RequestError::NotWebSocketUpgrade => "Upgrade header must contain websocket",
            RequestError::ConnectionNotUpgrade => "Connection header must contain Upgrade",
            RequestError::UnsupportedVersion => "Sec-WebSocket-Version must be 13",
            RequestError::MissingKey => "missing Sec-WebSocket-Key header",
            RequestError::InvalidKey(KeyError::NotBase64) => "Sec-WebSocket-Key is not base64",
            RequestError::InvalidKey(KeyError::WrongLength(_)) => {
                "Sec-WebSocket-Key must decode to 16 bytes"
            }
            RequestError::InvalidProtocol => "invalid Sec-WebSocket-Protocol",
            RequestError::InvalidOrigin => "invalid Origin header",
            RequestError::UnexpectedBody => "WebSocket handshake must not have a body",
            RequestError::Finished => "handshake already finished",
        }
    }

    /// The exact answer: [`status`](Self::status), `Connection: close`, the headers
    /// the status calls for (`Allow: GET` for 405; `Upgrade: websocket` and
    /// `Sec-WebSocket-Version: 13` for 426, whose `Connection` also lists `Upgrade` as
    /// RFC 7230 §6.7 asks), and the [`reason`](Self::reason) as a text body with its
    /// `Content-Length`.
    pub fn response(&self) -> Response {
        let mut headers = Headers::default();
        match self {
            RequestError::Method => {
                headers.push("Connection", b"close");
                headers.push("Allow", b"GET");
            }
            RequestError::UnsupportedVersion => {
                headers.push("Connection", b"Upgrade, close");
                headers.push("Upgrade", b"websocket");
                headers.push("Sec-WebSocket-Version", b"13");
            }
            _ => headers.push("Connection", b"close"),
        }
        headers.push("Content-Type", b"text/plain; charset=utf-8");
        Response::with_body(self.status(), headers, self.reason().as_bytes())
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::DuplicateHeader(name) => write!(f, "header {name} repeated"),
            RequestError::InvalidKey(e) => e.fmt(f),
            other => f.write_str(other.reason()),
        }?;
        write!(f, " ({})", self.status())
    }
}

impl core::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            RequestError::Head(e) => core::error::Error::source(e),
            RequestError::InvalidKey(e) => core::error::Error::source(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_path_and_query() {
        assert_eq!(split_target("/"), Some(("/", None)));
        assert_eq!(
            split_target("/chat?room=1&x"),
            Some(("/chat", Some("room=1&x")))
        );
        assert_eq!(split_target("/chat?"), Some(("/chat", Some(""))));
        assert_eq!(
            split_target("ws://example.com/a/b?c"),
            Some(("/a/b", Some("c")))
        );
        assert_eq!(split_target("HTTPS://example.com"), Some(("/", None)));
        assert_eq!(split_target("http://example.com?q"), Some(("/", Some("q"))));
        for bad in [
            "*",
            "example.com:80",
            "/a#b",
            "ftp://example.com/",
            "ws:///path",
            "",
        ] {
            assert_eq!(split_target(bad), None, "{bad:?}");
        }
    }
}

#[cfg(test)]
mod receive_any_tests {
    use super::*;

    #[test]
    fn a_plain_get_is_an_http_request_and_an_upgrade_is_validated() {
        let mut h = ServerHandshake::new();
        let got = h.receive_any(b"GET /index.html?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        let Ok(Some(Incoming::Http(req))) = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            (req.method(), req.path(), req.query()),
            ("GET", "/index.html", Some("x=1"))
        );

        let mut h = ServerHandshake::new();
        let got = h.receive_any(
            b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        assert!(matches!(got, Ok(Some(Incoming::Upgrade(_)))));

        // An upgrade that is not quite right is still refused as one.
        let mut h = ServerHandshake::new();
        let got = h.receive_any(b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
        assert_eq!(got, Err(RequestError::ConnectionNotUpgrade));
    }
}
