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
    /// Counted as the system does it: a large block grows in place or is remapped
    /// (mremap), so only the new size is live, not the old and the new together.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LIVE.try_with(|l| {
            let now = l.get().saturating_sub(layout.size()) + new_size;
            l.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        });
        unsafe { System.realloc(ptr, layout, new_size) }
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
            match conn.next() {
                hybi::Next::Event(e, _) => {
                    assert!(!ended, "event after the end: {e:?}");
                    if let hybi::Event::Close(_) = e {
                        ended = true;
                    }
                }
                hybi::Next::Write(_) | hybi::Next::Wait(_) => break,
                hybi::Next::Close(_) => {
                    ended = true;
                    break;
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
        assert!(
            matches!(s.next(), hybi::Next::Write(_)),
            "the 1009 close frame"
        );
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
            while let hybi::Next::Event(e, _) = s.next() {
                if let hybi::Event::Binary(b) = e {
                    assert_eq!(b.len(), 1 << 20);
                }
            }
        }
    });
    // The buffer ends at the limit; the last reallocation briefly holds the old one.
    assert!(peak <= (1 << 20) * 3 / 2 + 3 * 4096 + 1024, "peak {peak}");
}

/// A 14-byte header of a masked binary frame declaring `len` payload bytes.
fn declared_binary_header(len: u64) -> Vec<u8> {
    let mut h = vec![0x82, 0xFF];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&KEY);
    h
}

/// A transport that hands the engine `available` bytes through `read_buf`/`commit`,
/// as an adapter does, in reads of at most `max_read`; returns the reads it made.
fn read_through(conn: &mut Connection, mut available: &[u8], max_read: usize) -> usize {
    let mut reads = 0;
    while !available.is_empty() {
        let buf = conn.read_buf();
        assert!(!buf.is_empty(), "read_buf empty with events drained");
        let n = buf.len().min(available.len()).min(max_read);
        buf[..n].copy_from_slice(&available[..n]);
        conn.commit(n);
        available = &available[n..];
        reads += 1;
        while let hybi::Next::Event(..) = conn.next() {}
    }
    reads
}

#[test]
fn declared_lengths_alone_allocate_nothing_large() {
    // Sixteen peers, each sending only the header of an 8 MiB frame, on an adapter
    // that reads through `read_buf` (which once reserved the declared length).
    const PEERS: usize = 16;
    let header = declared_binary_header(8 << 20);
    let mut conns = Vec::new();
    let peak = peak_during(|| {
        for _ in 0..PEERS {
            let mut s = Connection::server(Config::default().with_max_message_size(16 << 20));
            read_through(&mut s, &header, usize::MAX);
            // The adapter asks for room for the next read.
            let offered = s.read_buf().len();
            assert!(offered <= 64 << 10, "offered {offered} bytes nobody sent");
            conns.push(s);
        }
    });
    let per_peer = peak / PEERS;
    assert!(
        per_peer <= (64 << 10) + 8192,
        "{per_peer} bytes per peer that sent 14 bytes"
    );
}

#[test]
fn a_message_buffer_grows_with_the_bytes_that_arrive() {
    // A peer declares 8 MiB and then trickles its payload: at every point the engine
    // holds at most a small multiple of what arrived, plus its receive buffer.
    let total = 8usize << 20;
    let mut wire = declared_binary_header(total as u64);
    let payload: Vec<u8> = (0..total).map(|i| (i * 7) as u8).collect();
    let mut masked = payload.clone();
    hybi::mask::apply_mask(KEY, 0, &mut masked);
    wire.extend_from_slice(&masked);
    let mut s = Connection::server(Config::default().with_max_message_size(16 << 20));
    read_through(&mut s, &wire[..14], usize::MAX);
    let mut sent = 0;
    let base = LIVE.with(Cell::get);
    for step in [1usize, 100, 4096, 10_000, 65_536, 300_000, 1 << 20, 3 << 20] {
        let end = (14 + sent + step).min(wire.len() - 1);
        read_through(&mut s, &wire[14 + sent..end], 64 << 10);
        sent = end - 14;
        let _ = s.read_buf(); // room for the next read counts too
        let live = LIVE.with(Cell::get) - base;
        assert!(
            live <= 4 * sent + (64 << 10) + 8192,
            "{live} bytes live after {sent} payload bytes arrived"
        );
    }
}

#[test]
fn large_messages_still_arrive_in_few_large_reads() {
    // The fast path for peers that do send their bytes: once a large frame's first
    // bytes have arrived, reads go straight into the message buffer, which doubles,
    // so an 8 MiB message takes a handful of reads, not 8 MiB / 64 KiB of them.
    let total = 8usize << 20;
    let mut wire = declared_binary_header(total as u64);
    let mut masked = vec![3u8; total];
    hybi::mask::apply_mask(KEY, 0, &mut masked);
    wire.extend_from_slice(&masked);
    let mut s = Connection::server(Config::default().with_max_message_size(16 << 20));
    let mut got = 0;
    let mut reads = 0;
    let mut rest = &wire[..];
    let peak = peak_during(|| {
        while !rest.is_empty() {
            let buf = s.read_buf();
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            s.commit(n);
            rest = &rest[n..];
            reads += 1;
            while let hybi::Next::Event(e, _) = s.next() {
                if let hybi::Event::Binary(b) = e {
                    assert!(b.iter().all(|&x| x == 3));
                    got = b.len();
                }
            }
        }
    });
    assert_eq!(got, total);
    assert!(reads <= 12, "{reads} reads for 8 MiB");
    assert!(
        peak <= total * 5 / 2 + (1 << 20),
        "peak {peak} for an 8 MiB message"
    );
}

/// A deflate stream of `total` zero bytes, sync-flushed, without its tail: about a
/// thousandth of `total`.
fn deflate_bomb(total: usize) -> Vec<u8> {
    let mut z = zlib_rs::Deflate::new(9, false, 15);
    let zeros = vec![0u8; 1 << 20];
    let mut out = vec![0u8; total / 900 + (1 << 16)];
    let mut done = 0;
    while done < total {
        let last = done + zeros.len() >= total;
        let flush = if last {
            zlib_rs::DeflateFlush::SyncFlush
        } else {
            zlib_rs::DeflateFlush::NoFlush
        };
        let at = z.total_out() as usize;
        z.compress(&zeros, &mut out[at..], flush).unwrap();
        done += zeros.len();
    }
    out.truncate(z.total_out() as usize - 4);
    out
}

#[test]
fn a_small_frame_that_inflates_to_a_gigabyte_fails_within_the_limit() {
    const LIMIT: usize = 16 << 20;
    let bomb = deflate_bomb(1 << 30);
    assert!(
        bomb.len() < 1_100_000,
        "a 1 MiB frame: {} bytes",
        bomb.len()
    );
    let wire = raw_frame(0xC2, Some(KEY), &bomb);
    let config = Config::default().with_max_message_size(LIMIT);
    let mut s = Connection::server(config);
    s.enable_deflate(
        hybi::deflate::Agreement::default(),
        hybi::deflate::DeflateConfig::default(),
    );
    let mut failed = None;
    let peak = peak_during(|| {
        for chunk in wire.chunks(64 << 10) {
            s.receive(chunk);
            match s.next() {
                hybi::Next::Event(e, _) => panic!("{e:?}"),
                hybi::Next::Write(_) | hybi::Next::Wait(_) => {}
                hybi::Next::Close(c) => failed = c.error,
            }
            if failed.is_some() {
                break;
            }
            if s.buffered_output() > 0 {
                let _ = take_output(&mut s);
                failed = match s.next() {
                    hybi::Next::Close(c) => c.error,
                    _ => None,
                };
                break;
            }
        }
    });
    assert!(
        matches!(
            failed,
            Some(hybi::Error::Protocol(
                hybi::ProtocolError::MessageTooLarge { max: LIMIT, .. }
            ))
        ),
        "{failed:?}"
    );
    eprintln!("bomb {} bytes; peak {} KiB", bomb.len(), peak >> 10);
    // The limit, plus one growth step, the receive buffer and the inflater.
    assert!(
        peak <= LIMIT + (512 << 10),
        "peak {} KiB over {} KiB",
        peak >> 10,
        LIMIT >> 10
    );
}

#[test]
fn a_peers_compression_context_costs_its_window_not_an_inflater() {
    // A server that keeps no compression context of its own (server_no_context_takeover)
    // while its client does: between messages the server connection holds the last
    // window of what the client's messages inflated to, and a driver's pool holds the
    // inflater, as hybi-mio's workers do.
    use hybi::deflate::{Agreement, DeflateConfig, Inflater};
    for bits in [15u8, 12] {
        let agreement = Agreement {
            server_no_context_takeover: true,
            client_max_window_bits: bits,
            ..Agreement::default()
        };
        let mut c = client_with(Config::default());
        c.enable_deflate(agreement, DeflateConfig::default());
        let mut wire = Vec::new();
        for i in 0..200 {
            let text: String = (0..60)
                .map(|k| format!("{{\"id\":{},\"user\":\"u{}\"}},", i * 60 + k, (i + k) % 11))
                .collect();
            c.send_text(&text).unwrap();
            wire.extend(take_output(&mut c));
        }
        let mut pool = Some(Box::new(Inflater::new()));
        let mut s = Connection::server(Config::default());
        let base = LIVE.with(Cell::get);
        s.enable_deflate(agreement, DeflateConfig::default());
        let mut got = 0;
        for chunk in wire.chunks(4096) {
            if let Some(i) = pool.take() {
                pool = s.give_inflater(i);
            }
            s.receive(chunk);
            got += drain(&mut s).len();
            pool = pool.or_else(|| s.take_inflater());
            let _ = s.take_read_buffer();
            let _ = s.take_message_buffer();
        }
        assert_eq!(got, 200);
        let held = LIVE.with(Cell::get) - base;
        let window = 1usize << bits;
        eprintln!("{bits} bits: {} B held between messages", held);
        assert!(held <= 2 * window + 1024, "{held} bytes at {bits} bits");
        assert!(pool.is_some(), "the inflater went back to the pool");
    }
}
