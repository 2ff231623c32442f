//! Workloads shared by hybi's codec benchmarks and allocation tests.
//!
//! Everything here is independent of the engine under test: frames are encoded by a
//! few lines of RFC 6455 §5.2 written out below, not by `hybi::frame`, so a bug in the
//! engine's encoder cannot hide a bug in its decoder. The peers (tungstenite,
//! fastwebsockets) decode the very same bytes in the benchmarks.

use std::hint::black_box;

/// The size of one simulated socket read or write: what a kernel typically hands over
/// per `read(2)` on a busy TCP connection.
pub const CHUNK: usize = 64 << 10;

/// What a payload is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Arbitrary bytes, sent as binary frames.
    Binary,
    /// ASCII text, sent as text frames.
    Ascii,
    /// UTF-8 text mixing 1-, 2-, 3- and 4-byte characters, sent as text frames.
    MultiByte,
}

impl Content {
    /// True for the kinds sent as text frames.
    pub fn is_text(self) -> bool {
        self != Content::Binary
    }

    /// A short name for benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Content::Binary => "binary",
            Content::Ascii => "text",
            Content::MultiByte => "text-utf8",
        }
    }

    /// The frame opcode (0x1 text, 0x2 binary).
    pub fn opcode(self) -> u8 {
        if self.is_text() { 0x1 } else { 0x2 }
    }
}

/// A deterministic xorshift64* generator: cheap, no allocation, `Send`.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a non-zero seed (zero is replaced).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

const MIXED: &str = "héllo wörld — ¿qué tal? ☃ 日本語のテキスト 𝄞 🦀 Ελληνικά кириллица ";
const ASCII: &str = "The quick brown fox jumps over the lazy dog; 0123456789 {\"id\":42} ";

/// A payload of exactly `len` bytes of `content`. Text is valid UTF-8 (for
/// [`Content::MultiByte`] the last few bytes may be ASCII padding so the length is exact).
pub fn payload(content: Content, len: usize) -> Vec<u8> {
    match content {
        Content::Binary => {
            let mut v = vec![0u8; len];
            XorShift::new(len as u64 + 1).fill(&mut v);
            v
        }
        Content::Ascii => ASCII.bytes().cycle().take(len).collect(),
        Content::MultiByte => {
            let mut s = String::with_capacity(len + 4);
            'outer: loop {
                for c in MIXED.chars() {
                    if s.len() + c.len_utf8() > len {
                        break 'outer;
                    }
                    s.push(c);
                }
            }
            while s.len() < len {
                s.push('.');
            }
            s.into_bytes()
        }
    }
}

/// Appends one unfragmented frame (`FIN` set) with `opcode` and `payload`, masked with
/// `mask` when given (client to server), to `out`.
pub fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    out.push(0x80 | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        None => out.extend_from_slice(payload),
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
        }
    }
}

/// `count` masked client frames carrying `payload`, each with its own mask key: the
/// bytes a server reads from a client sending `count` messages.
pub fn client_stream(content: Content, payload: &[u8], count: usize) -> Vec<u8> {
    let mut rng = XorShift::new(0x5EED);
    let mut out = Vec::with_capacity(count * (payload.len() + 14));
    for _ in 0..count {
        let key = (rng.next_u64() as u32).to_ne_bytes();
        encode_frame(&mut out, content.opcode(), payload, Some(key));
    }
    out
}

/// How many messages of `size` bytes make a receive workload of about 2 MiB (at least
/// two messages, so the steady state is measured, not a cold start).
pub fn messages_for(size: usize) -> usize {
    ((2 << 20) / size.max(1)).max(2)
}

/// Feeds `wire` to `feed` in pieces of at most [`CHUNK`] bytes, wrapping around at its
/// end, as a socket delivering the same stream over and over would. `wire` must hold
/// whole frames, so every lap starts at a frame boundary.
#[derive(Debug)]
pub struct Cycle<'a> {
    wire: &'a [u8],
    pos: usize,
}

impl<'a> Cycle<'a> {
    /// A cursor at the start of `wire`.
    pub fn new(wire: &'a [u8]) -> Cycle<'a> {
        assert!(!wire.is_empty(), "empty wire");
        Cycle { wire, pos: 0 }
    }

    /// Copies the next at most `min(dst.len(), CHUNK)` bytes into `dst` (never across
    /// the end of the wire) and returns how many: one simulated `read(2)`.
    #[inline]
    pub fn read_into(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(CHUNK).min(self.wire.len() - self.pos);
        dst[..n].copy_from_slice(&self.wire[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.wire.len() {
            self.pos = 0;
        }
        n
    }

    /// True when the cursor is at the start of the wire (a whole number of laps read).
    pub fn at_start(&self) -> bool {
        self.pos == 0
    }
}

/// Receives at least `count` messages through the zero-copy path: the simulated kernel
/// copies the next piece of `cycle` straight into [`Connection::read_buf`], then
/// [`Connection::commit`], then [`Connection::next`] hands out [`Next::Event`]s until
/// it says [`Next::Wait`] (the drive loop of every driver). Returns the number of
/// messages and of payload bytes delivered.
///
/// # Panics
/// On any event but a text or binary message, and on anything but an event or a wait
/// (output to write, or the end of the connection).
///
/// [`Connection::read_buf`]: hybi::Connection::read_buf
/// [`Connection::commit`]: hybi::Connection::commit
/// [`Connection::next`]: hybi::Connection::next
/// [`Next::Event`]: hybi::Next::Event
/// [`Next::Wait`]: hybi::Next::Wait
#[inline]
pub fn receive_messages(
    conn: &mut hybi::Connection,
    cycle: &mut Cycle<'_>,
    count: usize,
) -> (usize, usize) {
    let mut msgs = 0;
    let mut bytes = 0;
    while msgs < count {
        let n = cycle.read_into(conn.read_buf());
        assert!(n > 0, "read buffer full after {msgs} of {count} messages");
        conn.commit(n);
        loop {
            match conn.next() {
                hybi::Next::Event(hybi::Event::Binary(data), _) => bytes += black_box(data.len()),
                hybi::Next::Event(hybi::Event::Text(text), _) => bytes += black_box(text.len()),
                hybi::Next::Wait(_) => break,
                other => panic!("unexpected {other:?}"),
            }
            msgs += 1;
        }
    }
    (msgs, bytes)
}

/// The send side of a socket: every write copies what fits (at most [`CHUNK`] bytes)
/// into a kernel-like buffer that drains at once. Writing to it costs one copy of the
/// bytes, as `write(2)` does, and may be partial, as on a real socket.
#[derive(Debug)]
pub struct KernelSink {
    buf: Vec<u8>,
    /// Bytes accepted so far.
    pub written: u64,
}

impl Default for KernelSink {
    fn default() -> KernelSink {
        KernelSink::new()
    }
}

impl KernelSink {
    /// A sink with a [`CHUNK`]-byte buffer.
    pub fn new() -> KernelSink {
        KernelSink {
            buf: vec![0; CHUNK],
            written: 0,
        }
    }

    /// Copies up to [`CHUNK`] bytes of `data` and returns how many: one `write(2)`.
    #[inline]
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(CHUNK);
        self.buf[..n].copy_from_slice(&data[..n]);
        black_box(&mut self.buf);
        self.written += n as u64;
        n
    }

    /// Copies up to [`CHUNK`] bytes from `slices`, in order: one `writev(2)`.
    #[inline]
    pub fn write_vectored<'a>(&mut self, slices: impl IntoIterator<Item = &'a [u8]>) -> usize {
        let mut n = 0;
        for s in slices {
            let take = s.len().min(CHUNK - n);
            self.buf[n..n + take].copy_from_slice(&s[..take]);
            n += take;
            if n == CHUNK {
                break;
            }
        }
        black_box(&mut self.buf);
        self.written += n as u64;
        n
    }
}

/// Writes everything `conn` has queued into `sink`, one contiguous run at a time, as a
/// socket write loop would: [`Connection::next`] hands out [`Next::Write`]s until it
/// says [`Next::Wait`]. Returns how many bytes.
///
/// # Panics
/// On anything but output to write or a wait (an event, or the end of the connection).
///
/// [`Connection::next`]: hybi::Connection::next
/// [`Next::Write`]: hybi::Next::Write
/// [`Next::Wait`]: hybi::Next::Wait
#[inline]
pub fn drain(conn: &mut hybi::Connection, sink: &mut KernelSink) -> usize {
    let mut total = 0;
    loop {
        match conn.next() {
            hybi::Next::Write(output) => {
                let n = sink.write(output.bytes());
                output.consume(n);
                total += n;
            }
            hybi::Next::Wait(_) => return total,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Sends `count` binary messages carrying `data`, draining the output into `sink`
/// whenever a socket-sized piece ([`CHUNK`]) is queued, and at the end. Returns the
/// bytes written.
///
/// # Panics
/// If the engine refuses a send.
#[inline]
pub fn send_messages(
    conn: &mut hybi::Connection,
    sink: &mut KernelSink,
    data: &[u8],
    count: usize,
) -> usize {
    let mut written = 0;
    for _ in 0..count {
        if let Err(e) = conn.send_binary(data) {
            panic!("send_binary: {e}");
        }
        if conn.buffered_output() >= CHUNK {
            written += drain(conn, sink);
        }
    }
    written + drain(conn, sink)
}

/// `count` JSON-like text messages of about `len` bytes each, all different (ids,
/// names and numbers vary), as a chat or an API stream carries them: the workload of
/// the compressed benchmarks.
pub fn json_messages(len: usize, count: usize) -> Vec<String> {
    let mut rng = XorShift::new(0x0D15_EA5E);
    (0..count)
        .map(|i| {
            let mut s = String::with_capacity(len + 128);
            let mut k = 0u64;
            while s.len() < len {
                let r = rng.next_u64();
                s.push_str(&format!(
                    "{{\"id\":{},\"user\":\"user{}\",\"room\":\"r{}\",\"text\":\"message {} of the day\",\"ts\":{}}},",
                    i as u64 * 100 + k,
                    r % 97,
                    r % 13,
                    r % 1000,
                    1_700_000_000 + (r % 86_400)
                ));
                k += 1;
            }
            s.truncate(len);
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_exact_length_and_are_valid_text() {
        for len in [0, 1, 16, 125, 1024, 65536] {
            for content in [Content::Binary, Content::Ascii, Content::MultiByte] {
                let p = payload(content, len);
                assert_eq!(p.len(), len);
                if content.is_text() {
                    assert!(core::str::from_utf8(&p).is_ok());
                }
            }
        }
        let mixed = payload(Content::MultiByte, 1024);
        let text = core::str::from_utf8(&mixed).unwrap_or_default();
        assert!(text.chars().count() < 700, "mostly multi-byte characters");
    }

    #[test]
    fn frames_decode_with_the_engine() {
        let data = payload(Content::MultiByte, 1000);
        let wire = client_stream(Content::MultiByte, &data, 3);
        let mut server = hybi::Connection::server(hybi::Config::default());
        server.receive(&wire);
        for _ in 0..3 {
            match server.next() {
                hybi::Next::Event(hybi::Event::Text(t), _) => assert_eq!(t.as_bytes(), &data[..]),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(server.next(), hybi::Next::Wait(None)));
    }
}
