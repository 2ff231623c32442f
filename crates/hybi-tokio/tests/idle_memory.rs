//! What an idle hybi-tokio connection costs its server: 200 clients each open a
//! connection, exchange one small message and go quiet; the live heap of the whole
//! process (the server's tasks, sockets, engines; the clients here allocate nothing
//! per connection) grows by at most 2 KiB per connection (a test binary of its own:
//! it installs a counting global allocator).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use hybi_tokio::{Error, accept};

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

const CONNS: usize = 200;
const PER_CONN: usize = 2 << 10;

/// A client without allocations: the handshake from a constant, one masked text
/// frame ("hi"), its echo read into the stack.
fn open(addr: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = [0u8; 512];
    let mut len = 0;
    while !head[..len].ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut head[len..len + 1]).unwrap();
        assert_eq!(n, 1, "the server closed during the handshake");
        len += 1;
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    let key = [1u8, 2, 3, 4];
    tcp.write_all(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ key[0], b'i' ^ key[1]])
        .unwrap();
    let mut echo = [0u8; 4];
    tcp.read_exact(&mut echo).unwrap();
    assert_eq!(echo, [0x81, 2, b'h', b'i']);
    tcp
}

#[test]
fn an_idle_connection_costs_its_server_at_most_2_kib() {
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx
                .send(listener.local_addr().unwrap().to_string())
                .unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut ws = accept(tcp).await?;
                    loop {
                        match ws.recv().await {
                            Ok(m) if m.is_data() => ws.send(m).await?,
                            Ok(_) => {}
                            Err(Error::ConnectionClosed) => return Ok::<(), Error>(()),
                            Err(e) => return Err(e),
                        }
                    }
                });
            }
        });
    });
    let addr = addr_rx.recv().unwrap();
    let mut clients = Vec::with_capacity(CONNS + 8);
    // Warm up: the runtime's, the pool's and the socket registry's first allocations.
    for _ in 0..8 {
        clients.push(open(&addr));
    }
    std::thread::sleep(Duration::from_millis(100));
    let before = LIVE.load(Ordering::Relaxed);
    for _ in 8..CONNS + 8 {
        clients.push(open(&addr));
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = LIVE.load(Ordering::Relaxed);
    let per = after.saturating_sub(before) / CONNS;
    eprintln!(
        "{CONNS} idle connections: {} bytes live more, {per} B each",
        after - before
    );
    assert!(
        per <= PER_CONN,
        "{per} B per idle connection, over {PER_CONN}"
    );
    assert_eq!(clients.capacity(), CONNS + 8, "the clients allocated");
}
