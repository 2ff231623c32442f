//! The client's side of the opening handshake (RFC 6455 §4.1): build the upgrade
//! request, then validate the server's response as it arrives.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::head::{HeadError, HeadReader, Limits, ResponseHead};
use super::headers::{HeaderError, Headers, is_token, write_header};
use super::key::{AcceptKey, Key};
use crate::config::Config;
use crate::connection::Connection;
use crate::deflate::{Agreement, DeflateConfig, NegotiationError, negotiate};
use crate::random::RandomSource;

/// Headers the request writes itself, so [`ClientRequest::header`] may not set them.
const RESERVED: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];

/// What a client asks for: where to connect, which resource, which subprotocols, and
/// any extra header fields (`Origin`, `Authorization`, `Cookie`, ...).
///
/// The setters only record; [`ClientHandshake::new`] checks everything at once and
/// says precisely what is wrong, so a request that cannot be written correctly is
/// never written.
///
/// ```
/// use hybi::handshake::{ClientHandshake, ClientRequest};
///
/// let request = ClientRequest::new("example.com", Some(8080), false)
///     .path("/chat?room=1")
///     .protocol("chat.v2")
///     .header("Origin", "https://example.com");
/// let handshake = ClientHandshake::new(&request, &mut |buf: &mut [u8]| buf.fill(0)).unwrap();
/// assert_eq!(
///     handshake.request(),
///     b"GET /chat?room=1 HTTP/1.1\r\n\
///       Host: example.com:8080\r\n\
///       Upgrade: websocket\r\n\
///       Connection: Upgrade\r\n\
///       Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\
///       Sec-WebSocket-Version: 13\r\n\
///       Sec-WebSocket-Protocol: chat.v2\r\n\
///       Origin: https://example.com\r\n\
///       \r\n"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    host: String,
    port: Option<u16>,
    secure: bool,
    path: String,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
    limits: Limits,
    deflate: Option<DeflateConfig>,
}

impl ClientRequest {
    /// A request to `host` (a DNS name, an IPv4 address, or an IPv6 address with or
    /// without brackets) on `port`, over TLS (`wss://`) when `secure`.
    ///
    /// The `Host` header is `host`, with `:port` only when `port` is given and differs
    /// from the scheme's default (80 for `ws`, 443 for `wss`); an IPv6 address is
    /// bracketed. The resource is `/` until [`path`](Self::path) says otherwise.
    pub fn new(host: &str, port: Option<u16>, secure: bool) -> ClientRequest {
        ClientRequest {
            host: host.to_string(),
            port,
            secure,
            path: String::from("/"),
            protocols: Vec::new(),
            headers: Vec::new(),
            limits: Limits::default(),
            deflate: None,
        }
    }

    /// The resource name: path and query, such as `/chat?room=1`. It must start with
    /// `/` and hold only visible ASCII (percent-encode the rest) and no `#` fragment
    /// (RFC 6455 §3).
    pub fn path(mut self, path_and_query: &str) -> ClientRequest {
        self.path = path_and_query.to_string();
        self
    }

    /// Offers a subprotocol; offers are sent in the order made, most preferred first.
    /// Names must be distinct HTTP tokens (RFC 6455 §4.1).
    pub fn protocol(mut self, name: &str) -> ClientRequest {
        self.protocols.push(name.to_string());
        self
    }

    /// Adds a header field, written after the handshake's own, in the order added.
    /// The name must be a token and the value free of control characters; the
    /// handshake's own fields (`Host`, `Upgrade`, `Connection`, `Sec-WebSocket-*`,
    /// `Content-Length`, `Transfer-Encoding`) are refused.
    pub fn header(mut self, name: &str, value: &str) -> ClientRequest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Offers permessage-deflate (RFC 7692) as `config` asks; the server's answer is
    /// checked against the offer, and [`ClientAccepted::deflate`] tells what was agreed.
    pub fn deflate(mut self, config: DeflateConfig) -> ClientRequest {
        self.deflate = Some(config);
        self
    }

    /// Bounds on the response head. Default: [`Limits::default()`].
    pub fn limits(mut self, limits: Limits) -> ClientRequest {
        self.limits = limits;
        self
    }

    /// The `Host` header value: the host, bracketed if IPv6, and a non-default port.
    fn authority(&self) -> Result<String, InvalidRequest> {
        let host = self.host.as_str();
        let invalid = || InvalidRequest::Host(self.host.clone());
        let ipv6 = host.strip_prefix('[').map(|h| h.strip_suffix(']'));
        let mut authority = match ipv6 {
            Some(Some(inner)) if is_ipv6(inner) => host.to_string(),
            Some(_) => return Err(invalid()),
            None if host.contains(':') => {
                if !is_ipv6(host) {
                    return Err(invalid());
                }
                alloc::format!("[{host}]")
            }
            None if is_reg_name(host) => host.to_string(),
            None => return Err(invalid()),
        };
        let default = if self.secure { 443 } else { 80 };
        if let Some(port) = self.port.filter(|&p| p != default) {
            authority.push(':');
            authority.push_str(&port.to_string());
        }
        Ok(authority)
    }

    /// Checks everything the application supplied; returns the `Host` value and the
    /// extra header fields.
    fn check(&self) -> Result<(String, Headers), InvalidRequest> {
        let authority = self.authority()?;
        if !is_path(&self.path) {
            return Err(InvalidRequest::Path(self.path.clone()));
        }
        for (i, p) in self.protocols.iter().enumerate() {
            if !is_token(p) {
                return Err(InvalidRequest::Protocol(p.clone()));
            }
            if self.protocols[..i].contains(p) {
                return Err(InvalidRequest::DuplicateProtocol(p.clone()));
            }
        }
        let mut extra = Headers::default();
        for (name, value) in &self.headers {
            extra.push_checked(name, value.as_bytes(), RESERVED)?;
        }
        Ok((authority, extra))
    }

    /// The request's bytes, from the checked `authority` and `extra` fields.
    fn encode(&self, authority: &str, extra: &Headers, key: &Key) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        write_header(&mut out, "Host", authority.as_bytes());
        write_header(&mut out, "Upgrade", b"websocket");
        write_header(&mut out, "Connection", b"Upgrade");
        write_header(&mut out, "Sec-WebSocket-Key", key.as_str().as_bytes());
        write_header(&mut out, "Sec-WebSocket-Version", b"13");
        if !self.protocols.is_empty() {
            write_header(
                &mut out,
                "Sec-WebSocket-Protocol",
                self.protocols.join(", ").as_bytes(),
            );
        }
        if let Some(deflate) = &self.deflate {
            write_header(
                &mut out,
                "Sec-WebSocket-Extensions",
                negotiate::offer(deflate).as_bytes(),
            );
        }
        extra.write_to(&mut out);
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// An IPv6 address literal, loosely: at least two colons, hex digits and dots
/// (embedded IPv4).
fn is_ipv6(s: &str) -> bool {
    s.bytes().filter(|&b| b == b':').count() >= 2
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
}

/// An RFC 3986 reg-name or IPv4 address: unreserved, sub-delims, percent-encodings.
fn is_reg_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b))
}

/// A path and query to send as the request target: `/`, then visible ASCII without `#`.
fn is_path(s: &str) -> bool {
    s.starts_with('/') && s.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
}

/// Why a [`ClientRequest`] cannot be sent. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidRequest {
    /// The host is empty, holds characters a host name cannot, or is a malformed IPv6
    /// literal.
    Host(String),
    /// The path does not start with `/`, or holds a space, a control character, a
    /// non-ASCII character or a `#`.
    Path(String),
    /// A subprotocol name that is not an HTTP token.
    Protocol(String),
    /// A subprotocol offered twice (RFC 6455 §4.1: values must be unique).
    DuplicateProtocol(String),
    /// An extra header is malformed or one the handshake writes itself.
    Header(HeaderError),
}

impl From<HeaderError> for InvalidRequest {
    fn from(e: HeaderError) -> InvalidRequest {
        InvalidRequest::Header(e)
    }
}

impl fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidRequest::Host(h) => write!(f, "invalid host {h:?}"),
            InvalidRequest::Path(p) => write!(f, "invalid request path {p:?}"),
            InvalidRequest::Protocol(p) => write!(f, "invalid subprotocol name {p:?}"),
            InvalidRequest::DuplicateProtocol(p) => write!(f, "subprotocol {p:?} offered twice"),
            InvalidRequest::Header(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for InvalidRequest {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            InvalidRequest::Header(e) => core::error::Error::source(e),
            _ => None,
        }
    }
}

/// A client handshake in progress: the request to write, then the server's response
/// read as it arrives.
///
/// Write [`request`](Self::request) to the transport, then hand every byte read to
/// [`receive`](Self::receive) until it returns the outcome. Until then, send nothing
/// else (RFC 6455 §4.1).
#[derive(Debug)]
pub struct ClientHandshake {
    request: Vec<u8>,
    key: Key,
    accept: AcceptKey,
    protocols: Vec<String>,
    deflate: Option<DeflateConfig>,
    reader: HeadReader,
}

impl ClientHandshake {
    /// Checks `request` and writes its bytes, with a fresh `Sec-WebSocket-Key` of 16
    /// bytes from `rng` (drawn only if the request is valid).
    pub fn new<R: RandomSource + ?Sized>(
        request: &ClientRequest,
        rng: &mut R,
    ) -> Result<ClientHandshake, InvalidRequest> {
        let (authority, extra) = request.check()?;
        let key = Key::generate(rng);
        Ok(ClientHandshake {
            request: request.encode(&authority, &extra, &key),
            key,
            accept: key.accept(),
            protocols: request.protocols.clone(),
            deflate: request.deflate,
            reader: HeadReader::new(request.limits),
        })
    }

    /// The exact bytes of the upgrade request, to write before anything else.
    #[inline]
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// The `Sec-WebSocket-Key` the request carries.
    #[inline]
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Adds bytes read from the server; they may arrive in pieces of any size.
    ///
    /// Returns `Ok(None)` while the response head is incomplete, then once either the
    /// validated response ([`ClientAccepted`], holding any bytes that followed the
    /// head: the server's first frames) or why the handshake failed. The head is read
    /// within the [`Limits`] of the request; no byte after it is read as part of it.
    /// Later calls return [`ResponseError::Finished`].
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<ClientAccepted>, ResponseError> {
        if self.reader.is_finished() {
            return Err(ResponseError::Finished);
        }
        match self.reader.receive::<ResponseHead>(data) {
            Ok(None) => Ok(None),
            Ok(Some((head, rest))) => self.validate(head, rest).map(Some),
            Err(e) => Err(ResponseError::Head(e)),
        }
    }

    /// RFC 6455 §4.1, the client's checks of the server's handshake.
    fn validate(&self, head: ResponseHead, rest: Vec<u8>) -> Result<ClientAccepted, ResponseError> {
        if head.status != 101 {
            let mut rejected = Rejected {
                status: head.status,
                reason: head.reason,
                headers: head.headers,
                body: Vec::new(),
            };
            rejected.extend_body(&rest);
            return Err(ResponseError::Rejected(Box::new(rejected)));
        }
        if head.minor_version < 1 {
            return Err(ResponseError::HttpVersion);
        }
        let protocol = self.check_fields(&head.headers)?;
        let deflate = match &self.deflate {
            Some(config) => {
                Agreement::from_response(head.headers.get_all("Sec-WebSocket-Extensions"), config)
                    .map_err(ResponseError::Extension)?
                    .map(|agreement| (agreement, *config))
            }
            None if head.headers.contains("Sec-WebSocket-Extensions") => {
                return Err(ResponseError::UnexpectedExtensions);
            }
            None => None,
        };
        Ok(ClientAccepted {
            protocol,
            headers: head.headers,
            leftover: rest,
            deflate,
        })
    }

    /// The header checks of a 101; returns the chosen subprotocol: none, or exactly
    /// one value we offered.
    fn check_fields(&self, headers: &Headers) -> Result<Option<String>, ResponseError> {
        if !headers.has_token("Upgrade", "websocket") {
            return Err(ResponseError::NotWebSocketUpgrade);
        }
        if !headers.has_token("Connection", "upgrade") {
            return Err(ResponseError::ConnectionNotUpgrade);
        }
        match headers.get_unique("Sec-WebSocket-Accept") {
            Ok(None) => return Err(ResponseError::MissingAccept),
            Ok(Some(v)) if v == self.accept.as_str().as_bytes() => {}
            _ => return Err(ResponseError::AcceptMismatch),
        }
        match headers.get_unique("Sec-WebSocket-Protocol") {
            Ok(None) => Ok(None),
            Ok(Some(v)) if !v.contains(&b',') => {
                match self.protocols.iter().find(|p| p.as_bytes() == v) {
                    Some(p) => Ok(Some(p.clone())),
                    None => Err(ResponseError::UnofferedProtocol(
                        String::from_utf8_lossy(v).into_owned(),
                    )),
                }
            }
            _ => Err(ResponseError::MultipleProtocols),
        }
    }
}

/// A server's 101 response that passed every check of RFC 6455 §4.1: the connection is
/// open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAccepted {
    protocol: Option<String>,
    headers: Headers,
    leftover: Vec<u8>,
    deflate: Option<(Agreement, DeflateConfig)>,
}

impl ClientAccepted {
    /// The subprotocol the server chose: always one the client offered, or `None`.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The response's header fields (for cookies or server-specific fields).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The permessage-deflate parameters agreed, if the server accepted the offer.
    pub fn deflate(&self) -> Option<&Agreement> {
        self.deflate.as_ref().map(|(a, _)| a)
    }

    /// The bytes that arrived after the response head: the server's first frames.
    pub fn leftover(&self) -> &[u8] {
        &self.leftover
    }

    /// The open connection in the client role, with `rng` for frame mask keys and the
    /// [`leftover`](Self::leftover) bytes already received into it.
    pub fn into_connection(self, config: Config, rng: impl RandomSource + 'static) -> Connection {
        let mut connection = Connection::client(config, rng);
        if let Some((agreement, deflate)) = self.deflate {
            connection.enable_deflate(agreement, deflate);
        }
        connection.receive(&self.leftover);
        connection
    }
}

/// A non-101 answer from the server: the handshake was refused (or redirected).
///
/// It keeps the status line, the header fields and the first
/// [`MAX_BODY`](Self::MAX_BODY) bytes of the body. The body bytes that arrived with the
/// head are in it; an adapter reads the rest with [`wants_body`](Self::wants_body) and
/// [`extend_body`](Self::extend_body) before it reports the refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    status: u16,
    reason: String,
    headers: Headers,
    body: Vec<u8>,
}

impl Rejected {
    /// How much of the body is kept: the first 4 KiB, enough for an error page or a
    /// JSON reason; the rest is not read.
    pub const MAX_BODY: usize = 4096;

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase (empty if the server sent none or an invalid one).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The header fields (`Location` for a redirect, `Sec-WebSocket-Version` for 426).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body, at most [`MAX_BODY`](Self::MAX_BODY) bytes of it: what arrived with
    /// the head, and what [`extend_body`](Self::extend_body) added. The client
    /// adapters of hybi (hybi-std, hybi-mio, hybi-tokio) read it whole (up to the
    /// bound) within the handshake timeout. A chunked body is kept as it came, chunk
    /// sizes included.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text, if it is valid UTF-8 (for showing a server's reason).
    pub fn body_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.body).ok()
    }

    /// Whether more of the body is to come, within [`MAX_BODY`](Self::MAX_BODY):
    /// fewer bytes than its `Content-Length`, or, without one, a body that ends when
    /// the server closes the connection (HTTP/1.1: RFC 9112 §6.3). Never for 1xx, 204
    /// or 304, which have no body, nor for a chunked body.
    pub fn wants_body(&self) -> bool {
        !self.headers.contains("Transfer-Encoding") && self.body.len() < self.body_goal()
    }

    /// Adds body bytes read after the head, up to what [`wants_body`](Self::wants_body)
    /// asks for; bytes past it are dropped.
    pub fn extend_body(&mut self, data: &[u8]) {
        let room = self.body_goal().saturating_sub(self.body.len());
        self.body.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// The length of body to keep: the announced one (or all until the end of the
    /// connection, or of a chunked body what came), bounded by
    /// [`MAX_BODY`](Self::MAX_BODY).
    fn body_goal(&self) -> usize {
        if self.status < 200 || self.status == 204 || self.status == 304 {
            return 0;
        }
        let announced = self
            .headers
            .get_str("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        match announced {
            Some(len) => {
                usize::try_from(len).map_or(Rejected::MAX_BODY, |len| len.min(Rejected::MAX_BODY))
            }
            None => Rejected::MAX_BODY,
        }
    }
}

/// Why the server's response does not open a WebSocket connection (RFC 6455 §4.1:
/// the client must _Fail the WebSocket Connection_). Close the transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The response head is malformed or exceeds the [`Limits`].
    Head(HeadError),
    /// The status is not 101: the server refused, redirected or failed.
    Rejected(Box<Rejected>),
    /// A 101 response that is not HTTP/1.1.
    HttpVersion,
    /// No `Upgrade` header with the token `websocket`.
    NotWebSocketUpgrade,
    /// No `Connection` header with the token `Upgrade`.
    ConnectionNotUpgrade,
    /// No `Sec-WebSocket-Accept` header.
    MissingAccept,
    /// A `Sec-WebSocket-Accept` that is not the hash of our key (or several of them).
    AcceptMismatch,
    /// The server chose a subprotocol we did not offer.
    UnofferedProtocol(String),
    /// The server chose more than one subprotocol.
    MultipleProtocols,
    /// The server answered with `Sec-WebSocket-Extensions`; we offered none.
    UnexpectedExtensions,
    /// The server's permessage-deflate answer does not fit our offer (RFC 7692 §7.1).
    Extension(NegotiationError),
    /// [`ClientHandshake::receive`] was called after it returned its outcome.
    Finished,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Head(e) => write!(f, "bad handshake response: {e}"),
            ResponseError::Rejected(r) => {
                write!(f, "server answered {} {}", r.status, r.reason)
            }
            ResponseError::HttpVersion => f.write_str("101 response is not HTTP/1.1"),
            ResponseError::NotWebSocketUpgrade => f.write_str("response lacks Upgrade: websocket"),
            ResponseError::ConnectionNotUpgrade => {
                f.write_str("response lacks Connection: Upgrade")
            }
            ResponseError::MissingAccept => f.write_str("response lacks Sec-WebSocket-Accept"),
            ResponseError::AcceptMismatch => {
                f.write_str("Sec-WebSocket-Accept does not match the key")
            }
            ResponseError::UnofferedProtocol(p) => {
                write!(f, "server chose subprotocol {p:?}, which was not offered")
            }
            ResponseError::MultipleProtocols => f.write_str("server chose several subprotocols"),
            ResponseError::UnexpectedExtensions => {
                f.write_str("server answered with extensions that were not offered")
            }
            ResponseError::Extension(e) => write!(f, "bad permessage-deflate answer: {e}"),
            ResponseError::Finished => f.write_str("the handshake is already finished"),
        }
    }
}

impl core::error::Error for ResponseError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ResponseError::Head(e) => core::error::Error::source(e),
            ResponseError::Extension(e) => core::error::Error::source(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(host: &str, port: Option<u16>, secure: bool) -> Result<String, InvalidRequest> {
        ClientRequest::new(host, port, secure).authority()
    }

    #[test]
    fn host_header_omits_default_ports_and_brackets_ipv6() {
        for (h, port, secure, want) in [
            ("example.com", None, false, "example.com"),
            ("example.com", Some(80), false, "example.com"),
            ("example.com", Some(443), false, "example.com:443"),
            ("example.com", Some(443), true, "example.com"),
            ("example.com", Some(80), true, "example.com:80"),
            ("10.0.0.1", Some(9001), false, "10.0.0.1:9001"),
            ("::1", Some(9001), false, "[::1]:9001"),
            ("[::1]", None, true, "[::1]"),
        ] {
            assert_eq!(
                host(h, port, secure),
                Ok(want.into()),
                "{h} {port:?} {secure}"
            );
        }
    }

    #[test]
    fn bad_hosts_are_refused() {
        for bad in [
            "",
            "exa mple.com",
            "example.com/",
            "a@b",
            "host:80",
            "ab:80",
            "[::1",
            "[]",
            "[zz::1]",
            "a\r\nb",
        ] {
            assert_eq!(
                host(bad, None, false),
                Err(InvalidRequest::Host(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn paths_are_checked() {
        let mut rng = |b: &mut [u8]| b.fill(1);
        for bad in ["", "chat", "/a b", "/a#frag", "/caf\u{e9}", "/a\r\n"] {
            let request = ClientRequest::new("h", None, false).path(bad);
            assert_eq!(
                ClientHandshake::new(&request, &mut rng).unwrap_err(),
                InvalidRequest::Path(bad.into())
            );
        }
    }
}
