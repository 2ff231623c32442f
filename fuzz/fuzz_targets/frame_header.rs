//! `FrameHeader::parse` on arbitrary bytes; when the bytes spell out a header, the
//! encode/parse round trip of that header too.
#![no_main]

use hybi::frame::{FrameHeader, OpCode};
use hybi_fuzz::frame_header::{check, check_roundtrip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data);
    // The same bytes read as header fields: every representable header round-trips.
    if data.len() >= 14 {
        let ops = [
            OpCode::Continuation,
            OpCode::Text,
            OpCode::Binary,
            OpCode::Close,
            OpCode::Ping,
            OpCode::Pong,
        ];
        let b = data[0];
        let h = FrameHeader {
            fin: b & 1 != 0,
            rsv1: b & 2 != 0,
            rsv2: b & 4 != 0,
            rsv3: b & 8 != 0,
            opcode: ops[usize::from(data[1]) % ops.len()],
            mask: (b & 16 != 0).then(|| [data[2], data[3], data[4], data[5]]),
            payload_len: u64::from_le_bytes(data[6..14].try_into().unwrap_or_default())
                >> (data[1] >> 2 & 63),
        };
        check_roundtrip(h);
    }
});
