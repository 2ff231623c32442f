//! Buffers shared by the connections of one worker. A connection borrows a receive,
//! a message and an output buffer while it has bytes in flight and gives them back
//! when idle, so ten thousand idle connections hold no buffers, the steady state
//! allocates nothing, and the few buffers in use stay warm in the cache.

use hybi::Connection;

/// Free buffers kept per kind; more are freed.
const KEEP: usize = 256;
/// Free message buffers kept, in bytes (each is at most 2 MiB, what the engine keeps
/// between two messages).
const KEEP_MESSAGE_BYTES: usize = 16 << 20;

#[derive(Default)]
pub(crate) struct Pool {
    read: Vec<Vec<u8>>,
    /// Assembly buffers of large and fragmented messages.
    message: Vec<Vec<u8>>,
    message_bytes: usize,
    write: Vec<Vec<u8>>,
}

impl Pool {
    /// Lends `conn` a receive buffer and a message buffer if it has none.
    pub(crate) fn lend_read(&mut self, conn: &mut Connection) {
        if let Some(buf) = self.read.pop() {
            if let Some(unused) = conn.give_read_buffer(buf) {
                self.read.push(unused);
            }
        }
        if let Some(buf) = self.message.pop() {
            self.message_bytes -= buf.len();
            if let Some(unused) = conn.give_message_buffer(buf) {
                self.keep_message(unused);
            }
        }
    }

    fn keep_message(&mut self, buf: Vec<u8>) {
        if self.message.len() < KEEP && self.message_bytes + buf.len() <= KEEP_MESSAGE_BYTES {
            self.message_bytes += buf.len();
            self.message.push(buf);
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
        if let Some(buf) = conn.take_message_buffer() {
            self.keep_message(buf);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use hybi::Event;

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
            while let Ok(Some(event)) = conn.poll_event() {
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
        assert_eq!(pool.read.len(), 1, "a gave its receive buffer back");
        assert_eq!(pool.message.len(), 1, "and its message buffer");
        let (read_ptr, msg_ptr) = (pool.read[0].as_ptr(), pool.message[0].as_ptr());

        assert_eq!(receive(&mut pool, &mut b, &big), vec![1 << 20]);
        assert_eq!(pool.read.len(), 1);
        assert_eq!(pool.message.len(), 1);
        assert_eq!(pool.read[0].as_ptr(), read_ptr, "b used a's receive buffer");
        assert_eq!(pool.message[0].as_ptr(), msg_ptr, "and its message buffer");
        assert_eq!(pool.message_bytes, pool.message[0].len());
    }

    #[test]
    fn a_connection_mid_message_keeps_its_buffers() {
        let mut pool = Pool::default();
        let big = client_frame(&vec![7u8; 1 << 20]);
        let mut a = Connection::server(crate::default_config());
        assert!(receive(&mut pool, &mut a, &big[..600_000]).is_empty());
        assert!(pool.message.is_empty(), "the message is half assembled");
        assert_eq!(receive(&mut pool, &mut a, &big[600_000..]), vec![1 << 20]);
        assert_eq!(pool.message.len(), 1);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_message_bytes() {
        let mut pool = Pool::default();
        for _ in 0..20 {
            pool.keep_message(vec![0; 2 << 20]);
        }
        assert_eq!(pool.message.len(), KEEP_MESSAGE_BYTES / (2 << 20));
        assert_eq!(pool.message_bytes, KEEP_MESSAGE_BYTES);
    }
}
