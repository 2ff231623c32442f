//! Replays fuzz inputs through the fuzz targets' own checks, as a normal test: the
//! hand-made seed corpus of every target (`fuzz/corpus/<target>/`) and every input
//! the fuzzers found a bug with (below, minimized). The checks are the files in
//! `fuzz/src/`, included here as modules so both run the very same code.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

#[path = "../../../fuzz/src/alloc.rs"]
mod alloc;
#[path = "../../../fuzz/src/conn.rs"]
mod conn;
#[path = "../../../fuzz/src/deflate.rs"]
mod deflate;
#[path = "../../../fuzz/src/frame_header.rs"]
mod frame_header;
#[path = "../../../fuzz/src/handshake.rs"]
mod handshake;
#[path = "../../../fuzz/src/structured.rs"]
mod structured;

use std::path::PathBuf;

use hybi::Role;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// The files of `fuzz/corpus/<target>/` (none if the fuzz directory is absent).
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    let files = corpus(target);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    assert!(
        !dir.exists() || !files.is_empty(),
        "no seed corpus for {target}"
    );
    for (path, data) in files {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(r.is_ok(), "{target}: {} fails its checks", path.display());
    }
}

#[test]
fn seed_corpus_frame_header() {
    replay("frame_header", frame_header::check);
}

#[test]
fn seed_corpus_server_connection() {
    replay("server_connection", |d| conn::run(Role::Server, d));
}

#[test]
fn seed_corpus_client_connection() {
    replay("client_connection", |d| conn::run(Role::Client, d));
}

#[test]
fn seed_corpus_server_handshake() {
    replay("server_handshake", handshake::run_server);
}

#[test]
fn seed_corpus_client_handshake() {
    replay("client_handshake", handshake::run_client);
}

#[test]
fn seed_corpus_structured() {
    replay("structured", structured::run);
}

#[test]
fn seed_corpus_deflate_roundtrip() {
    replay("deflate_roundtrip", deflate::run_roundtrip);
}

#[test]
fn seed_corpus_deflate_connection() {
    replay("deflate_connection", deflate::run_connection);
}

#[test]
fn seed_corpus_deflate_negotiation() {
    replay("deflate_negotiation", deflate::run_negotiation);
}

/// Found by `server_connection` (minimized): flags 0xF4 (keepalive on, end of input
/// after the last byte), then two clock ticks. A keepalive ping goes out at 14.25 s
/// and arms the pong deadline (16.25 s); the end of input fails the connection with
/// `UnexpectedEof`; from then on `handle_timeout` returns early (the connection failed)
/// without disarming the pong deadline, so `poll_timeout` keeps answering 16.25 s at
/// 24.25 s and later: a caller that sleeps until `poll_timeout` spins. Fixed: the end
/// of input stops every timer.
#[test]
fn eof_leaves_a_stale_pong_deadline() {
    conn::run(Role::Server, &[0xf4, 0x9c, 0xfa, 0xff]);
}

/// Found by `server_connection` in a CI smoke run: several pings delivered before
/// the output was drained, each answered in order. The harness expected only the
/// latest to be answered (the engine's behaviour before pongs went out in order); its
/// model now accepts pongs that answer pings in order, possibly skipping older ones.
/// The inputs after it (pongs the echo mode sends back, written between automatic
/// pongs) are in the seed corpus as `regress-*`.
#[test]
fn pongs_answer_pings_in_order() {
    conn::run(
        Role::Server,
        &[
            0x1, 0xc, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0xfc, 0xa5, 0xe2, 0xc8, 0x1, 0x84,
            0x37, 0xfa, 0x21, 0x3d, 0xf9, 0x40, 0xee, 0xb1, 0x89, 0x81, 0x37, 0xfa, 0x21, 0xee,
            0xb1, 0x89, 0x81, 0x37, 0xfa, 0x21, 0x3d, 0x47, 0x0, 0x86, 0x37, 0xfa, 0x21, 0x3d,
            0xf8, 0x79, 0xef, 0x81, 0xf9, 0x4f, 0x80, 0x81, 0x37, 0xfa, 0x21, 0x3d, 0x16, 0x81,
            0x83, 0x37, 0xfa, 0x21, 0x3d, 0x55, 0x83, 0x44, 0x88, 0x3d, 0x47, 0x0, 0x86, 0x37,
            0xfa, 0x21, 0x3d, 0xf8, 0x79, 0xef, 0x81, 0xf9, 0x4f, 0x80, 0x81, 0x37, 0xfa, 0x21,
            0x3d, 0x16, 0x81, 0x83, 0x37, 0xfa, 0x21, 0x3d, 0x55, 0x83, 0x44, 0x88, 0x86, 0x37,
            0xfa, 0x21, 0x3d, 0x34, 0x12, 0x45, 0x52, 0x59, 0x9f,
        ],
    );
}

/// Found by `deflate_negotiation`: a client config asking for a 10-bit window of its
/// own (0x5e), answered with a bare `permessage-deflate`: the client took 15 bits as
/// its window (more than it asked). Fixed: without `client_max_window_bits` in the
/// answer, the client keeps the window it asked for.
#[test]
fn a_bare_answer_keeps_the_clients_window() {
    let mut input = vec![0xfc, 0x5e];
    input.extend_from_slice(b"permessage-deflate");
    deflate::run_negotiation(&input);
}

/// Found by `deflate_connection`: a bit flip made the client's close frame one
/// without a code (`88 80` + mask); the server answered, rightly, with a close frame
/// without a code, which the check took for a bug. Fixed in the check: a close frame
/// without a code is the answer to one without a code; a failure still needs its code.
#[test]
fn deflate_connection_close_without_a_code() {
    use base64::Engine as _;
    let input = base64::engine::general_purpose::STANDARD
        .decode("/wEABgwAAAAAAAAA/AD/")
        .unwrap();
    deflate::run_connection(&input);
}
