//! Receive buffers of idle connections, pooled per thread: a connection waiting for
//! input holds no buffer (the engine's is 64 KiB), and takes one from here when input
//! arrives. A runtime thread runs one task at a time and a connection gives its buffer
//! back whenever it waits, so a thread needs about one buffer: the pool keeps a few.

use std::cell::RefCell;

use hybi::Connection;

/// Most bytes of buffers one thread keeps (four default receive buffers).
const MAX_POOLED_BYTES: usize = 256 << 10;

thread_local! {
    static POOL: RefCell<(Vec<Vec<u8>>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

/// A pooled buffer, if this thread has one.
pub(crate) fn take() -> Option<Vec<u8>> {
    POOL.with(|pool| {
        let (buffers, bytes) = &mut *pool.borrow_mut();
        let buf = buffers.pop()?;
        *bytes -= buf.capacity();
        Some(buf)
    })
}

/// Keeps `buf` for another connection on this thread (or drops it, if the pool is
/// full).
pub(crate) fn give(buf: Vec<u8>) {
    POOL.with(|pool| {
        let (buffers, bytes) = &mut *pool.borrow_mut();
        if *bytes + buf.capacity() <= MAX_POOLED_BYTES {
            *bytes += buf.capacity();
            buffers.push(buf);
        }
    });
}

/// Lends `conn`'s receive buffer to the pool while it waits for input; true if it
/// had one to lend. [`restore`] gives it one back.
pub(crate) fn lend(conn: &mut Connection) -> bool {
    conn.take_read_buffer().map(give).is_some()
}

/// Gives `conn` a pooled buffer again (if this thread has one; else the engine
/// allocates its own when it reads).
pub(crate) fn restore(conn: &mut Connection) {
    if let Some(buf) = take() {
        drop(conn.give_read_buffer(buf));
    }
}
