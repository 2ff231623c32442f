//! The event loop's hot path allocates nothing per message: once warm, echoing
//! thousands of messages makes no heap allocation on the worker thread. (A test binary
//! of its own: it installs a counting global allocator.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use hybi_mio::{Context, Handler, Server};
use hybi_std::Message;

thread_local! {
    /// Set on the worker thread by the handler: only its allocations count.
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

struct Counting;

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHED.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHED.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Echo;
impl Handler for Echo {
    fn on_open(&mut self, _: &mut Context<'_>) {
        WATCHED.with(|w| w.set(true));
    }
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send_binary(data);
    }
}

#[test]
fn echoing_allocates_nothing_on_the_worker_once_warm() {
    let server = Server::builder()
        .workers(1)
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap();
    let url = format!("ws://{}/echo", server.local_addr());
    let (mut ws, _) = hybi_std::connect(&url).unwrap();
    for size in [16usize, 1024, 60 << 10] {
        let payload = vec![7u8; size];
        let text = "x".repeat(size);
        let mut round = |n: usize| {
            for i in 0..n {
                if i % 2 == 0 {
                    ws.send_binary(&payload).unwrap();
                    assert!(matches!(ws.read().unwrap(), Message::Binary(b) if b.len() == size));
                } else {
                    ws.send_text(&text).unwrap();
                    assert!(matches!(ws.read().unwrap(), Message::Text(t) if t.len() == size));
                }
            }
        };
        round(500);
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        round(5_000);
        let made = ALLOCATIONS.load(Ordering::SeqCst) - before;
        assert_eq!(
            made, 0,
            "{made} allocations on the worker for 5,000 echoes of {size} B"
        );
    }
}
