//! Arbitrary `Sec-WebSocket-Extensions` values through the permessage-deflate
//! negotiation: see `hybi_fuzz::deflate::run_negotiation`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hybi_fuzz::deflate::run_negotiation(data);
});
