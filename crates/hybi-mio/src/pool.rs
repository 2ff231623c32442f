//! Buffers shared by the connections of one worker. A connection borrows a receive,
//! a message and an output buffer while it has bytes in flight and gives them back
//! when idle, so ten thousand idle connections hold no buffers, the steady state
//! allocates nothing, and the few buffers in use stay warm in the cache.
//!
//! The same goes for permessage-deflate's compressor and inflater, where the agreement
//! lets a connection forget its compression context between messages (no context
//! takeover): they are lent while a message is compressed or inflated, so an idle
//! compressed connection holds no compression state.

use hybi::Connection;
use hybi::deflate::{Deflater, Inflater};

/// Free buffers kept per kind; more are freed.
const KEEP: usize = 256;
/// Free bytes kept per kind (receive buffers are 256 KiB by default, message buffers
/// at most 2 MiB): what a burst leaves behind is bounded.
const KEEP_BYTES: usize = 16 << 20;

/// Free buffers of one kind.
#[derive(Default)]
struct Shelf {
    bufs: Vec<Vec<u8>>,
    /// Their total capacity.
    bytes: usize,
}

impl Shelf {
    fn take(&mut self) -> Option<Vec<u8>> {
        let buf = self.bufs.pop()?;
        self.bytes -= buf.capacity();
        Some(buf)
    }

    /// Keeps `buf` if the shelf has room; frees it otherwise.
    fn keep(&mut self, buf: Vec<u8>) {
        if self.bufs.len() < KEEP && self.bytes + buf.capacity() <= KEEP_BYTES {
            self.bytes += buf.capacity();
            self.bufs.push(buf);
        }
    }
}

/// Free compressors and inflaters kept per worker.
const KEEP_CODECS: usize = 4;

#[derive(Default)]
pub(crate) struct Pool {
    read: Shelf,
    /// Assembly buffers of large and fragmented messages.
    message: Shelf,
    write: Shelf,
    // Boxed as the engine lends and takes them: moving a box in and out is a pointer.
    #[allow(clippy::vec_box)]
    deflaters: Vec<Box<Deflater>>,
    #[allow(clippy::vec_box)]
    inflaters: Vec<Box<Inflater>>,
}

impl Pool {
    /// Lends `conn` a receive buffer and a message buffer if it has none (and an
    /// inflater, when it may use a shared one).
    pub(crate) fn lend_read(&mut self, conn: &mut Connection) {
        if conn.deflate().is_some() {
            if let Some(inflater) = self.inflaters.pop() {
                if let Some(unused) = conn.give_inflater(inflater) {
                    self.inflaters.push(unused);
                }
            }
        }
        if let Some(buf) = self.read.take() {
            if let Some(unused) = conn.give_read_buffer(buf) {
                self.read.keep(unused);
            }
        }
        if let Some(buf) = self.message.take() {
            if let Some(unused) = conn.give_message_buffer(buf) {
                self.message.keep(unused);
            }
        }
    }

    /// Lends `conn` an output buffer if it has none (and a compressor, when it may
    /// use a shared one).
    pub(crate) fn lend_write(&mut self, conn: &mut Connection) {
        if conn.deflate().is_some() {
            if let Some(deflater) = self.deflaters.pop() {
                if let Some(unused) = conn.give_deflater(deflater) {
                    self.deflaters.push(unused);
                }
            }
        }
        if let Some(buf) = self.write.take() {
            if let Some(unused) = conn.give_output_buffer(buf) {
                self.write.keep(unused);
            }
        }
    }

    /// Takes back whatever buffers `conn` no longer needs.
    pub(crate) fn reclaim(&mut self, conn: &mut Connection) {
        if let Some(buf) = conn.take_message_buffer() {
            self.message.keep(buf);
        }
        if let Some(buf) = conn.take_read_buffer() {
            self.read.keep(buf);
        }
        if let Some(buf) = conn.take_output_buffer() {
            self.write.keep(buf);
        }
        if conn.deflate().is_some() {
            if let Some(d) = conn.take_deflater() {
                if self.deflaters.len() < KEEP_CODECS {
                    self.deflaters.push(d);
                }
            }
            if let Some(i) = conn.take_inflater() {
                if self.inflaters.len() < KEEP_CODECS {
                    self.inflaters.push(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybi::{Event, Next};

    /// A masked client frame (key 1, 2, 3, 4).
    fn client_frame(payload: &[u8]) -> Vec<u8> {
        let key = [1u8, 2, 3, 4];
        let mut f = vec![0x82, 0xFF];
        f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    /// Reads `wire` through `read_buf`/`commit` the way a worker does; returns the
    /// length of every binary message.
    fn receive(pool: &mut Pool, conn: &mut Connection, wire: &[u8]) -> Vec<usize> {
        let mut got = Vec::new();
        let mut rest = wire;
        while !rest.is_empty() {
            pool.lend_read(conn);
            let buf = conn.read_buf();
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            conn.commit(n);
            rest = &rest[n..];
            while let Next::Event(event, _) = conn.next() {
                if let Event::Binary(b) = event {
                    got.push(b.len());
                }
            }
            pool.reclaim(conn);
        }
        got
    }

    #[test]
    fn connections_take_turns_with_one_set_of_buffers() {
        let mut pool = Pool::default();
        let config = crate::default_config();
        let big = client_frame(&vec![7u8; 1 << 20]);
        let mut a = Connection::server(config.clone());
        let mut b = Connection::server(config.clone());

        assert_eq!(receive(&mut pool, &mut a, &big), vec![1 << 20]);
        assert_eq!(pool.read.bufs.len(), 1, "a gave its receive buffer back");
        assert_eq!(pool.message.bufs.len(), 1, "and its message buffer");
        let (read_ptr, msg_ptr) = (pool.read.bufs[0].as_ptr(), pool.message.bufs[0].as_ptr());

        assert_eq!(receive(&mut pool, &mut b, &big), vec![1 << 20]);
        assert_eq!(pool.read.bufs.len(), 1);
        assert_eq!(pool.message.bufs.len(), 1);
        assert_eq!(
            pool.read.bufs[0].as_ptr(),
            read_ptr,
            "b used a's receive buffer"
        );
        assert_eq!(
            pool.message.bufs[0].as_ptr(),
            msg_ptr,
            "and its message buffer"
        );
        assert_eq!(pool.message.bytes, pool.message.bufs[0].capacity());
    }

    #[test]
    fn a_connection_mid_message_keeps_its_buffers() {
        let mut pool = Pool::default();
        let big = client_frame(&vec![7u8; 1 << 20]);
        let mut a = Connection::server(crate::default_config());
        assert!(receive(&mut pool, &mut a, &big[..600_000]).is_empty());
        assert!(
            pool.message.bufs.is_empty(),
            "the message is half assembled"
        );
        assert_eq!(receive(&mut pool, &mut a, &big[600_000..]), vec![1 << 20]);
        assert_eq!(pool.message.bufs.len(), 1);
    }

    #[test]
    fn a_shelf_keeps_a_bounded_number_of_bytes_and_buffers() {
        let mut shelf = Shelf::default();
        for _ in 0..20 {
            shelf.keep(vec![0; 2 << 20]);
        }
        assert_eq!(shelf.bufs.len(), KEEP_BYTES / (2 << 20));
        assert_eq!(shelf.bytes, KEEP_BYTES);
        let mut shelf = Shelf::default();
        for _ in 0..KEEP + 10 {
            shelf.keep(vec![0; 16]);
        }
        assert_eq!(shelf.bufs.len(), KEEP);
        assert!(shelf.take().is_some());
        assert_eq!(shelf.bytes, (KEEP - 1) * 16);
    }
}
