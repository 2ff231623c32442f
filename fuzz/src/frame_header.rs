//! `FrameHeader::parse` / `encode` invariants.

use hybi::frame::{FrameError, FrameHeader, MAX_HEADER_LEN, OpCode, Parsed};

/// The header length the first two bytes announce.
fn form_len(b1: u8) -> usize {
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

fn is_reserved(op: u8) -> bool {
    OpCode::from_u8(op).is_err()
}

/// Checks every invariant of `FrameHeader::parse` on `data` (and, from it, `encode`).
pub fn check(data: &[u8]) {
    let parsed = FrameHeader::parse(data);
    match parsed {
        Err(FrameError::ReservedOpCode(op)) => {
            assert!(!data.is_empty());
            assert_eq!(op, data[0] & 0x0F);
            assert!(is_reserved(op));
            // Decided by the first byte alone.
            assert_eq!(FrameHeader::parse(&data[..1]), parsed);
        }
        Err(FrameError::LengthOverflow) => {
            assert!(
                data.len() >= 10,
                "overflow decided without the length bytes"
            );
            assert_eq!(data[1] & 0x7F, 127);
            assert!(data[2] & 0x80 != 0);
            assert!(!is_reserved(data[0] & 0x0F));
            // Decided by the first ten bytes.
            assert_eq!(FrameHeader::parse(&data[..10]), parsed);
        }
        Ok(Parsed::Complete(h, n)) => {
            assert!(data.len() >= 2);
            assert!(n <= data.len(), "claims {n} bytes of {}", data.len());
            assert!(n <= MAX_HEADER_LEN);
            assert_eq!(n, form_len(data[1]));
            // Fields are exactly the bits on the wire.
            let b0 = data[0];
            assert_eq!(h.fin, b0 & 0x80 != 0);
            assert_eq!(h.rsv1, b0 & 0x40 != 0);
            assert_eq!(h.rsv2, b0 & 0x20 != 0);
            assert_eq!(h.rsv3, b0 & 0x10 != 0);
            assert_eq!(h.opcode.as_u8(), b0 & 0x0F);
            assert_eq!(h.mask.is_some(), data[1] & 0x80 != 0);
            if let Some(key) = h.mask {
                assert_eq!(&key[..], &data[n - 4..n]);
            }
            let expected_len = match data[1] & 0x7F {
                126 => u64::from(u16::from_be_bytes([data[2], data[3]])),
                127 => u64::from_be_bytes([
                    data[2], data[3], data[4], data[5], data[6], data[7], data[8], data[9],
                ]),
                short => u64::from(short),
            };
            assert_eq!(h.payload_len, expected_len);
            assert!(h.payload_len >> 63 == 0);
            // Never looks past the header: the header alone parses the same.
            assert_eq!(FrameHeader::parse(&data[..n]), parsed);
            // Every proper prefix asks for more, and never for more than the rest.
            for cut in 0..n {
                match FrameHeader::parse(&data[..cut]) {
                    Ok(Parsed::Incomplete(more)) => {
                        assert!(
                            more >= 1 && cut + more <= n,
                            "cut {cut}: more {more}, n {n}"
                        );
                        if cut >= 2 {
                            assert_eq!(cut + more, n, "form known at cut {cut}");
                        }
                    }
                    other => panic!("prefix {cut} of a valid header: {other:?}"),
                }
            }
            // Re-encoding (shortest length form) parses back to the same fields.
            let mut buf = [0u8; MAX_HEADER_LEN];
            let m = h.encode(&mut buf);
            assert_eq!(m, h.encoded_len());
            assert!(
                m <= n,
                "shortest form is never longer than the input's form"
            );
            assert_eq!(FrameHeader::parse(&buf[..m]), Ok(Parsed::Complete(h, m)));
            // Shortest form: the length uses the smallest encoding that holds it.
            let minimal = match buf[1] & 0x7F {
                126 => h.payload_len >= 126 && h.payload_len <= 0xFFFF,
                127 => h.payload_len > 0xFFFF,
                _ => h.payload_len < 126,
            };
            assert!(minimal, "non-minimal encoding of {}", h.payload_len);
        }
        Ok(Parsed::Incomplete(more)) => {
            assert!(more >= 1, "Incomplete(0)");
            assert!(data.len() + more <= MAX_HEADER_LEN);
            if let Some(&b0) = data.first() {
                assert!(!is_reserved(b0 & 0x0F), "reserved opcode not reported");
            }
            if data.is_empty() {
                assert_eq!(more, 2);
                return;
            }
            if data.len() >= 2 {
                assert_eq!(data.len() + more, form_len(data[1]));
            }
            // The bytes asked for are really needed, and enough once the form is known.
            for fill in [0x00u8, 0x7E, 0xFF] {
                let mut padded = data.to_vec();
                for k in 1..=MAX_HEADER_LEN - data.len() {
                    padded.push(fill);
                    let r = FrameHeader::parse(&padded);
                    if k < more {
                        // Still incomplete, unless the bytes present already prove the
                        // header invalid (a 64-bit length with its top bit set is
                        // refused before the mask key arrives).
                        assert!(
                            matches!(r, Ok(Parsed::Incomplete(m)) if m >= more - k)
                                || (r == Err(FrameError::LengthOverflow) && padded.len() >= 10),
                            "{k} of {more} bytes added: {r:?}"
                        );
                    }
                    match r {
                        Ok(Parsed::Complete(_, n)) => {
                            assert!(n >= data.len() + more, "needed {more}, done with {k}");
                            break;
                        }
                        Ok(Parsed::Incomplete(_)) => {}
                        Err(_) => break,
                    }
                }
            }
        }
    }
}

/// Encode/parse round trip of an arbitrary header.
pub fn check_roundtrip(h: FrameHeader) {
    let h = FrameHeader {
        payload_len: h.payload_len & (u64::MAX >> 1),
        ..h
    };
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = h.encode(&mut buf);
    assert_eq!(n, h.encoded_len());
    assert_eq!(FrameHeader::parse(&buf[..n]), Ok(Parsed::Complete(h, n)));
    check(&buf[..n]);
}
