//! The queue of encoded bytes waiting to be written to the transport.
//!
//! Frames are appended to one contiguous buffer. A large payload handed over by value
//! ([`Connection::send_binary_owned`](crate::Connection::send_binary_owned)) is queued as
//! its own segment instead of being copied, so a vectored write sends header and payload
//! from where they are.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// A payload queued by value, written after `buf[..at]`.
#[derive(Debug)]
struct Segment {
    at: usize,
    data: Vec<u8>,
    written: usize,
}

/// Encoded output: `buf[head..]` interleaved with owned segments.
#[derive(Debug, Default)]
pub(crate) struct Output {
    buf: Vec<u8>,
    head: usize,
    segments: VecDeque<Segment>,
    /// Bytes ever queued.
    queued_total: u64,
    /// Bytes ever written (consumed by the caller).
    written_total: u64,
}

/// Capacity kept when the buffer empties; anything above is released.
const KEEP_CAPACITY: usize = 256 << 10;

impl Output {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.queued_total == self.written_total
    }

    /// Bytes queued and not yet written.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        (self.queued_total - self.written_total) as usize
    }

    #[inline]
    pub(crate) fn queued_total(&self) -> u64 {
        self.queued_total
    }

    #[inline]
    pub(crate) fn written_total(&self) -> u64 {
        self.written_total
    }

    /// The contiguous buffer, to append a frame to. Call [`commit_appended`] after.
    #[inline]
    pub(crate) fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Records that `n` bytes were appended to the buffer.
    #[inline]
    pub(crate) fn commit_appended(&mut self, n: usize) {
        self.queued_total += n as u64;
    }

    /// Queues `data` by value after everything already queued.
    pub(crate) fn push_owned(&mut self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        self.queued_total += data.len() as u64;
        self.segments.push_back(Segment {
            at: self.buf.len(),
            data,
            written: 0,
        });
    }

    /// The first contiguous run of bytes to write.
    pub(crate) fn first_chunk(&self) -> &[u8] {
        match self.segments.front() {
            Some(s) if self.head < s.at => &self.buf[self.head..s.at],
            Some(s) => &s.data[s.written..],
            None => &self.buf[self.head..],
        }
    }

    /// Fills `out` with the runs of bytes to write, in order; returns how many.
    pub(crate) fn chunks<'a>(&'a self, out: &mut [&'a [u8]]) -> usize {
        let mut n = 0;
        let mut pos = self.head;
        for seg in &self.segments {
            if n == out.len() {
                return n;
            }
            if pos < seg.at {
                out[n] = &self.buf[pos..seg.at];
                n += 1;
                if n == out.len() {
                    return n;
                }
            }
            out[n] = &seg.data[seg.written..];
            n += 1;
            pos = seg.at;
        }
        if n < out.len() && pos < self.buf.len() {
            out[n] = &self.buf[pos..];
            n += 1;
        }
        n
    }

    /// Marks `n` bytes as written.
    ///
    /// # Panics
    /// If `n` exceeds [`len`](Self::len).
    pub(crate) fn advance(&mut self, mut n: usize) {
        assert!(n <= self.len(), "advance past the end of the queued output");
        self.written_total += n as u64;
        while n > 0 {
            match self.segments.front_mut() {
                Some(s) if self.head < s.at => {
                    let take = n.min(s.at - self.head);
                    self.head += take;
                    n -= take;
                }
                Some(s) => {
                    let take = n.min(s.data.len() - s.written);
                    s.written += take;
                    n -= take;
                    if s.written == s.data.len() {
                        self.segments.pop_front();
                    }
                }
                None => {
                    self.head += n;
                    n = 0;
                }
            }
        }
        if self
            .segments
            .front()
            .is_some_and(|s| s.written == s.data.len())
        {
            self.segments.pop_front();
        }
        if self.is_empty() {
            self.buf.clear();
            self.head = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf.shrink_to(KEEP_CAPACITY);
            }
        }
    }

    /// Takes the (empty) buffer out, if nothing is queued and it has capacity.
    pub(crate) fn take_buf(&mut self) -> Option<Vec<u8>> {
        if !self.is_empty() || self.buf.capacity() == 0 {
            return None;
        }
        self.head = 0;
        Some(core::mem::take(&mut self.buf))
    }

    /// Installs `buf` (cleared) if the current buffer has no capacity; otherwise
    /// returns it.
    pub(crate) fn give_buf(&mut self, mut buf: Vec<u8>) -> Option<Vec<u8>> {
        if self.buf.capacity() != 0 || !self.buf.is_empty() {
            return Some(buf);
        }
        buf.clear();
        self.buf = buf;
        self.head = 0;
        None
    }

    /// Drops everything queued and not yet written.
    pub(crate) fn discard(&mut self) {
        self.written_total = self.queued_total;
        self.buf.clear();
        self.head = 0;
        self.segments.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn drain_all(o: &mut Output) -> Vec<u8> {
        let mut all = Vec::new();
        while !o.is_empty() {
            let chunk = o.first_chunk().to_vec();
            // write in awkward pieces
            let n = chunk.len().clamp(1, 3);
            all.extend_from_slice(&chunk[..n]);
            o.advance(n);
        }
        all
    }

    #[test]
    fn segments_keep_order() {
        let mut o = Output::default();
        o.buf_mut().extend_from_slice(b"ab");
        o.commit_appended(2);
        o.push_owned(b"CDE".to_vec());
        o.buf_mut().extend_from_slice(b"fg");
        o.commit_appended(2);
        o.push_owned(b"HI".to_vec());
        assert_eq!(o.len(), 9);
        let mut slices = [&[][..]; 8];
        let n = o.chunks(&mut slices);
        let joined: Vec<u8> = slices[..n].concat();
        assert_eq!(joined, b"abCDEfgHI");
        assert_eq!(drain_all(&mut o), b"abCDEfgHI");
        assert!(o.is_empty());
        assert_eq!(o.written_total(), 9);
    }

    #[test]
    fn chunks_respects_small_output_arrays() {
        let mut o = Output::default();
        o.push_owned(vec![1; 3]);
        o.buf_mut().push(2);
        o.commit_appended(1);
        let mut slices = [&[][..]; 1];
        assert_eq!(o.chunks(&mut slices), 1);
        assert_eq!(slices[0], &[1, 1, 1]);
    }
}
