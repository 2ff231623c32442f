//! A conversation of mostly valid frames, sometimes damaged, fed to a server
//! connection in chunks and checked against a reference model: see
//! `hybi_fuzz::structured`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hybi_fuzz::structured::run(data);
});
