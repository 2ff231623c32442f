//! Close codes and close frame payloads (RFC 6455 §5.5.1, §7.4).

use core::fmt;

/// A close status code (RFC 6455 §7.4).
///
/// Any `u16` can be held; [`is_valid_on_wire`](Self::is_valid_on_wire) says whether a
/// code may appear in a close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation, idle timeout).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a type of data the endpoint cannot accept (e.g. binary on a text-only route).
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: reported locally when a close frame carried no code; never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: reported locally when the connection closed without a close frame; never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: data inconsistent with its type, e.g. invalid UTF-8 in a text message.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a frame or message exceeded the endpoint's size limits.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: (client) the server did not negotiate a required extension.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: (server) an unexpected condition prevented fulfilling the request.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway received an invalid response (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: reported locally when the TLS handshake failed; never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// The numeric code.
    #[inline]
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// True if the code may be sent in a close frame: 1000-1003, 1007-1014 (defined by
    /// RFC 6455 and the IANA registry) and 3000-4999 (libraries, frameworks and
    /// applications). Everything else, including 1005, 1006 and 1015, which only
    /// report local conditions, fails the connection with 1002 when received.
    #[inline]
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The longest close reason that fits a control frame (125 bytes minus the code).
pub const MAX_REASON_LEN: usize = 123;

/// Why a received close frame payload is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosePayloadError {
    /// A one-byte payload: a code needs two bytes (1002).
    Truncated,
    /// A code outside the ranges allowed on the wire (1002).
    InvalidCode(u16),
    /// The reason is not valid UTF-8 (1007).
    InvalidReason,
}

impl ClosePayloadError {
    /// The close code to fail the connection with.
    pub const fn close_code(self) -> CloseCode {
        match self {
            ClosePayloadError::Truncated | ClosePayloadError::InvalidCode(_) => {
                CloseCode::PROTOCOL_ERROR
            }
            ClosePayloadError::InvalidReason => CloseCode::INVALID_PAYLOAD,
        }
    }
}

impl fmt::Display for ClosePayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosePayloadError::Truncated => f.write_str("close payload of one byte"),
            ClosePayloadError::InvalidCode(c) => write!(f, "close code {c} is not allowed"),
            ClosePayloadError::InvalidReason => f.write_str("close reason is not valid UTF-8"),
        }
    }
}

impl core::error::Error for ClosePayloadError {}

/// Parses and validates a received close frame's payload.
///
/// An empty payload means "no status": it yields [`CloseCode::NO_STATUS`] and an empty
/// reason.
pub fn parse_close_payload(payload: &[u8]) -> Result<(CloseCode, &str), ClosePayloadError> {
    match payload {
        [] => Ok((CloseCode::NO_STATUS, "")),
        [_] => Err(ClosePayloadError::Truncated),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ClosePayloadError::InvalidCode(code.0));
            }
            let reason =
                core::str::from_utf8(reason).map_err(|_| ClosePayloadError::InvalidReason)?;
            Ok((code, reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_matches_rfc_ranges() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(CloseCode(code).is_valid_on_wire(), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(code).is_valid_on_wire(), "{code}");
        }
    }

    #[test]
    fn parse_payloads() {
        assert_eq!(parse_close_payload(&[]), Ok((CloseCode::NO_STATUS, "")));
        assert_eq!(parse_close_payload(&[3]), Err(ClosePayloadError::Truncated));
        assert_eq!(
            parse_close_payload(&[0x03, 0xE8]),
            Ok((CloseCode::NORMAL, ""))
        );
        assert_eq!(
            parse_close_payload(b"\x03\xE8bye"),
            Ok((CloseCode::NORMAL, "bye"))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xED]),
            Err(ClosePayloadError::InvalidCode(1005))
        );
        assert_eq!(
            parse_close_payload(
                b"\x03\xE8\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80"
            ),
            Err(ClosePayloadError::InvalidReason)
        );
    }
}
