//! Buffers shared by the connections of one worker. A connection borrows a receive
//! and an output buffer while it has bytes in flight and gives them back when idle,
//! so ten thousand idle connections hold no buffers, and the steady state allocates
//! nothing.

use hybi::Connection;

/// Free buffers kept per kind; more are freed.
const KEEP: usize = 256;

#[derive(Default)]
pub(crate) struct Pool {
    read: Vec<Vec<u8>>,
    write: Vec<Vec<u8>>,
}

impl Pool {
    /// Lends `conn` a receive buffer if it has none.
    pub(crate) fn lend_read(&mut self, conn: &mut Connection) {
        if let Some(buf) = self.read.pop() {
            if let Some(unused) = conn.give_read_buffer(buf) {
                self.read.push(unused);
            }
        }
    }

    /// Lends `conn` an output buffer if it has none.
    pub(crate) fn lend_write(&mut self, conn: &mut Connection) {
        if let Some(buf) = self.write.pop() {
            if let Some(unused) = conn.give_output_buffer(buf) {
                self.write.push(unused);
            }
        }
    }

    /// Takes back whatever buffers `conn` no longer needs.
    pub(crate) fn reclaim(&mut self, conn: &mut Connection) {
        if let Some(buf) = conn.take_read_buffer() {
            if self.read.len() < KEEP {
                self.read.push(buf);
            }
        }
        if let Some(buf) = conn.take_output_buffer() {
            if self.write.len() < KEEP {
                self.write.push(buf);
            }
        }
    }
}
