//! The queue of encoded bytes waiting to be written to the transport.
//!
//! Frames are appended to one contiguous buffer. A large payload handed over by value
//! ([`Connection::send_binary_owned`](crate::Connection::send_binary_owned)) is queued as
//! its own segment instead of being copied, so a vectored write sends header and payload
//! from where they are.
//!
//! The buffer stays initialized past the queued bytes: once written, its memory is
//! reused for the next frames, which are encoded in place (the payload copied and, for
//! a client, masked in the same pass) instead of appended to a `Vec` and masked after.
//! Each byte is zero-filled once, when the buffer first grows over it.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::mask::copy_masked;

/// A payload queued by value, written after `buf[..at]`.
#[derive(Debug)]
struct Segment {
    at: usize,
    data: Vec<u8>,
    written: usize,
}

/// Encoded output: `buf[head..end]` interleaved with owned segments.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Queued bytes `buf[head..end]`; `buf[end..]` is initialized room for more.
    buf: Vec<u8>,
    head: usize,
    end: usize,
    segments: VecDeque<Segment>,
    /// Bytes ever queued.
    queued_total: u64,
    /// Bytes ever written (consumed by the caller).
    written_total: u64,
}

/// Capacity kept when the buffer empties; anything above is released.
const KEEP_CAPACITY: usize = 256 << 10;

/// Written bytes at the front of the buffer below which it is not compacted.
const COMPACT_AFTER: usize = 4 << 10;

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

    /// Queues a frame: the first `header_len` bytes of `header` (little-endian, from
    /// [`FrameHeader::encode_word`](crate::frame::FrameHeader::encode_word)), then
    /// `payload`, masked with `mask` if given (the client role).
    #[inline]
    pub(crate) fn push_frame(
        &mut self,
        header: u128,
        header_len: usize,
        payload: &[u8],
        mask: Option<[u8; 4]>,
    ) {
        const WORD: usize = core::mem::size_of::<u128>();
        let room = self.room(WORD + payload.len());
        // One 16-byte store; the bytes past `header_len` are overwritten by the
        // payload or left as room.
        room[..WORD].copy_from_slice(&header.to_le_bytes());
        let body = &mut room[header_len..header_len + payload.len()];
        match mask {
            Some(key) => copy_masked(key, 0, payload, body),
            None => body.copy_from_slice(payload),
        }
        self.commit(header_len + payload.len());
    }

    /// Queues `bytes` as they are.
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) {
        self.room(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// At least `n` initialized bytes at the end of the queue, growing the buffer
    /// (amortized, like a `Vec`) if it has fewer.
    #[inline]
    fn room(&mut self, n: usize) -> &mut [u8] {
        let need = self.end + n;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        &mut self.buf[self.end..need]
    }

    /// Moves the queued bytes to the front of the buffer once the written ones before
    /// them are at least as many (so each byte moves at most once per byte written).
    /// A queue that never empties, because the transport always has a little left to
    /// write, thus keeps a buffer of about twice what is queued instead of growing
    /// with everything ever queued.
    fn compact(&mut self) {
        let queued = self.end - self.head;
        if self.head < COMPACT_AFTER || self.head < queued {
            return;
        }
        self.buf.copy_within(self.head..self.end, 0);
        for s in &mut self.segments {
            s.at -= self.head;
        }
        self.head = 0;
        self.end = queued;
    }

    /// Records that `n` bytes were written at the end of the queue.
    #[inline]
    fn commit(&mut self, n: usize) {
        self.end += n;
        self.queued_total += n as u64;
    }

    /// Queues `data` by value after everything already queued.
    pub(crate) fn push_owned(&mut self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        self.queued_total += data.len() as u64;
        self.segments.push_back(Segment {
            at: self.end,
            data,
            written: 0,
        });
    }

    /// The first contiguous run of bytes to write.
    pub(crate) fn first_chunk(&self) -> &[u8] {
        match self.segments.front() {
            Some(s) if self.head < s.at => &self.buf[self.head..s.at],
            Some(s) => &s.data[s.written..],
            None => &self.buf[self.head..self.end],
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
        if n < out.len() && pos < self.end {
            out[n] = &self.buf[pos..self.end];
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
            self.head = 0;
            self.end = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf.truncate(KEEP_CAPACITY);
                self.buf.shrink_to(KEEP_CAPACITY);
            }
        } else {
            self.compact();
        }
    }

    /// Takes the buffer out, if nothing is queued and it has capacity. Its contents
    /// are bytes already written (room for the next frames), not an empty `Vec`.
    pub(crate) fn take_buf(&mut self) -> Option<Vec<u8>> {
        if !self.is_empty() || self.buf.capacity() == 0 {
            return None;
        }
        self.head = 0;
        self.end = 0;
        Some(core::mem::take(&mut self.buf))
    }

    /// Installs `buf` if the current buffer has no capacity; otherwise returns it.
    /// Its contents are never sent: they are room, overwritten by what is queued.
    pub(crate) fn give_buf(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        if self.buf.capacity() != 0 {
            return Some(buf);
        }
        self.buf = buf;
        self.head = 0;
        self.end = 0;
        None
    }

    /// Drops everything queued and not yet written.
    pub(crate) fn discard(&mut self) {
        self.written_total = self.queued_total;
        self.head = 0;
        self.end = 0;
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
        o.push_bytes(b"ab");
        o.push_owned(b"CDE".to_vec());
        o.push_bytes(b"fg");
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

    /// Header word for `frame_header(len)`: a server binary frame, 7-bit length.
    fn small_header(len: usize) -> (u128, usize) {
        assert!(len < 126);
        (0x82 | ((len as u128) << 8), 2)
    }

    #[test]
    fn bytes_left_in_the_room_by_earlier_frames_are_never_sent() {
        let mut o = Output::default();
        let (h, hl) = small_header(100);
        o.push_frame(h, hl, &[0xAA; 100], None);
        o.advance(o.len());
        assert!(o.is_empty());
        // The room now holds 0xAA bytes; a short frame overwrites only its own part.
        let (h, hl) = small_header(3);
        o.push_frame(h, hl, b"abc", None);
        assert_eq!(o.first_chunk(), b"\x82\x03abc");
        let mut slices = [&[][..]; 4];
        assert_eq!(o.chunks(&mut slices), 1);
        assert_eq!(slices[0], b"\x82\x03abc");
    }

    #[test]
    fn a_given_buffer_is_room_and_its_contents_are_never_sent() {
        let mut o = Output::default();
        assert!(o.give_buf(vec![0xEE; 4096]).is_none());
        o.push_bytes(b"xy");
        o.push_frame(0x8a, 2, b"", None);
        assert_eq!(drain_all(&mut o), b"xy\x8a\x00");
        // A second buffer is refused while the first is installed.
        assert!(o.give_buf(vec![0; 8]).is_some());
    }

    #[test]
    fn masked_frames_are_masked_in_place() {
        let mut o = Output::default();
        let key = [0x37, 0xfa, 0x21, 0x3d];
        // RFC 6455 §5.7: a masked "Hello" from a client.
        let header = 0x81 | (0x85 << 8) | (u128::from(u32::from_le_bytes(key)) << 16);
        o.push_frame(header, 6, b"Hello", Some(key));
        assert_eq!(
            drain_all(&mut o),
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }

    #[test]
    fn a_queue_that_never_empties_keeps_a_bounded_buffer() {
        let mut o = Output::default();
        let mut expected = Vec::new();
        let mut out = Vec::new();
        o.push_owned(vec![7; 300]);
        expected.extend_from_slice(&[7; 300]);
        for i in 0..10_000u32 {
            let frame = [i as u8; 100];
            o.push_bytes(&frame);
            expected.extend_from_slice(&frame);
            if i % 500 == 250 {
                // A segment in the middle: positions after a move must follow.
                o.push_owned(vec![i as u8; 50]);
                expected.extend_from_slice(&[i as u8; 50]);
            }
            // The transport writes a little less than was queued: never empty.
            let mut budget = 95;
            while budget > 0 {
                let chunk = o.first_chunk();
                let n = chunk.len().min(budget);
                out.extend_from_slice(&chunk[..n]);
                o.advance(n);
                budget -= n;
            }
            assert!(!o.is_empty());
            assert!(
                o.buf.len() <= 4 * o.len() + 2 * COMPACT_AFTER,
                "buffer of {} bytes for {} queued",
                o.buf.len(),
                o.len()
            );
        }
        out.extend(drain_all(&mut o));
        assert_eq!(out, expected);
    }

    #[test]
    fn a_large_burst_does_not_keep_its_memory_once_written() {
        let mut o = Output::default();
        o.push_bytes(&vec![1; 1 << 20]);
        assert!(o.buf.capacity() >= 1 << 20);
        o.advance(o.len());
        assert!(o.buf.capacity() <= KEEP_CAPACITY);
        o.push_bytes(b"after");
        assert_eq!(drain_all(&mut o), b"after");
    }

    proptest::proptest! {
        /// Whatever mix of frames, raw bytes and owned segments is queued, and
        /// however the writes fall, the bytes come out once each, in order.
        #[test]
        fn output_is_what_was_queued_in_order(
            ops in proptest::collection::vec(
                (0u8..3, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 1usize..300),
                1..40,
            ),
        ) {
            let mut o = Output::default();
            let mut expected = Vec::new();
            let mut out = Vec::new();
            for (kind, data, write) in ops {
                match kind {
                    0 if data.len() < 126 => {
                        let (h, hl) = small_header(data.len());
                        o.push_frame(h, hl, &data, None);
                        expected.extend_from_slice(&h.to_le_bytes()[..hl]);
                        expected.extend_from_slice(&data);
                    }
                    1 => {
                        o.push_owned(data.clone());
                        expected.extend_from_slice(&data);
                    }
                    _ => {
                        o.push_bytes(&data);
                        expected.extend_from_slice(&data);
                    }
                }
                // Write part of what is queued, as a transport would.
                let chunk = o.first_chunk();
                let n = chunk.len().min(write);
                out.extend_from_slice(&chunk[..n]);
                o.advance(n);
                proptest::prop_assert_eq!(o.len(), expected.len() - out.len());
            }
            out.extend(drain_all(&mut o));
            proptest::prop_assert_eq!(out, expected);
        }
    }

    #[test]
    fn chunks_respects_small_output_arrays() {
        let mut o = Output::default();
        o.push_owned(vec![1; 3]);
        o.push_bytes(&[2]);
        let mut slices = [&[][..]; 1];
        assert_eq!(o.chunks(&mut slices), 1);
        assert_eq!(slices[0], &[1, 1, 1]);
    }
}
