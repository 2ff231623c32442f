//! Steady-state receiving and sending perform no heap allocation.
//!
//! A counting global allocator watches the test's own thread. After a warm-up (the
//! receive buffer, the output buffer and the mask-key source exist), 10,000 messages
//! of 16 B, 1 KiB and 60 KiB, binary and text, go through read_buf/commit and
//! `Connection::next`, and 10,000 messages through send_binary and the `Next::Write`s
//! of `next` in both roles: every one of those must allocate nothing.
//!
//! When one does allocate, the test fails with the backtrace of the first allocation
//! (run `cargo test -p hybi-benches --test alloc` in the default dev profile for file
//! and line numbers).

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};

use hybi::{Config, Connection};
use hybi_benches::{
    CHUNK, Content, Cycle, KernelSink, XorShift, client_stream, payload, receive_messages,
    send_messages,
};

/// Counts the allocations made by the thread that turned counting on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Set while the hook itself allocates (capturing a backtrace).
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static FIRST: RefCell<Option<(Layout, Backtrace)>> = const { RefCell::new(None) };
}

impl Counting {
    #[inline]
    fn note(layout: Layout) {
        // `try_with`: thread-locals may be gone while a thread shuts down.
        let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
        if !counting || IN_HOOK.try_with(Cell::get).unwrap_or(true) {
            return;
        }
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        IN_HOOK.with(|h| h.set(true));
        FIRST.with(|first| {
            let mut first = first.borrow_mut();
            if first.is_none() {
                *first = Some((layout, Backtrace::force_capture()));
            }
        });
        IN_HOOK.with(|h| h.set(false));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the hook only
// bumps thread-local counters (and, once, captures a backtrace with itself disabled).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Counting::note(layout);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Counting::note(layout);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Counting::note(layout);
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

/// Runs `f` with counting on; panics with the first allocation's backtrace if any.
fn assert_no_allocation<R>(what: &str, f: impl FnOnce() -> R) -> R {
    ALLOCATIONS.with(|n| n.set(0));
    FIRST.with(|first| first.borrow_mut().take());
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    let count = ALLOCATIONS.with(Cell::get);
    if count > 0 {
        let first = FIRST.with(|first| first.borrow_mut().take());
        let (layout, trace) = first.map_or_else(
            || ("?".to_string(), String::new()),
            |(l, t)| (format!("{} bytes", l.size()), t.to_string()),
        );
        panic!(
            "{what}: {count} heap allocation(s) in the steady state (expected none).\n\
             First allocation ({layout}) at:\n{trace}"
        );
    }
    result
}

const MESSAGES: usize = 10_000;
const SIZES: [usize; 3] = [16, 1 << 10, 60 << 10];

fn receive_case(content: Content, size: usize, messages: usize) {
    let data = payload(content, size);
    // A wire of a few hundred KiB at most, replayed until all messages are in.
    let frames = ((512 << 10) / size).clamp(8, messages);
    let wire = client_stream(content, &data, frames);
    let mut cycle = Cycle::new(&wire);
    let mut conn = Connection::server(Config::default());
    // Warm-up: the receive buffer is allocated on first use.
    receive_messages(&mut conn, &mut cycle, 2 * frames);
    let what = format!(
        "receiving {messages} {} messages of {size} B",
        content.name()
    );
    let (msgs, bytes) =
        assert_no_allocation(&what, || receive_messages(&mut conn, &mut cycle, messages));
    assert!(msgs >= messages);
    assert_eq!(bytes, msgs * size);
}

#[test]
fn receiving_binary_messages_does_not_allocate() {
    for size in SIZES {
        receive_case(Content::Binary, size, MESSAGES);
    }
}

#[test]
fn receiving_text_messages_does_not_allocate() {
    for size in SIZES {
        receive_case(Content::Ascii, size, MESSAGES);
        receive_case(Content::MultiByte, size, MESSAGES);
    }
}

fn send_case(client: bool, size: usize) {
    let data = payload(Content::Binary, size);
    let mut conn = if client {
        let mut rng = XorShift::new(42);
        Connection::client(Config::default(), move |buf: &mut [u8]| rng.fill(buf))
    } else {
        Connection::server(Config::default())
    };
    // Warm-up: the output buffer grows to its working size (a little over CHUNK),
    // which takes a few drains.
    let mut sink = KernelSink::new();
    send_messages(&mut conn, &mut sink, &data, 4 * (CHUNK / size + 1));
    let role = if client { "client" } else { "server" };
    let what = format!("sending {MESSAGES} binary messages of {size} B as a {role}");
    let written = assert_no_allocation(&what, || {
        send_messages(&mut conn, &mut sink, &data, MESSAGES)
    });
    assert!(written > MESSAGES * size);
}

#[test]
fn sending_as_a_client_does_not_allocate() {
    for size in SIZES {
        send_case(true, size);
    }
}

#[test]
fn sending_as_a_server_does_not_allocate() {
    for size in SIZES {
        send_case(false, size);
    }
}

// Paths that allocated before the engine kept its message buffer between messages
// and compacted before growing; kept as regressions.

/// Messages larger than the receive buffer (here 1 MiB) are assembled in a message
/// buffer kept between messages.
#[test]
fn receiving_1mib_messages_does_not_allocate() {
    // 100 messages: 100 MiB through a debug build is slow enough.
    receive_case(Content::Binary, 1 << 20, 100);
}

/// The copying input path, `receive(&[u8])`, fed 64 KiB reads: a read that does not
/// fit next to a partial frame grows the buffer once; it is kept, not shrunk back.
#[test]
fn receiving_through_the_copying_path_does_not_allocate() {
    for size in SIZES {
        let data = payload(Content::Binary, size);
        let wire = client_stream(
            Content::Binary,
            &data,
            ((512 << 10) / size).clamp(8, MESSAGES),
        );
        let mut conn = Connection::server(Config::default());
        let mut pos = 0;
        let mut run = |conn: &mut Connection, count: usize| {
            let mut msgs = 0;
            while msgs < count {
                let n = (wire.len() - pos).min(CHUNK);
                conn.receive(&wire[pos..pos + n]);
                pos = (pos + n) % wire.len();
                loop {
                    match conn.next() {
                        hybi::Next::Event(hybi::Event::Binary(_), _) => msgs += 1,
                        hybi::Next::Wait(_) => break,
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
        };
        // Warm up over several reads, so the one-time growth of the buffer for a
        // read that does not fit next to a partial frame happens here.
        run(&mut conn, 2_000.max(4 * CHUNK / size));
        let what = format!("receive() of 64 KiB reads carrying {size} B messages");
        assert_no_allocation(&what, || run(&mut conn, MESSAGES));
    }
}

/// The counter itself works: an allocation inside the window is seen.
#[test]
fn the_counter_sees_allocations() {
    let caught = std::panic::catch_unwind(|| {
        assert_no_allocation("a Vec", || std::hint::black_box(vec![1u8; 100]).len())
    });
    let message = caught.expect_err("an allocation was missed");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("1 heap allocation(s)"), "{text}");
}
