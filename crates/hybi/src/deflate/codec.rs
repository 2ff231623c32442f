//! The compressor and decompressor, over zlib-rs (raw deflate streams).

use alloc::vec::Vec;
use core::fmt;

use zlib_rs::{DeflateFlush, InflateFlush, Status};

use super::quick::{self, Quick};

/// The four bytes a sync flush ends with; RFC 7692 §7.2.1 removes them from a
/// message's end on send and §7.2.2 appends them on receive.
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// A raw-deflate compressor with a given window and level.
///
/// Two engines inside, each made on first use: zlib-rs for messages compressed with
/// context takeover or in fragments, and hybi's own quick compressor for whole
/// messages compressed alone at level 1 (no context takeover), which needs no reset
/// between messages.
pub struct Deflater {
    z: Option<zlib_rs::Deflate>,
    /// zlib-rs compressed since its last reset.
    z_used: bool,
    quick: Option<Quick>,
    bits: u8,
    level: u8,
    /// The compressed bytes of the message last compressed (kept initialized to its
    /// length, reused from message to message).
    pub(crate) out: Vec<u8>,
}

impl fmt::Debug for Deflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflater")
            .field("window_bits", &self.bits)
            .field("level", &self.level)
            .finish()
    }
}

impl Deflater {
    /// A compressor for windows of `window_bits` (8-15) at `level` (0-9). A window of
    /// 8 bits runs with 9, whose longest distance (250 bytes) fits 8 bits (zlib cannot
    /// make raw streams with an 8-bit window).
    pub fn new(level: u8, window_bits: u8) -> Deflater {
        let bits = window_bits.clamp(9, 15);
        let level = level.min(9);
        Deflater {
            z: None,
            z_used: false,
            quick: None,
            bits,
            level,
            out: Vec::new(),
        }
    }

    /// True if this compressor may serve a connection that agreed on `window_bits` at
    /// `level`: its window is not larger.
    pub fn fits(&self, level: u8, window_bits: u8) -> bool {
        self.bits <= window_bits.clamp(9, 15) && self.level == level.min(9)
    }

    /// Forgets every earlier message (no context takeover).
    pub fn reset(&mut self) {
        if self.z_used {
            if let Some(z) = self.z.as_mut() {
                z.reset();
            }
            self.z_used = false;
        }
    }

    /// Compresses a whole message on its own (the compressor keeps no context of it),
    /// with references of at most `1 << window_bits` bytes, as [`compress`](Self::compress)
    /// does.
    pub(crate) fn compress_alone(&mut self, input: &[u8], window_bits: u8) -> Option<usize> {
        if self.level != 1 || input.len() >= quick::MAX_INPUT {
            let len = self.compress(input);
            self.reset();
            return len;
        }
        self.quick
            .get_or_insert_with(|| Quick::new(quick::SHARED_TABLE_BITS))
            .compress(input, window_bits, &mut self.out);
        Some(self.out.len())
    }

    /// Drops the output buffer if a large message left it larger than `keep`.
    pub(crate) fn trim_output(&mut self, keep: usize) {
        if self.out.len() > keep {
            self.out = Vec::new();
        }
    }

    /// Compresses `input`, sync-flushed, into [`out`](Self::out) from its start and
    /// returns the length written (ending with [`TAIL`]), or `None` if the compressor
    /// failed (its state is then reset). The buffer is kept initialized to its length
    /// and grows as needed, so it is not zeroed again from message to message.
    pub(crate) fn compress(&mut self, mut input: &[u8]) -> Option<usize> {
        let (bits, level) = (self.bits, self.level);
        let z = self
            .z
            .get_or_insert_with(|| zlib_rs::Deflate::new(i32::from(level), false, bits));
        self.z_used = true;
        let out = &mut self.out;
        // Room for the data plus a little: deflate never expands by more than a few
        // bytes per 16 KiB block.
        let need = input.len() + input.len() / 1024 * 5 + 64;
        if out.len() < need {
            out.resize(need, 0);
        }
        let mut len = 0;
        loop {
            let before_in = z.total_in();
            let before_out = z.total_out();
            let room = out.len() - len;
            let status = z.compress(input, &mut out[len..], DeflateFlush::SyncFlush);
            input = &input[(z.total_in() - before_in) as usize..];
            let wrote = (z.total_out() - before_out) as usize;
            len += wrote;
            match status {
                Err(_) => {
                    z.reset();
                    self.z_used = false;
                    return None;
                }
                // All input taken and the flush complete when room was left over.
                Ok(Status::Ok | Status::StreamEnd) if input.is_empty() && wrote < room => {
                    return Some(len);
                }
                // Nothing to compress and nothing pending (a flush right after a
                // flush): zlib says so with a buffer error, and there is no output.
                Ok(Status::BufError) if input.is_empty() && wrote < room => return Some(len),
                Ok(_) => {
                    let grown = out.len() * 2;
                    out.resize(grown, 0);
                }
            }
        }
    }
}

/// Why inflating failed: the peer sent an invalid deflate stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidData;

/// A raw-deflate decompressor (32 KiB window: it reads streams made with any window).
pub struct Inflater {
    z: zlib_rs::Inflate,
    /// The peer ended its deflate stream (a final block): nothing more is inflated
    /// until the next message starts a new one.
    ended: bool,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Default for Inflater {
    fn default() -> Inflater {
        Inflater::new()
    }
}

impl Inflater {
    /// A decompressor for raw deflate streams.
    pub fn new() -> Inflater {
        Inflater {
            z: zlib_rs::Inflate::new(false, 15),
            ended: false,
        }
    }

    /// Forgets every earlier message (the peer keeps no context).
    pub fn reset(&mut self) {
        self.z.reset(false);
        self.ended = false;
    }

    /// Starts a stream that continues from `history` (the peer's earlier messages,
    /// which its back-references may reach: context takeover), as if the inflater had
    /// inflated them itself.
    pub(crate) fn prime(&mut self, history: &[u8]) -> bool {
        self.reset();
        history.is_empty() || self.z.set_dictionary(history).is_ok()
    }

    /// True after the peer ended its deflate stream with a final block: the inflater
    /// must be reset before the next message.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Inflates from `input` into `out`; returns (input bytes used, output bytes
    /// written). Stops when the input is used up or `out` is full.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), InvalidData> {
        if self.ended {
            // What follows a final block (the sync-flush tail, say) is not inflated.
            return Ok((input.len(), 0));
        }
        let before_in = self.z.total_in();
        let before_out = self.z.total_out();
        let status = self.z.decompress(input, out, InflateFlush::SyncFlush);
        let used = (self.z.total_in() - before_in) as usize;
        let wrote = (self.z.total_out() - before_out) as usize;
        match status {
            Ok(Status::Ok | Status::BufError) => Ok((used, wrote)),
            // A final block (BFINAL) ends the stream: RFC 7692 streams never end, so
            // what follows cannot be inflated; treat what came as the last data.
            Ok(Status::StreamEnd) => {
                self.ended = true;
                Ok((used, wrote))
            }
            Err(_) => Err(InvalidData),
        }
    }
}
