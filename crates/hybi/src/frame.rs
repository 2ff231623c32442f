//! Frame headers (RFC 6455 §5.2): opcodes, parsing without copying, encoding into a
//! small stack buffer.

use core::fmt;

/// The largest possible frame header: 2 bytes + 8 bytes of length + 4 bytes of mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode (RFC 6455 §5.2, §11.8).
///
/// The reserved values (0x3-0x7, 0xB-0xF) are not representable: [`OpCode::from_u8`]
/// reports them as [`FrameError::ReservedOpCode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation = 0x0,
    /// 0x1: the first (or only) frame of a text message.
    Text = 0x1,
    /// 0x2: the first (or only) frame of a binary message.
    Binary = 0x2,
    /// 0x8: starts or answers the closing handshake.
    Close = 0x8,
    /// 0x9: a ping; the peer answers with a pong carrying the same payload.
    Ping = 0x9,
    /// 0xA: a pong, answering a ping or sent unsolicited as a heartbeat.
    Pong = 0xA,
}

impl OpCode {
    /// Decodes the low four bits of a frame's first byte.
    ///
    /// Returns [`FrameError::ReservedOpCode`] for the values RFC 6455 reserves.
    #[inline]
    pub const fn from_u8(value: u8) -> Result<OpCode, FrameError> {
        match value {
            0x0 => Ok(OpCode::Continuation),
            0x1 => Ok(OpCode::Text),
            0x2 => Ok(OpCode::Binary),
            0x8 => Ok(OpCode::Close),
            0x9 => Ok(OpCode::Ping),
            0xA => Ok(OpCode::Pong),
            other => Err(FrameError::ReservedOpCode(other)),
        }
    }

    /// The opcode's four-bit wire value.
    #[inline]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// True for close, ping and pong: frames that must be short and unfragmented
    /// and may appear between the fragments of a message.
    #[inline]
    pub const fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// A frame header that could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The opcode is one of the values RFC 6455 reserves for future use.
    ReservedOpCode(u8),
    /// A 64-bit payload length has its most significant bit set (RFC 6455 §5.2).
    LengthOverflow,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedOpCode(op) => write!(f, "reserved opcode {op:#x}"),
            FrameError::LengthOverflow => f.write_str("64-bit payload length with the top bit set"),
        }
    }
}

impl core::error::Error for FrameError {}

/// The fixed part of a frame: everything before the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// RSV1, reserved for extensions (e.g. permessage-deflate).
    pub rsv1: bool,
    /// RSV2, reserved for extensions.
    pub rsv2: bool,
    /// RSV3, reserved for extensions.
    pub rsv3: bool,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// Length of the payload in bytes (at most 2^63 - 1).
    pub payload_len: u64,
}

/// The result of [`FrameHeader::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header: the header and the number of bytes it took.
    Complete(FrameHeader, usize),
    /// The slice ends inside the header: at least this many more bytes are needed.
    Incomplete(usize),
}

impl FrameHeader {
    /// A header for a final, unmasked frame with no RSV bits.
    #[inline]
    pub const fn new(opcode: OpCode, payload_len: u64) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// True if any of the three reserved bits is set.
    #[inline]
    pub const fn has_rsv(&self) -> bool {
        self.rsv1 || self.rsv2 || self.rsv3
    }

    /// Parses a header from the start of `buf` without copying.
    ///
    /// Returns how many more bytes are needed when `buf` ends inside the header. An
    /// error is returned as soon as the bytes present prove the header invalid (a
    /// reserved opcode from the first byte alone). Payload lengths need not use the
    /// shortest form; a 64-bit length with its top bit set is an error.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Parsed, FrameError> {
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            [b0] => {
                OpCode::from_u8(b0 & 0x0F)?;
                return Ok(Parsed::Incomplete(1));
            }
            [] => return Ok(Parsed::Incomplete(2)),
        };
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let mask_len = if masked { 4 } else { 0 };
        let (payload_len, len_end) = match b1 & 0x7F {
            126 => {
                let Some(bytes) = buf.get(2..4) else {
                    return Ok(Parsed::Incomplete(4 + mask_len - buf.len()));
                };
                (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4)
            }
            127 => {
                let Some(bytes) = buf.get(2..10) else {
                    return Ok(Parsed::Incomplete(10 + mask_len - buf.len()));
                };
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(FrameError::LengthOverflow);
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        let header_len = len_end + mask_len;
        if buf.len() < header_len {
            return Ok(Parsed::Incomplete(header_len - buf.len()));
        }
        let mask = if masked {
            Some([
                buf[len_end],
                buf[len_end + 1],
                buf[len_end + 2],
                buf[len_end + 3],
            ])
        } else {
            None
        };
        Ok(Parsed::Complete(
            FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv1: b0 & 0x40 != 0,
                rsv2: b0 & 0x20 != 0,
                rsv3: b0 & 0x10 != 0,
                opcode,
                mask,
                payload_len,
            },
            header_len,
        ))
    }

    /// The number of bytes [`encode`](Self::encode) writes for this header.
    #[inline]
    pub const fn encoded_len(&self) -> usize {
        let len_bytes = if self.payload_len < 126 {
            0
        } else if self.payload_len <= u16::MAX as u64 {
            2
        } else {
            8
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes the header into `buf`, choosing the shortest length form, and returns
    /// its length (2 to [`MAX_HEADER_LEN`]); the bytes of `buf` past it are zeroed.
    ///
    /// A `payload_len` with the top bit set cannot be represented; it is written with
    /// the top bit cleared, so callers must keep lengths below 2^63.
    #[inline]
    pub fn encode(&self, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        let (word, len) = self.encode_word();
        buf.copy_from_slice(&word.to_le_bytes()[..MAX_HEADER_LEN]);
        len
    }

    /// The encoded header as the little-endian bytes of a `u128` (bytes past the
    /// length returned are zero), built in registers: a caller that stores it whole
    /// avoids reading back a header written byte by byte, which stalls the CPU's
    /// store forwarding on every frame sent.
    #[inline]
    pub(crate) fn encode_word(&self) -> (u128, usize) {
        let first = (u8::from(self.fin) << 7)
            | (u8::from(self.rsv1) << 6)
            | (u8::from(self.rsv2) << 5)
            | (u8::from(self.rsv3) << 4)
            | self.opcode.as_u8();
        let mask_bit: u128 = if self.mask.is_some() { 0x80 } else { 0 };
        let (second, extended, mut pos) = if self.payload_len < 126 {
            (self.payload_len as u128, 0, 2)
        } else if self.payload_len <= u64::from(u16::MAX) {
            // Network byte order: the bytes of the swapped value, little-endian.
            (126, u128::from((self.payload_len as u16).swap_bytes()), 4)
        } else {
            let len = self.payload_len & (u64::MAX >> 1);
            (127, u128::from(len.swap_bytes()), 10)
        };
        let mut word = u128::from(first) | ((mask_bit | second) << 8) | (extended << 16);
        if let Some(key) = self.mask {
            word |= u128::from(u32::from_le_bytes(key)) << (8 * pos);
            pos += 4;
        }
        (word, pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(h: FrameHeader) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut buf);
        assert_eq!(n, h.encoded_len());
        assert_eq!(FrameHeader::parse(&buf[..n]), Ok(Parsed::Complete(h, n)));
        for cut in 0..n {
            match FrameHeader::parse(&buf[..cut]) {
                Ok(Parsed::Incomplete(more)) => assert!(more >= 1 && cut + more <= n),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn encode_chooses_shortest_length_form() {
        for (len, header_len) in [
            (0u64, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (u64::MAX >> 1, 10),
        ] {
            let h = FrameHeader::new(OpCode::Binary, len);
            assert_eq!(h.encoded_len(), header_len, "len {len}");
            roundtrip(h);
            roundtrip(FrameHeader {
                mask: Some([1, 2, 3, 4]),
                fin: false,
                rsv2: true,
                ..h
            });
        }
    }

    #[test]
    fn parse_accepts_non_minimal_lengths() {
        let buf = [0x82, 126, 0, 5];
        let Ok(Parsed::Complete(h, 4)) = FrameHeader::parse(&buf) else {
            panic!()
        };
        assert_eq!(h.payload_len, 5);
    }

    #[test]
    fn length_with_top_bit_set_is_an_error() {
        let buf = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&buf), Err(FrameError::LengthOverflow));
    }

    #[test]
    fn reserved_opcodes_are_errors_from_the_first_byte() {
        for op in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(OpCode::from_u8(op), Err(FrameError::ReservedOpCode(op)));
            assert_eq!(
                FrameHeader::parse(&[0x80 | op]),
                Err(FrameError::ReservedOpCode(op))
            );
        }
    }

    #[test]
    fn incomplete_reports_bytes_needed() {
        assert_eq!(FrameHeader::parse(&[]), Ok(Parsed::Incomplete(2)));
        assert_eq!(FrameHeader::parse(&[0x81]), Ok(Parsed::Incomplete(1)));
        assert_eq!(FrameHeader::parse(&[0x81, 0x85]), Ok(Parsed::Incomplete(4)));
        assert_eq!(FrameHeader::parse(&[0x81, 126]), Ok(Parsed::Incomplete(2)));
        assert_eq!(
            FrameHeader::parse(&[0x81, 0xFF, 0]),
            Ok(Parsed::Incomplete(11))
        );
    }

    #[test]
    fn control_opcodes() {
        assert!(OpCode::Close.is_control());
        assert!(OpCode::Ping.is_control());
        assert!(OpCode::Pong.is_control());
        assert!(!OpCode::Text.is_control());
        assert!(!OpCode::Binary.is_control());
        assert!(!OpCode::Continuation.is_control());
    }
}
