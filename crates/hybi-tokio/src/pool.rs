//! Receive buffers of idle connections, pooled per thread: a connection waiting for
//! input holds no buffer (the engine's is 64 KiB), and takes one from here when input
//! arrives. A runtime thread thus keeps about as many buffers as it has connections
//! reading at once.

use std::cell::RefCell;

/// Most bytes of buffers one thread keeps.
const MAX_POOLED_BYTES: usize = 4 << 20;

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
