//! hybi's own compressor for whole messages that keep no context (level 1): LZ77 over
//! a hash of 4-byte sequences, coded with the fixed Huffman codes of RFC 1951
//! §3.2.6, one block per message, then the sync flush's empty stored block.
//!
//! Why not the zlib-rs compressor for these: forgetting a message means clearing its
//! 128 KiB hash table, which for a 1 KiB message costs more than compressing it. This
//! table holds positions tagged by where each message starts in a running count, so an
//! entry from an earlier message is simply older than the current start: nothing is
//! cleared between messages (only when the count wraps, every 4 GiB compressed). The
//! output is what zlib-rs' level 1 makes for such messages (fixed codes, no lazy
//! matching), at about the same size.

use alloc::vec::Vec;

use super::codec::TAIL;

/// log2 of the hash table's entries (4 bytes each: 16 KiB), for a table shared by
/// the connections of a thread.
pub(crate) const SHARED_TABLE_BITS: u32 = 12;

/// The longest match deflate can code.
const MAX_MATCH: usize = 258;

/// Matches start at 4 bytes (the hashed sequence).
const MIN_MATCH: usize = 4;

/// Messages this long or longer go to zlib-rs (positions are counted in `u32`).
pub(crate) const MAX_INPUT: usize = 1 << 30;

/// Reverses the low `len` bits of `code`: Huffman codes are sent most significant bit
/// first into a stream that is otherwise filled from the least significant bit.
const fn reverse(code: u32, len: u32) -> u32 {
    let mut out = 0;
    let mut i = 0;
    while i < len {
        out = (out << 1) | ((code >> i) & 1);
        i += 1;
    }
    out
}

/// The fixed code of literal/length symbol `sym` (RFC 1951 §3.2.6), reversed, and its
/// length in bits.
const fn fixed_code(sym: u32) -> (u32, u32) {
    let (code, len) = if sym < 144 {
        (0x30 + sym, 8)
    } else if sym < 256 {
        (0x190 + sym - 144, 9)
    } else if sym < 280 {
        (sym - 256, 7)
    } else {
        (0xc0 + sym - 280, 8)
    };
    (reverse(code, len), len)
}

/// Bits and bit count of every literal byte.
static LITERALS: [(u16, u8); 256] = {
    let mut table = [(0u16, 0u8); 256];
    let mut b = 0;
    while b < 256 {
        let (code, len) = fixed_code(b as u32);
        table[b] = (code as u16, len as u8);
        b += 1;
    }
    table
};

/// Bits and bit count of every match length 3-258 (index: length - 3): the length
/// symbol's code followed by its extra bits.
static LENGTHS: [(u32, u8); 256] = {
    let mut table = [(0u32, 0u8); 256];
    let mut x = 0u32;
    while x < 256 {
        let (sym, extra, value) = if x < 8 {
            (257 + x, 0, 0)
        } else if x == 255 {
            (285, 0, 0)
        } else {
            // The highest set bit picks the group of four symbols, the next two bits
            // the symbol, the rest are its extra bits.
            let top = 31 - x.leading_zeros();
            (
                257 + 4 * (top - 1) + ((x >> (top - 2)) & 3),
                top - 2,
                x & ((1 << (top - 2)) - 1),
            )
        };
        let (code, len) = fixed_code(sym);
        table[x as usize] = (code | (value << len), (len + extra) as u8);
        x += 1;
    }
    table
};

/// The fixed 5-bit distance codes, reversed.
static DISTANCE_CODES: [u8; 30] = {
    let mut table = [0u8; 30];
    let mut c = 0;
    while c < 30 {
        table[c] = reverse(c as u32, 5) as u8;
        c += 1;
    }
    table
};

/// The bits and bit count of distance `dist` (1-32768): code then extra bits.
#[inline(always)]
fn distance(dist: usize) -> (u64, u32) {
    let x = (dist - 1) as u32;
    if x < 4 {
        return (u64::from(DISTANCE_CODES[x as usize]), 5);
    }
    let top = 31 - x.leading_zeros();
    let code = 2 * top + ((x >> (top - 1)) & 1);
    let extra = top - 1;
    let value = x & ((1 << extra) - 1);
    (
        u64::from(DISTANCE_CODES[code as usize]) | (u64::from(value) << 5),
        5 + extra,
    )
}

/// Bits gathered least significant first, written out 32 at a time.
struct Bits<'a> {
    acc: u64,
    count: u32,
    out: &'a mut Vec<u8>,
}

impl Bits<'_> {
    /// Appends the low `count` bits of `bits` (at most 32).
    #[inline(always)]
    fn put(&mut self, bits: u64, count: u32) {
        self.acc |= bits << self.count;
        self.count += count;
        if self.count >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.count -= 32;
        }
    }

    #[inline(always)]
    fn literal(&mut self, byte: u8) {
        let (code, len) = LITERALS[usize::from(byte)];
        self.put(u64::from(code), u32::from(len));
    }

    /// Writes the last bits, the final byte padded with zeros.
    fn finish(self) {
        let bytes = self.count.div_ceil(8) as usize;
        self.out
            .extend_from_slice(&self.acc.to_le_bytes()[..bytes.min(8)]);
    }
}

#[inline(always)]
fn load32(data: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(b)
}

#[inline(always)]
fn load64(data: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(b)
}

#[inline(always)]
fn hash(four: u32, shift: u32) -> usize {
    (four.wrapping_mul(0x9e37_79b1) >> shift) as usize
}

/// How many bytes from `a` and from `b` agree, at most `max` (`b + max` within
/// `data`, `a < b`).
#[inline(always)]
fn common(data: &[u8], a: usize, b: usize, max: usize) -> usize {
    let mut n = 0;
    while n + 8 <= max {
        let diff = load64(data, a + n) ^ load64(data, b + n);
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max && data[a + n] == data[b + n] {
        n += 1;
    }
    n
}

/// The compressor's match table, reused from message to message without clearing.
///
/// Two ways to use it: [`compress`](Self::compress) forgets each message (no context
/// takeover; one table can serve every connection of a thread), and
/// [`compress_from`](Self::compress_from) + [`drop_front`](Self::drop_front) keep a
/// connection's context as a buffer of the last bytes it compressed, which its next
/// messages refer back to (context takeover).
pub(crate) struct Quick {
    /// Running position (`start` + offset in its message) of the last 4-byte sequence
    /// seen with each hash; entries below `start` belong to earlier messages.
    table: Vec<u32>,
    /// Running position of the current message's first byte (never 0, which marks an
    /// empty entry).
    start: u32,
    /// 32 - log2 of the table's entries.
    shift: u32,
    /// The farthest reference made (tests check it against the window).
    #[cfg(test)]
    farthest: usize,
}

impl Quick {
    /// A table of `2^bits` entries (8-16 bits).
    pub(crate) fn new(bits: u32) -> Quick {
        let bits = bits.clamp(8, 16);
        Quick {
            table: alloc::vec![0; 1 << bits],
            start: 1,
            shift: 32 - bits,
            #[cfg(test)]
            farthest: 0,
        }
    }

    /// Compresses `data` (shorter than [`MAX_INPUT`]) on its own into `out` (cleared
    /// first), with back-references of at most `1 << window_bits` bytes (8-15), ending
    /// with the sync flush's [`TAIL`].
    pub(crate) fn compress(&mut self, data: &[u8], window_bits: u8, out: &mut Vec<u8>) {
        self.compress_from(data, 0, window_bits, out);
        self.drop_front(data.len());
    }

    /// The first `n` bytes of the buffer given to [`compress_from`](Self::compress_from)
    /// are gone: the next buffer starts that much later.
    pub(crate) fn drop_front(&mut self, n: usize) {
        self.start += n as u32;
    }

    /// Compresses `data[from..]` into `out` (cleared first), which may refer back into
    /// `data[..from]`: the bytes this table compressed before, minus those dropped
    /// since ([`drop_front`](Self::drop_front)). References reach at most
    /// `1 << window_bits` bytes (8-15); the output ends with the sync flush's
    /// [`TAIL`]. `data` is shorter than [`MAX_INPUT`].
    pub(crate) fn compress_from(
        &mut self,
        data: &[u8],
        from: usize,
        window_bits: u8,
        out: &mut Vec<u8>,
    ) {
        debug_assert!(data.len() < MAX_INPUT && from <= data.len());
        let max_dist = 1usize << window_bits.clamp(8, 15);
        let n = data.len();
        if u64::from(self.start) + n as u64 + 1 >= u64::from(u32::MAX) {
            // Once per 4 GiB: the earlier bytes are not referred to for one message.
            self.table.fill(0);
            self.start = 1;
        }
        let start = self.start;
        let shift = self.shift;
        out.clear();
        out.reserve((n - from) + (n - from) / 8 + 16);
        // A block with fixed codes that is not the last (BFINAL 0, BTYPE 01).
        let mut bits = Bits {
            acc: 0b010,
            count: 3,
            out,
        };
        let mut i = from;
        if n >= MIN_MATCH {
            let table = &mut self.table[..];
            while i + MIN_MATCH <= n {
                let four = load32(data, i);
                let slot = &mut table[hash(four, shift)];
                let seen = *slot;
                *slot = start + i as u32;
                if seen >= start {
                    let from = (seen - start) as usize;
                    let dist = i - from;
                    if dist <= max_dist && load32(data, from) == four {
                        let max = (n - i).min(MAX_MATCH);
                        let len = MIN_MATCH + common(data, from + 4, i + 4, max - MIN_MATCH);
                        let (lbits, lcount) = LENGTHS[len - 3];
                        let (dbits, dcount) = distance(dist);
                        #[cfg(test)]
                        {
                            self.farthest = self.farthest.max(dist);
                        }
                        let lcount = u32::from(lcount);
                        bits.put(u64::from(lbits) | (dbits << lcount), lcount + dcount);
                        // The match's last position, so a run that repeats is found
                        // again right after it.
                        let last = i + len - 1;
                        if last + MIN_MATCH <= n {
                            table[hash(load32(data, last), shift)] = start + last as u32;
                        }
                        i += len;
                        continue;
                    }
                }
                bits.literal(data[i]);
                i += 1;
            }
        }
        for &b in &data[i..] {
            bits.literal(b);
        }
        // End of block (symbol 256: seven zero bits), then the sync flush: an empty
        // stored block (BFINAL 0, BTYPE 00), padded to a byte, LEN 0, NLEN 0xffff.
        bits.put(0, 7 + 3);
        bits.finish();
        out.extend_from_slice(&TAIL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(stream: &[u8], bits: u8) -> Vec<u8> {
        let mut z = zlib_rs::Inflate::new(false, bits);
        let mut out = alloc::vec![0; 1 << 22];
        let status = z.decompress(stream, &mut out, zlib_rs::InflateFlush::SyncFlush);
        assert!(status.is_ok(), "{status:?}");
        assert_eq!(z.total_in() as usize, stream.len());
        out.truncate(z.total_out() as usize);
        out
    }

    fn texts() -> Vec<Vec<u8>> {
        let mut rng = 0x2545_f491_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut all: Vec<Vec<u8>> = alloc::vec![
            Vec::new(),
            b"a".to_vec(),
            b"abc".to_vec(),
            b"abcd".to_vec(),
            b"abcdabcd".to_vec(),
            alloc::vec![0; 100_000],
            alloc::vec![0xff; 1000],
        ];
        // Random bytes, random text over a few letters (many matches of every
        // length and distance), and repeats at distances around the window sizes.
        for len in [5, 17, 300, 4096, 70_000] {
            all.push((0..len).map(|_| next() as u8).collect());
            all.push((0..len).map(|_| b"abcde"[(next() % 5) as usize]).collect());
        }
        for dist in [255, 256, 257, 511, 512, 513, 32767, 32768, 32769] {
            let block: Vec<u8> = (0..dist).map(|_| next() as u8).collect();
            let mut d = block.clone();
            d.extend_from_slice(&block);
            d.extend_from_slice(&block[..dist.min(300)]);
            all.push(d);
        }
        // Four bytes seen again exactly at each window's end, and one byte beyond it.
        for bits in 8..=15 {
            for dist in [1usize << bits, (1 << bits) + 1] {
                let mut d = alloc::vec![0; dist + 4];
                d[..4].copy_from_slice(b"WxYz");
                d[dist..].copy_from_slice(b"WxYz");
                all.push(d);
            }
        }
        all
    }

    #[test]
    fn every_window_inflates_to_the_input() {
        let mut q = Quick::new(SHARED_TABLE_BITS);
        let mut out = Vec::new();
        for bits in 9..=15u8 {
            q.farthest = 0;
            for data in texts() {
                q.compress(&data, bits, &mut out);
                assert!(out.ends_with(&TAIL));
                assert_eq!(
                    inflate(&out, bits),
                    data,
                    "window {bits}, {} bytes",
                    data.len()
                );
            }
            // References reach the window's end, never beyond.
            assert_eq!(q.farthest, 1 << bits, "window {bits}");
        }
    }

    #[test]
    fn window_of_8_bits_refers_at_most_256_back() {
        let mut q = Quick::new(SHARED_TABLE_BITS);
        let mut out = Vec::new();
        let block: Vec<u8> = (0..257u32).map(|i| (i * 7 % 251) as u8).collect();
        for dist in [256, 257] {
            let mut d = block[..dist.min(257)].to_vec();
            d.extend_from_slice(&block[..dist.min(257)]);
            q.compress(&d, 8, &mut out);
            assert_eq!(inflate(&out, 15), d);
            let referred = out.len() < d.len() * 3 / 4;
            assert_eq!(referred, dist == 256, "distance {dist}");
        }
    }

    #[test]
    fn messages_do_not_refer_to_earlier_ones() {
        let mut q = Quick::new(SHARED_TABLE_BITS);
        let mut out = Vec::new();
        let text = b"the same message, sent again and again, and again".repeat(3);
        q.compress(&text, 15, &mut out);
        let first = out.clone();
        // The second time is compressed alone: same bytes, inflating on its own.
        q.compress(&text, 15, &mut out);
        assert_eq!(out, first);
        assert_eq!(inflate(&out, 15), text);
    }

    #[test]
    fn running_count_wraps_by_clearing_the_table() {
        let mut q = Quick::new(SHARED_TABLE_BITS);
        let mut out = Vec::new();
        let text = b"wrapping, wrapping, wrapping around".repeat(10);
        q.start = u32::MAX - 100;
        q.compress(&text, 15, &mut out);
        assert_eq!(q.start as usize, 1 + text.len());
        assert_eq!(inflate(&out, 15), text);
        q.compress(&text, 15, &mut out);
        assert_eq!(inflate(&out, 15), text);
    }

    #[test]
    fn compresses_about_as_well_as_zlib_level_1() {
        let json: Vec<u8> = (0..40)
            .flat_map(|i| {
                alloc::format!(
                    "{{\"id\":{i},\"user\":\"user{}\",\"text\":\"hello {}\"}},",
                    i % 7,
                    i * 31
                )
                .into_bytes()
            })
            .collect();
        let mut q = Quick::new(SHARED_TABLE_BITS);
        let mut out = Vec::new();
        q.compress(&json, 15, &mut out);
        let mut z = super::super::Deflater::new(1, 15);
        let zlen = z.compress(&json).unwrap_or(0);
        assert!(out.len() * 10 <= zlen * 11, "{} vs zlib {zlen}", out.len());
    }
}
