//! A peer that only declares a large frame costs the server and the client about
//! their receive buffers, not the declared length (a test binary of its own: it
//! installs a counting global allocator).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hybi_std::{Handler, Peer, Server};

static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Counting;

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PEERS: usize = 32;
/// Each peer declares a frame of the largest size the default configuration accepts.
const DECLARED: u64 = 16 << 20;
/// What a connection may cost: its receive buffer (up to 256 KiB) and bookkeeping.
const PER_PEER: usize = 320 << 10;

/// A frame header declaring `DECLARED` bytes of binary payload, masked or not.
fn header(masked: bool) -> Vec<u8> {
    let mut h = vec![0x82, if masked { 0xFF } else { 0x7F }];
    h.extend_from_slice(&DECLARED.to_be_bytes());
    if masked {
        h.extend_from_slice(&[1, 2, 3, 4]);
    }
    h
}

/// Reads an HTTP head (up to the blank line).
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "connection closed in the head"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Waits for the other threads to act on what they were sent, then reports live bytes.
fn settled_live() -> usize {
    std::thread::sleep(Duration::from_millis(300));
    LIVE.load(Ordering::SeqCst)
}

struct Echo;
impl Handler for Echo {
    fn on_binary(&mut self, peer: &Peer, data: &[u8]) {
        let _ = peer.send_binary(data);
    }
}

#[test]
fn declared_frames_cost_the_server_its_buffers_only() {
    let server = Server::builder()
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap();
    let addr = server.local_addr();
    let before = settled_live();
    let mut peers = Vec::new();
    for _ in 0..PEERS {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        assert!(read_head(&mut s).starts_with("HTTP/1.1 101"));
        s.write_all(&header(true)).unwrap();
        peers.push(s);
    }
    let grown = settled_live().saturating_sub(before);
    eprintln!("server: {} KiB per declaring peer", grown / PEERS / 1024);
    assert!(
        grown <= PEERS * PER_PEER,
        "{} KiB per peer that sent a 14-byte header",
        grown / PEERS / 1024
    );
    drop(peers);
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_declared_frame_costs_a_client_its_buffers_only() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..PEERS {
            let (mut s, _) = listener.accept().unwrap();
            let head = read_head(&mut s);
            let key = head
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .expect("a key");
            let accept = hybi_std::hybi::handshake::accept_key(key.trim().as_bytes());
            write!(
                s,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                accept.as_str()
            )
            .unwrap();
            s.write_all(&header(false)).unwrap();
            held.push(s);
        }
        held
    });
    let before = settled_live();
    let mut readers = Vec::new();
    for _ in 0..PEERS {
        let mut ws = hybi_std::ClientBuilder::new(&format!("ws://{addr}/"))
            .read_timeout(Some(Duration::from_millis(200)))
            .connect()
            .unwrap()
            .0;
        // The client reads, the frame's bytes never come: a read timeout.
        readers.push(std::thread::spawn(move || {
            let _ = ws.read();
            ws
        }));
    }
    let grown = settled_live().saturating_sub(before);
    let held = fake.join().unwrap();
    let clients: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    eprintln!("client: {} KiB per declaring server", grown / PEERS / 1024);
    assert!(
        grown <= PEERS * PER_PEER,
        "{} KiB per client sent a 10-byte header",
        grown / PEERS / 1024
    );
    drop((held, clients));
}
