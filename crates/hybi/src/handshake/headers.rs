//! HTTP header fields: the list a handshake exposes, case-insensitive lookup, token
//! lists, and the checks applied to headers the application asks hybi to send.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// One header field as received or sent: its name (a token, spelled as it arrived) and
/// its value (trimmed of surrounding whitespace by the parser, otherwise raw bytes).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Header {
    name: String,
    value: Vec<u8>,
}

impl Header {
    /// The field name, as spelled on the wire. Compare it with
    /// [`str::eq_ignore_ascii_case`]: names are case-insensitive.
    #[inline]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field value. HTTP allows bytes above 0x7F (obs-text), so this is bytes.
    #[inline]
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The field value as text, or `None` if it is not valid UTF-8.
    #[inline]
    pub fn value_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.value).ok()
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value_str() {
            Some(v) => write!(f, "{}: {v:?}", self.name),
            None => write!(f, "{}: {:?}", self.name, self.value),
        }
    }
}

/// The header fields of a request or response, in the order they arrived (or will be
/// written), duplicates kept.
///
/// Lookups compare names ASCII case-insensitively, as HTTP requires:
///
/// ```
/// use hybi::handshake::ServerHandshake;
///
/// let mut handshake = ServerHandshake::new();
/// let request = handshake
///     .receive(b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
///                Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///                Sec-WebSocket-Version: 13\r\nX-Tag: a\r\nx-tag: b\r\n\r\n")
///     .unwrap()
///     .unwrap();
/// let headers = request.headers();
/// assert_eq!(headers.get("HOST"), Some(&b"example.com"[..]));
/// assert_eq!(headers.get_all("X-Tag").collect::<Vec<_>>(), [b"a", b"b"]);
/// assert!(headers.has_token("connection", "upgrade"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    list: Vec<Header>,
}

impl Headers {
    /// The number of fields (duplicates counted).
    #[inline]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// There are no fields.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every field, in order.
    #[inline]
    pub fn iter(&self) -> core::slice::Iter<'_, Header> {
        self.list.iter()
    }

    /// The value of the first field called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.get_all(name).next()
    }

    /// The value of the first field called `name`, if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The values of every field called `name` (case-insensitive), in order.
    pub fn get_all<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.list
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }

    /// There is at least one field called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The elements of the comma-separated lists in every field called `name`, trimmed
    /// of spaces and tabs, empty elements skipped (the `#rule` of RFC 7230 §7):
    /// `Connection: keep-alive, Upgrade` gives `keep-alive` and `Upgrade`.
    pub fn tokens<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.get_all(name).flat_map(split_list)
    }

    /// One of the [`tokens`](Self::tokens) of `name` equals `token`, ASCII
    /// case-insensitively.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// The value of the only field called `name`, `None` without one, or
    /// [`Repeated`] if there are several.
    pub(crate) fn get_unique(&self, name: &str) -> Result<Option<&[u8]>, Repeated> {
        let mut values = self.get_all(name);
        match (values.next(), values.next()) {
            (first, None) => Ok(first),
            _ => Err(Repeated),
        }
    }

    /// Appends a field without checking it: for values hybi itself validated or built.
    pub(crate) fn push(&mut self, name: &str, value: &[u8]) {
        self.list.push(Header {
            name: name.to_string(),
            value: value.to_vec(),
        });
    }

    /// Appends a field the application supplied, after checking that the name is a
    /// token, the value holds no control character (so no CR or LF can split the
    /// message) and the name is not one hybi writes itself (`reserved`).
    pub(crate) fn push_checked(
        &mut self,
        name: &str,
        value: &[u8],
        reserved: &[&str],
    ) -> Result<(), HeaderError> {
        check_header(name, value)?;
        if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(HeaderError::Reserved(name.to_string()));
        }
        self.push(name, value);
        Ok(())
    }

    /// Writes every field as `name: value\r\n`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        for h in &self.list {
            write_header(out, &h.name, &h.value);
        }
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = core::slice::Iter<'a, Header>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A field that may appear once appears several times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Repeated;

/// Why a header the application asked hybi to send was refused. Nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The name is empty or not an HTTP token (RFC 7230 §3.2.6).
    InvalidName(String),
    /// The value of the named header holds a control character such as CR or LF,
    /// which would corrupt (or split) the HTTP message.
    InvalidValue(String),
    /// The handshake writes this header itself (for instance `Upgrade`,
    /// `Sec-WebSocket-Accept` or `Content-Length`); set it through the API instead.
    Reserved(String),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::InvalidName(n) => write!(f, "invalid header name {n:?}"),
            HeaderError::InvalidValue(n) => {
                write!(f, "value of header {n:?} contains a control character")
            }
            HeaderError::Reserved(n) => write!(f, "header {n:?} is written by the handshake"),
        }
    }
}

impl core::error::Error for HeaderError {}

/// Checks a header the application supplied: a token name and a value without control
/// characters other than horizontal tab.
pub(crate) fn check_header(name: &str, value: &[u8]) -> Result<(), HeaderError> {
    if !is_token(name) {
        return Err(HeaderError::InvalidName(name.to_string()));
    }
    if !value.iter().all(|&b| is_value_byte(b)) {
        return Err(HeaderError::InvalidValue(name.to_string()));
    }
    Ok(())
}

/// A byte allowed in a field value: HTAB, visible ASCII, space, obs-text.
#[inline]
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// A `tchar` of RFC 7230 §3.2.6.
#[inline]
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `s` is a non-empty HTTP token. Subprotocol names (RFC 6455 §4.1: characters in
/// U+0021..U+007E without separators) are exactly these.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// The non-empty elements of one comma-separated list value, trimmed of spaces and tabs.
pub(crate) fn split_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// `value` without leading or trailing spaces and tabs (OWS).
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// Writes `name: value\r\n`.
pub(crate) fn write_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lists_are_split_trimmed_and_case_insensitive() {
        let mut h = Headers::default();
        h.push("Connection", b" keep-alive ,\tUpgrade,, ");
        h.push("connection", b"close");
        let tokens: Vec<&[u8]> = h.tokens("CONNECTION").collect();
        assert_eq!(tokens, [&b"keep-alive"[..], b"Upgrade", b"close"]);
        assert!(h.has_token("Connection", "upgrade"));
        assert!(!h.has_token("Connection", "upgrad"));
        assert!(!h.has_token("Upgrade", "websocket"));
    }

    #[test]
    fn supplied_headers_are_checked() {
        let mut h = Headers::default();
        assert_eq!(
            h.push_checked("X-Ok", b"fine\tvalue \xe2\x9c\x93", &[]),
            Ok(())
        );
        assert_eq!(
            h.push_checked("Bad Name", b"v", &[]),
            Err(HeaderError::InvalidName("Bad Name".into()))
        );
        assert_eq!(
            h.push_checked("", b"v", &[]),
            Err(HeaderError::InvalidName("".into()))
        );
        assert_eq!(
            h.push_checked("X-Split", b"a\r\nInjected: yes", &[]),
            Err(HeaderError::InvalidValue("X-Split".into()))
        );
        assert_eq!(
            h.push_checked("upgrade", b"h2c", &["Upgrade"]),
            Err(HeaderError::Reserved("upgrade".into()))
        );
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn trim_handles_all_whitespace() {
        assert_eq!(trim_ows(b"  \t "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b" a b "), b"a b");
    }
}
