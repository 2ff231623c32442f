//! Arbitrary bytes into a client-side `Connection`, in chunks the input chooses, with
//! sends, closes and clock ticks interleaved: see `hybi_fuzz::conn` for the input
//! layout and the invariants checked.
#![no_main]

use hybi::Role;
use hybi_fuzz::alloc::Counting;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    hybi_fuzz::conn::run(Role::Client, data);
});
