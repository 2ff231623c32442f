//! permessage-deflate on the event loop: negotiated both ways, compressed echoes, and
//! what an idle compressed connection costs: nothing beyond an uncompressed one when
//! no context is kept (the worker lends its compressor and inflater per message), and
//! the negotiated windows' state with context takeover. A test binary of its own: it
//! installs a counting global allocator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use hybi_mio::hybi::deflate::{Agreement, DeflateConfig};
use hybi_mio::{ClientOptions, Context, Handler, Server};

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

/// Tests share the allocator's counter: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Echo;
impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
}

/// Sends one message on open, reports the echo and the agreement.
struct Once {
    text: String,
    tx: mpsc::Sender<(String, Option<Agreement>)>,
}
impl Handler for Once {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx.send_text(&self.text);
    }
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = self.tx.send((text.to_owned(), ctx.deflate()));
    }
}

fn json(n: usize, seed: usize) -> String {
    let mut s = String::new();
    let mut i = seed;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"id\":{i},\"user\":\"u{}\",\"text\":\"hello\"}},",
            i % 13
        ));
        i += 1;
    }
    s.truncate(n);
    s
}

/// Opens `n` connections between a server and a client loop with `server` and
/// `client` deflate settings, one compressed echo each, and returns the live heap
/// bytes per connection (both ends) once they are idle, with the agreements seen.
fn idle_cost(
    n: usize,
    server: Option<DeflateConfig>,
    client: Option<DeflateConfig>,
) -> (usize, Vec<Option<Agreement>>) {
    let srv = Server::builder()
        .workers(1)
        .config(hybi_mio::default_config().with_deflate(server))
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap();
    let url = format!("ws://{}/echo", srv.local_addr());
    let loop_ = Server::builder().workers(1).start().unwrap();
    // Warm both loops (pools, first allocations) with one connection.
    let (tx, rx) = mpsc::channel();
    let options =
        || ClientOptions::new(&url).config(hybi_mio::default_config().with_deflate(client));
    loop_
        .connect_with(
            options(),
            Once {
                text: json(2000, 0),
                tx: tx.clone(),
            },
        )
        .unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let before = LIVE.load(Ordering::SeqCst);
    let mut agreements = Vec::new();
    for i in 0..n {
        // Longer than the largest window: each end's context is full.
        let text = json(40_000, i * 7);
        loop_
            .connect_with(
                options(),
                Once {
                    text: text.clone(),
                    tx: tx.clone(),
                },
            )
            .unwrap();
        let (echo, agreed) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(echo, text);
        agreements.push(agreed);
    }
    std::thread::sleep(Duration::from_millis(200));
    let per_conn = LIVE.load(Ordering::SeqCst).saturating_sub(before) / n;
    loop_.shutdown(Duration::from_millis(200));
    srv.shutdown(Duration::from_millis(200));
    (per_conn, agreements)
}

#[test]
fn compressed_echoes_and_what_an_idle_compressed_connection_costs() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    const N: usize = 200;
    let (plain, agreed) = idle_cost(N, None, None);
    assert!(agreed.iter().all(Option::is_none));
    let lean = DeflateConfig::default().without_context_takeover();
    let (shared, agreed) = idle_cost(N, Some(lean), Some(DeflateConfig::default()));
    assert!(
        agreed.iter().all(
            |a| a.is_some_and(|a| a.server_no_context_takeover && a.client_no_context_takeover)
        )
    );
    let (takeover, agreed) = idle_cost(
        N,
        Some(DeflateConfig::default()),
        Some(DeflateConfig::default()),
    );
    assert!(
        agreed
            .iter()
            .all(|a| a.is_some_and(|a| !a.server_no_context_takeover))
    );
    let small = DeflateConfig::default().with_max_window_bits(12);
    let (takeover_12, _) = idle_cost(N, Some(small), Some(small));
    eprintln!(
        "per connection, both ends: plain {plain} B, shared {shared} B, takeover {} KiB, takeover at 12 bits {} KiB",
        takeover >> 10,
        takeover_12 >> 10
    );
    // Shared mode: an idle compressed connection costs what an uncompressed one does,
    // within 2 KiB per end.
    assert!(
        shared <= plain + 2 * (2 << 10),
        "shared {shared} vs plain {plain}"
    );
    // Context takeover keeps each end's context: the last window of bytes its
    // compressor sent and its inflater received (kept within an eighth more) and a
    // match table, compressor and inflater themselves lent by the worker: at most
    // 80 KiB per end at 15 bits, 24 KiB at 12 bits, beyond an uncompressed connection.
    assert!(takeover > shared + (64 << 10));
    assert!(
        takeover <= plain + 2 * (80 << 10),
        "takeover {takeover} vs plain {plain}"
    );
    assert!(
        takeover_12 <= plain + 2 * (24 << 10),
        "takeover at 12 bits {takeover_12} vs plain {plain}"
    );
}
