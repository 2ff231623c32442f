//! Reading the head of an HTTP/1.1 message (start line and header fields) as it
//! arrives in pieces, with httparse, inside fixed limits.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::headers::Headers;

/// Bounds on the head (start line and header fields) of a handshake message.
///
/// ```
/// use hybi::handshake::Limits;
/// let limits = Limits::default().with_max_header_bytes(8 << 10).with_max_headers(32);
/// assert_eq!((limits.max_header_bytes, limits.max_headers), (8192, 32));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest head, in bytes, up to and including the blank line that ends it.
    /// A longer head fails with [`HeadError::TooLarge`] (431 on the server).
    /// Default: 16 KiB.
    pub max_header_bytes: usize,
    /// Most header fields. One more fails with [`HeadError::TooManyHeaders`] (431 on
    /// the server). Default: 64.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 16 << 10,
            max_headers: 64,
        }
    }
}

impl Limits {
    /// Sets [`max_header_bytes`](Self::max_header_bytes).
    pub fn with_max_header_bytes(mut self, bytes: usize) -> Limits {
        self.max_header_bytes = bytes;
        self
    }

    /// Sets [`max_headers`](Self::max_headers).
    pub fn with_max_headers(mut self, count: usize) -> Limits {
        self.max_headers = count;
        self
    }
}

/// Why the head of an HTTP message could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// A byte that is not allowed in the request method or target, or a missing token.
    Token,
    /// Not `HTTP/1.0` or `HTTP/1.1` where the version belongs.
    Version,
    /// A malformed response status code.
    Status,
    /// A byte that is not allowed in a header name (including folded lines).
    HeaderName,
    /// A byte that is not allowed in a header value.
    HeaderValue,
    /// A CR not followed by LF.
    NewLine,
    /// More than a few empty lines before the start line.
    EmptyLines,
    /// The head is longer than [`Limits::max_header_bytes`].
    TooLarge,
    /// The head has more fields than [`Limits::max_headers`].
    TooManyHeaders,
}

impl HeadError {
    /// The head exceeds a [`Limits`] bound (431 on the server) rather than being
    /// malformed (400).
    pub const fn is_limit(&self) -> bool {
        matches!(self, HeadError::TooLarge | HeadError::TooManyHeaders)
    }

    /// A short description, also used as the body of the server's error response.
    pub const fn reason(&self) -> &'static str {
        match self {
            HeadError::Token => "malformed request line",
            HeadError::Version => "malformed HTTP version",
            HeadError::Status => "malformed status line",
            HeadError::HeaderName => "malformed header name",
            HeadError::HeaderValue => "malformed header value",
            HeadError::NewLine => "malformed line ending",
            HeadError::EmptyLines => "too many empty lines before the start line",
            HeadError::TooLarge => "header block too large",
            HeadError::TooManyHeaders => "too many header fields",
        }
    }

    fn from_httparse(e: httparse::Error) -> HeadError {
        match e {
            httparse::Error::HeaderName => HeadError::HeaderName,
            httparse::Error::HeaderValue => HeadError::HeaderValue,
            httparse::Error::NewLine => HeadError::NewLine,
            httparse::Error::Status => HeadError::Status,
            httparse::Error::Token => HeadError::Token,
            httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
            httparse::Error::Version => HeadError::Version,
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl core::error::Error for HeadError {}

/// Empty lines tolerated before the start line (RFC 7230 §3.5 asks to ignore "at
/// least one"). More fail with [`HeadError::EmptyLines`], which also bounds how often
/// a peer trickling newlines can make the reader parse.
const MAX_EMPTY_LINES: usize = 4;

/// Up to this many buffered bytes the reader parses on every call, so malformed input
/// is refused as soon as its bytes show it, whatever the split. Beyond it, it parses
/// when a line ends or the buffer has doubled.
const EAGER_PARSE: usize = 1024;

/// A head that httparse can read: a request or a response.
pub(crate) trait Head: Sized {
    /// Parses `buf`: `Ok(None)` if incomplete, else the head's length and the owned
    /// head.
    fn parse<'b>(
        buf: &'b [u8],
        headers: &mut [httparse::Header<'b>],
    ) -> Result<Option<(usize, Self)>, httparse::Error>;
}

/// A request head: `GET /path HTTP/1.1` and its fields.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) method: String,
    pub(crate) target: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) minor_version: u8,
    pub(crate) headers: Headers,
}

impl Head for RequestHead {
    fn parse<'b>(
        buf: &'b [u8],
        headers: &mut [httparse::Header<'b>],
    ) -> Result<Option<(usize, Self)>, httparse::Error> {
        let mut req = httparse::Request::new(headers);
        let status = req.parse(buf)?;
        Ok(complete(status, || RequestHead {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            minor_version: req.version.unwrap_or_default(),
            headers: owned_headers(req.headers),
        }))
    }
}

/// A response head: `HTTP/1.1 101 Switching Protocols` and its fields.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) minor_version: u8,
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) headers: Headers,
}

impl Head for ResponseHead {
    fn parse<'b>(
        buf: &'b [u8],
        headers: &mut [httparse::Header<'b>],
    ) -> Result<Option<(usize, Self)>, httparse::Error> {
        let mut res = httparse::Response::new(headers);
        let status = res.parse(buf)?;
        Ok(complete(status, || ResponseHead {
            minor_version: res.version.unwrap_or_default(),
            status: res.code.unwrap_or_default(),
            reason: res.reason.unwrap_or_default().to_string(),
            headers: owned_headers(res.headers),
        }))
    }
}

/// The head's length and the head built by `head`, once httparse saw all of it.
fn complete<T>(status: httparse::Status<usize>, head: impl FnOnce() -> T) -> Option<(usize, T)> {
    match status {
        httparse::Status::Complete(n) => Some((n, head())),
        httparse::Status::Partial => None,
    }
}

fn owned_headers(parsed: &[httparse::Header<'_>]) -> Headers {
    let mut headers = Headers::default();
    for h in parsed {
        headers.push(h.name, h.value);
    }
    headers
}

/// Collects the bytes of a head as they arrive and parses them with httparse.
///
/// Guarantees:
/// - the head is complete exactly when its blank line has arrived, whatever the split
///   of the input; the bytes after it are handed back untouched and never parsed;
/// - at most [`Limits::max_header_bytes`] bytes are ever parsed, and the reader stops
///   with an error once more than that arrived without a complete head;
/// - the same outcome for any split of an input that ends with a line end or is at
///   most 1 KiB long (a longer input still without a complete line may be refused
///   later than its bytes would allow, at its next line end or doubling);
/// - bounded work against a peer that trickles bytes: up to 1 KiB it parses on every
///   call; beyond, when a line ends (at most `max_headers` + a few times before a
///   result) or when the buffer doubled, so a whole head costs at most about
///   1 KiB² + (max_headers + log₂ max_header_bytes) × max_header_bytes bytes parsed.
#[derive(Debug)]
pub(crate) struct HeadReader {
    buf: Vec<u8>,
    limits: Limits,
    /// Beyond [`EAGER_PARSE`], parse again without a new line once this many bytes are
    /// buffered.
    reparse_at: usize,
    /// A result (head or error) was returned: nothing more is read.
    finished: bool,
}

impl HeadReader {
    pub(crate) fn new(limits: Limits) -> HeadReader {
        HeadReader {
            buf: Vec::new(),
            limits,
            reparse_at: 0,
            finished: false,
        }
    }

    /// A result was returned; further input is refused.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Bytes buffered and not yet handed back.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Adds `data` and tries to read the head. `Ok(None)`: more bytes are needed.
    /// `Ok(Some((head, rest)))`: the head, and every byte received after it.
    /// After either a head or an error the reader is finished.
    pub(crate) fn receive<T: Head>(
        &mut self,
        data: &[u8],
    ) -> Result<Option<(T, Vec<u8>)>, HeadError> {
        debug_assert!(!self.finished, "HeadReader used after its result");
        self.buf.extend_from_slice(data);
        let over = self.buf.len() > self.limits.max_header_bytes;
        let len = self.buf.len();
        if !(over || len <= EAGER_PARSE || len >= self.reparse_at || data.contains(&b'\n')) {
            return Ok(None);
        }
        self.reparse_at = len.saturating_mul(2);
        match self.parse::<T>() {
            Ok(None) if over => self.finish(Err(HeadError::TooLarge)),
            Ok(None) => Ok(None),
            Ok(Some((n, head))) => {
                let rest = self.buf.split_off(n);
                self.finish(Ok(Some((head, rest))))
            }
            Err(e) => self.finish(Err(e)),
        }
    }

    fn finish<R>(&mut self, result: R) -> R {
        self.finished = true;
        self.buf = Vec::new();
        result
    }

    /// Parses the first `max_header_bytes` buffered bytes.
    fn parse<T: Head>(&self) -> Result<Option<(usize, T)>, HeadError> {
        let window = &self.buf[..self.buf.len().min(self.limits.max_header_bytes)];
        if leading_empty_lines(window) > MAX_EMPTY_LINES {
            return Err(HeadError::EmptyLines);
        }
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        T::parse(window, &mut headers).map_err(HeadError::from_httparse)
    }
}

/// The number of complete empty lines (`\r\n` or `\n`) at the start of `buf`.
fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut lines = 0;
    let mut rest = buf;
    loop {
        rest = match rest {
            [b'\r', b'\n', tail @ ..] | [b'\n', tail @ ..] => tail,
            _ => return lines,
        };
        lines += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";

    #[test]
    fn complete_head_hands_back_the_rest() {
        let mut r = HeadReader::new(Limits::default());
        let mut input = REQUEST.to_vec();
        input.extend_from_slice(b"\x81\x00tail");
        let Ok(Some((head, rest))) = r.receive::<RequestHead>(&input) else {
            panic!("a whole head")
        };
        assert_eq!((head.method.as_str(), head.target.as_str()), ("GET", "/x"));
        assert_eq!(head.minor_version, 1);
        assert_eq!(rest, b"\x81\x00tail");
        assert!(r.is_finished());
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn trickled_long_line_parses_a_logarithmic_number_of_times() {
        // Trickling a long line byte by byte parses O(log n) times beyond the eager
        // prefix, not n times.
        let mut r = HeadReader::new(Limits::default());
        assert_eq!(
            r.receive::<RequestHead>(&[b'G'; EAGER_PARSE])
                .map(|h| h.is_none()),
            Ok(true)
        );
        let mut parses = 0;
        for _ in 0..8000 {
            let before = r.reparse_at;
            assert_eq!(
                r.receive::<RequestHead>(b"G").unwrap_or(None).map(|_| ()),
                None
            );
            if r.reparse_at != before {
                parses += 1;
            }
        }
        assert!(parses <= 10, "{parses} parses");
    }

    #[test]
    fn empty_lines_before_the_start_line_are_bounded() {
        let mut input = b"\r\n\n".to_vec();
        input.extend_from_slice(REQUEST);
        assert!(matches!(
            HeadReader::new(Limits::default()).receive::<RequestHead>(&input),
            Ok(Some(_))
        ));
        let mut r = HeadReader::new(Limits::default());
        for _ in 0..MAX_EMPTY_LINES {
            assert!(matches!(r.receive::<RequestHead>(b"\r\n"), Ok(None)));
        }
        assert_eq!(
            r.receive::<RequestHead>(b"\r\n").unwrap_err(),
            HeadError::EmptyLines
        );
        assert_eq!(leading_empty_lines(b"\r\n\n\rx"), 2);
    }

    #[test]
    fn limits_are_exact() {
        let n = REQUEST.len();
        let ok = Limits::default().with_max_header_bytes(n);
        assert!(matches!(
            HeadReader::new(ok).receive::<RequestHead>(REQUEST),
            Ok(Some(_))
        ));
        let small = Limits::default().with_max_header_bytes(n - 1);
        assert_eq!(
            HeadReader::new(small)
                .receive::<RequestHead>(REQUEST)
                .unwrap_err(),
            HeadError::TooLarge
        );
        let one = Limits::default().with_max_headers(1);
        assert!(matches!(
            HeadReader::new(one).receive::<RequestHead>(REQUEST),
            Ok(Some(_))
        ));
        let zero = Limits::default().with_max_headers(0);
        assert_eq!(
            HeadReader::new(zero)
                .receive::<RequestHead>(REQUEST)
                .unwrap_err(),
            HeadError::TooManyHeaders
        );
    }
}
