//! Random and hostile input: the engine never panics, never allocates beyond its
//! limits plus a constant, reports nothing after it fails or closes, and only ever
//! writes valid frames for its role.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hybi::frame::{FrameHeader, Parsed};
use hybi::{Config, Connection, Delivery, OpCode, Role};
use proptest::prelude::*;

/// Counts live heap bytes per thread, so tests running in parallel don't mix.
/// (Test-only: the engine itself forbids `unsafe`.)
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| {
            let now = l.get() + layout.size();
            l.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        });
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(layout.size())));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns the peak of live heap bytes it reached above its start.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    f();
    PEAK.with(Cell::get) - base
}

const MAX_FRAME: usize = 2_000;
const MAX_MESSAGE: usize = 5_000;
const READ_BUF: usize = 1_024;

fn small_config(streaming: bool) -> Config {
    Config::default()
        .with_max_frame_size(MAX_FRAME)
        .with_max_message_size(MAX_MESSAGE)
        .with_read_buffer_size(READ_BUF)
        .with_delivery(if streaming {
            Delivery::Streaming
        } else {
            Delivery::Message
        })
}

/// Checks that `bytes` is a sequence of whole frames a `role` endpoint may send, with
/// nothing after a close frame.
fn assert_valid_output(bytes: &[u8], role: Role) {
    let mut rest = bytes;
    let mut closed = false;
    while !rest.is_empty() {
        assert!(!closed, "bytes after our close frame");
        let Ok(Parsed::Complete(h, n)) = FrameHeader::parse(rest) else {
            panic!("partial frame written")
        };
        assert_eq!(
            h.mask.is_some(),
            role == Role::Client,
            "masking for our role"
        );
        assert!(!h.has_rsv());
        if h.opcode.is_control() {
            assert!(h.fin && h.payload_len <= 125);
        }
        closed = h.opcode == OpCode::Close;
        rest = &rest[n + h.payload_len as usize..];
    }
}

fn run_hostile(role: Role, streaming: bool, input: &[u8], chunks: &[usize]) {
    let mut conn = match role {
        Role::Server => Connection::server(small_config(streaming)),
        Role::Client => client_with(small_config(streaming)),
    };
    let mut written = Vec::new();
    let mut ended = false;
    let mut pos: usize = 0;
    for &c in chunks.iter().chain(std::iter::once(&usize::MAX)) {
        let end = pos.saturating_add(c.max(1)).min(input.len());
        conn.receive(&input[pos..end]);
        pos = end;
        loop {
            match conn.poll_event() {
                Ok(Some(e)) => {
                    assert!(!ended, "event after the end: {e:?}");
                    if let hybi::Event::Close(_) = e {
                        ended = true;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    assert!(!ended, "error after the end");
                    ended = true;
                }
            }
        }
        written.extend(take_output(&mut conn));
        if pos == input.len() {
            break;
        }
    }
    assert_valid_output(&written, role);
}

/// Inputs biased towards frames: random bytes, and random bytes after a valid prefix.
fn hostile_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..4096),
        (proptest::collection::vec(any::<u8>(), 0..2048), any::<u8>()).prop_map(|(tail, op)| {
            let mut v = client_frame(false, OpCode::Text, "ok κόσμε".as_bytes());
            v.push(0x80 | (op & 0x0F));
            v.extend(tail);
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_and_stay_within_limits(
        input in hostile_input(),
        chunks in proptest::collection::vec(1usize..700, 0..20),
        server_role in any::<bool>(),
        streaming in any::<bool>(),
    ) {
        let role = if server_role { Role::Server } else { Role::Client };
        let peak = peak_during(|| run_hostile(role, streaming, &input, &chunks));
        // Limits: the message buffer (and, while it grows, its previous half-size
        // allocation), the receive buffer plus one chunk, and a constant
        // (output, the engine itself, the test's own bookkeeping of the input).
        let bound = MAX_MESSAGE * 3 / 2 + READ_BUF + 700 + 3 * input.len() + 8 * 1024;
        prop_assert!(peak <= bound, "peak {peak} > bound {bound}");
    }
}

#[test]
fn an_announced_huge_frame_allocates_nothing_for_it() {
    let mut bytes = vec![0x82, 0xFF];
    bytes.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    bytes.extend_from_slice(&KEY);
    let mut s = Connection::server(Config::default());
    s.receive(&[]); // nothing
    let peak = peak_during(|| {
        s.receive(&bytes);
        assert!(s.poll_event().is_err());
    });
    assert!(
        peak <= 64 * 1024 + 4096,
        "peak {peak}: only the receive buffer and a close frame"
    );
}

#[test]
fn a_frame_at_the_limit_costs_about_its_size() {
    // A message assembled from fragments near the limit: memory ≈ the limit, not 2×.
    let config = Config::default()
        .with_max_message_size(1 << 20)
        .with_read_buffer_size(4096);
    let mut s = Connection::server(config);
    let mut wire = Vec::new();
    let piece = vec![b'x'; (1 << 20) / 16];
    for i in 0..16 {
        let op = if i == 0 {
            OpCode::Binary
        } else {
            OpCode::Continuation
        };
        wire.extend(client_frame(i == 15, op, &piece));
    }
    let peak = peak_during(|| {
        for chunk in wire.chunks(4096) {
            s.receive(chunk);
            while let Some(e) = s.poll_event().unwrap() {
                if let hybi::Event::Binary(b) = e {
                    assert_eq!(b.len(), 1 << 20);
                }
            }
        }
    });
    // The buffer ends at the limit; the last reallocation briefly holds the old one.
    assert!(peak <= (1 << 20) * 3 / 2 + 3 * 4096 + 1024, "peak {peak}");
}
