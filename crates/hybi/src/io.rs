//! Helpers for drivers over `std::io` (the `std` feature): read from a [`Read`] into
//! the engine, write its output to a [`Write`], and convert between the engine's
//! [`Instant`] and [`std::time::Instant`]. The engine itself stays free of I/O: these
//! only move bytes between a caller's transport and a [`Connection`].

use std::io::{self, IoSlice, Read, Write};
use std::sync::OnceLock;

use crate::connection::{Connection, Transmit};
use crate::time::Instant;

/// Most runs of bytes handed to one vectored write.
const MAX_SLICES: usize = 16;

impl Connection {
    /// Reads once from `reader` straight into the engine's buffer
    /// ([`read_buf`](Connection::read_buf) + [`commit`](Connection::commit)) and
    /// returns the number of bytes read. `Ok(0)` is the end of input and is recorded
    /// as such ([`receive_eof`](Connection::receive_eof)). Interrupted reads are
    /// retried; other errors, `WouldBlock` and timeouts included, are returned with
    /// nothing recorded.
    ///
    /// Call it when [`next`](Connection::next) has returned [`Next::Wait`] or
    /// [`Next::Write`](crate::Next::Write) (the events are drained then).
    ///
    /// [`Next::Wait`]: crate::Next::Wait
    pub fn read_from<R: Read + ?Sized>(&mut self, reader: &mut R) -> io::Result<usize> {
        loop {
            let buf = self.read_buf();
            if buf.is_empty() {
                // Only a driver that reads before draining events gets here; reading
                // into an empty slice would look like the end of input.
                return Err(io::Error::other(
                    "hybi: read before the events were drained",
                ));
            }
            match reader.read(buf) {
                Ok(0) => {
                    self.receive_eof();
                    return Ok(0);
                }
                Ok(n) => {
                    self.commit(n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Transmit<'_> {
    /// Writes the queued output to `writer` with one write (vectored when it is in
    /// several runs) and consumes what was written; returns how many bytes that was.
    /// Interrupted writes are retried; a writer that takes no bytes is an error
    /// (`WriteZero`). Whatever was not written stays queued.
    pub fn write_to<W: Write + ?Sized>(self, writer: &mut W) -> io::Result<usize> {
        let (slices, count) = self.io_slices::<MAX_SLICES>();
        let written = loop {
            let result = if count == 1 {
                // One run (small frames are encoded whole): a plain write, which costs
                // the kernel less than a one-element writev.
                writer.write(&slices[0])
            } else {
                writer.write_vectored(&slices[..count])
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        self.consume(written);
        Ok(written)
    }
}

impl Transmit<'_> {
    /// The queued output as at most `N` [`IoSlice`]s for one vectored write (an async
    /// transport's `poll_write_vectored`, say), and how many of them are used (at
    /// least one). Then [`consume`](Self::consume) what the write took.
    pub fn io_slices<const N: usize>(&self) -> ([IoSlice<'_>; N], usize) {
        let mut runs: [&[u8]; N] = [&[]; N];
        let count = self.chunks(&mut runs);
        (runs.map(IoSlice::new), count)
    }
}

/// The origin of the engine's time scale in this process: the first use.
fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

impl Instant {
    /// Now, from the std monotonic clock, on a scale shared by the whole process
    /// (time since its first use).
    pub fn now() -> Instant {
        Instant::from_std(std::time::Instant::now())
    }

    /// A std instant on the engine's scale; instants before the scale's origin map to
    /// [`Instant::ZERO`].
    pub fn from_std(t: std::time::Instant) -> Instant {
        Instant::from_duration(t.saturating_duration_since(epoch()))
    }

    /// This instant as a std instant (the inverse of [`from_std`](Self::from_std)), to
    /// wait until a deadline from [`Next::Wait`](crate::Next::Wait).
    pub fn to_std(self) -> std::time::Instant {
        epoch() + self.as_duration()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Connection, MessageKind, Next};
    use alloc::vec::Vec;

    #[test]
    fn io_slices_hand_out_the_queued_output_in_order() {
        let mut conn = Connection::server(Config::default());
        conn.send_text("one").unwrap();
        conn.send_fragment(MessageKind::Binary, &[7; 300], true)
            .unwrap();
        let Next::Write(output) = conn.next() else {
            panic!("output queued");
        };
        let expected = output.len();
        let (slices, count) = output.io_slices::<4>();
        assert!((1..=4).contains(&count));
        let bytes: Vec<u8> = slices[..count]
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect();
        assert_eq!(bytes.len(), expected);
        assert_eq!(&bytes[..5], b"\x81\x03one");
        assert_eq!(&bytes[5..7], [0x82, 126]);
        assert!(bytes[9..].iter().all(|&b| b == 7));
    }
}
