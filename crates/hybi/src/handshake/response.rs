//! The HTTP responses a server sends: the 101 that opens the connection, the error
//! answers to bad requests and the application's own rejections.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::headers::{HeaderError, Headers};

/// Headers hybi writes itself on a rejection, so the application may not set them.
const REJECT_RESERVED: &[&str] = &["Connection", "Content-Length", "Transfer-Encoding"];

/// An HTTP response a server sends during the handshake: status, header fields and body.
///
/// Write [`to_bytes`](Self::to_bytes) to the transport; a server behind another HTTP
/// stack hands [`status`](Self::status), [`headers`](Self::headers) and
/// [`body`](Self::body) to that stack instead. Every response hybi builds is well-formed
/// HTTP/1.1: a 101 carries no body and no `Content-Length`; any other status carries
/// `Connection: close` and an exact `Content-Length`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
}

impl Response {
    /// A rejection the application chose: `status` (200..=599), extra `headers` and
    /// `body`. `Connection: close` and `Content-Length` are added.
    ///
    /// A 101 or other 1xx status, or a status above 599, is refused with
    /// [`InvalidReply::Status`]; so is a header that is malformed or that hybi writes
    /// itself (`Connection`, `Content-Length`, `Transfer-Encoding`).
    ///
    /// ```
    /// use hybi::handshake::Response;
    /// let response = Response::reject(403, &[("Content-Type", "text/plain")], b"go away").unwrap();
    /// assert_eq!(
    ///     response.to_bytes(),
    ///     b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\n\
    ///       Content-Length: 7\r\n\r\ngo away"
    /// );
    /// ```
    pub fn reject(
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, InvalidReply> {
        if !(200..=599).contains(&status) {
            return Err(InvalidReply::Status(status));
        }
        let mut list = Headers::default();
        list.push("Connection", b"close");
        for (name, value) in headers {
            list.push_checked(name, value.as_bytes(), REJECT_RESERVED)?;
        }
        Ok(Response::with_body(status, list, body))
    }

    /// A response with `headers` and `body`; `Content-Length` is appended.
    pub(crate) fn with_body(status: u16, mut headers: Headers, body: &[u8]) -> Response {
        let mut len = [0u8; 20];
        headers.push("Content-Length", format_usize(body.len(), &mut len));
        Response {
            status,
            headers,
            body: body.to_vec(),
        }
    }

    /// A `101 Switching Protocols` with `headers`.
    pub(crate) fn switching_protocols(headers: Headers) -> Response {
        Response {
            status: 101,
            headers,
            body: Vec::new(),
        }
    }

    /// The status code.
    #[inline]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase written after the status code.
    pub fn reason(&self) -> &'static str {
        reason_phrase(self.status)
    }

    /// The header fields, in the order they are written.
    #[inline]
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body (empty for a 101).
    #[inline]
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The exact bytes of the response: status line, fields, blank line, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        self.write_to(&mut out);
        out
    }

    /// Appends [`to_bytes`](Self::to_bytes) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut code = [0u8; 20];
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(format_usize(usize::from(self.status), &mut code));
        out.push(b' ');
        out.extend_from_slice(self.reason().as_bytes());
        out.extend_from_slice(b"\r\n");
        self.headers.write_to(out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }
}

/// Why the response the application asked for cannot be sent. Nothing was built; the
/// request can still be accepted or rejected with other arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidReply {
    /// The subprotocol chosen on accept was not offered by the client (RFC 6455 §4.2.2
    /// allows only one of the client's values).
    UnofferedProtocol(String),
    /// A rejection status outside 200..=599.
    Status(u16),
    /// An extra header is malformed or one hybi writes itself.
    Header(HeaderError),
    /// The permessage-deflate parameters chosen on accept answer none of the
    /// client's offers (RFC 7692 §7.1).
    UnofferedExtension,
}

impl From<HeaderError> for InvalidReply {
    fn from(e: HeaderError) -> InvalidReply {
        InvalidReply::Header(e)
    }
}

impl fmt::Display for InvalidReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidReply::UnofferedProtocol(p) => {
                write!(f, "subprotocol {p:?} was not offered by the client")
            }
            InvalidReply::Status(s) => write!(f, "status {s} cannot reject a handshake"),
            InvalidReply::Header(e) => e.fmt(f),
            InvalidReply::UnofferedExtension => {
                f.write_str("the permessage-deflate parameters answer no offer of the client")
            }
        }
    }
}

impl core::error::Error for InvalidReply {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            InvalidReply::Header(e) => core::error::Error::source(e),
            _ => None,
        }
    }
}

/// Writes `n` in decimal into `buf` and returns the digits.
pub(crate) fn format_usize(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The reason phrase of `status` (RFC 9110 §15), or a generic one for its class.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn decimal_formatting() {
        let mut buf = [0u8; 20];
        assert_eq!(format_usize(0, &mut buf), b"0");
        assert_eq!(format_usize(426, &mut buf), b"426");
        assert_eq!(
            format_usize(usize::MAX, &mut buf),
            usize::MAX.to_string().as_bytes()
        );
    }

    #[test]
    fn rejections_are_checked() {
        assert_eq!(
            Response::reject(101, &[], b""),
            Err(InvalidReply::Status(101))
        );
        assert_eq!(
            Response::reject(600, &[], b""),
            Err(InvalidReply::Status(600))
        );
        assert_eq!(
            Response::reject(400, &[("content-length", "1")], b""),
            Err(InvalidReply::Header(HeaderError::Reserved(
                "content-length".into()
            )))
        );
        let Ok(r) = Response::reject(599, &[("Retry-After", "5")], b"") else {
            panic!("a valid rejection")
        };
        assert_eq!(
            r.to_bytes(),
            b"HTTP/1.1 599 Server Error\r\nConnection: close\r\nRetry-After: 5\r\n\
              Content-Length: 0\r\n\r\n"
        );
    }
}
