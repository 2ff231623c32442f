//! Compressed, re-cut, damaged and hostile frames fed to a server with
//! permessage-deflate on, checked against a model, with memory bounded: see
//! `hybi_fuzz::deflate::run_connection`.
#![no_main]

use hybi_fuzz::alloc::Counting;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    hybi_fuzz::deflate::run_connection(data);
});
