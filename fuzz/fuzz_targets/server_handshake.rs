//! Arbitrary bytes, in chunks the input chooses, into the server side of the opening
//! handshake: see `hybi_fuzz::handshake` for the input layout and the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hybi_fuzz::handshake::run_server(data);
});
