//! Messages both ways between a client and a server with permessage-deflate on, whole
//! and in fragments, must arrive byte-identical: see
//! `hybi_fuzz::deflate::run_roundtrip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hybi_fuzz::deflate::run_roundtrip(data);
});
