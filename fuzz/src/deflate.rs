//! The permessage-deflate targets (RFC 7692):
//!
//! - [`run_roundtrip`] (`deflate_roundtrip`): messages made from the input go both ways
//!   between a client and a server connection with the extension on (the agreement,
//!   each side's level and threshold, delivery and codec lending chosen by the input),
//!   whole or in fragments with pings between them; every message must arrive
//!   byte-identical, of its kind, and the closing handshake must end both cleanly;
//! - [`run_connection`] (`deflate_connection`): a server connection with the
//!   extension on is fed frames a client connection compressed (re-cut into other
//!   fragments, with pings between them, opcodes changed so that text may be invalid
//!   UTF-8, messages over the limit and inflation bombs), plain frames, compressed-
//!   looking garbage, RSV1 where it may not be, a close frame, and then a bit flip or
//!   a truncation; a model says what must be delivered up to the damage and how the
//!   connection ends (1007 invalid compressed data or UTF-8, 1009 too big, 1002
//!   protocol); memory stays bounded whatever the inflated size;
//! - [`run_negotiation`] (`deflate_negotiation`): arbitrary `Sec-WebSocket-Extensions`
//!   values through `parse_offers`, `choose`, `Agreement::response` and
//!   `Agreement::from_response`: never a panic, windows always 8-15, a chosen answer
//!   legal for its offer and read back by the client as the same agreement.
//!
//! Inputs are decoded by [`Reader`] (missing bytes read as zero), so that the
//! engine's `tests/fuzz_regressions.rs` replays them without the fuzzer.

use std::collections::VecDeque;

use hybi::deflate::negotiate::{self, NegotiationError, Offer};
use hybi::deflate::{Agreement, DeflateConfig};
use hybi::frame::{FrameHeader, Parsed};
use hybi::mask::apply_mask;
use hybi::{
    CloseCode, Config, Connection, Delivery, Error, Event, MessageKind, Next, OpCode, Role,
};

use crate::alloc;

/// Reads the input byte by byte; past its end, every read is zero.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    /// Up to `n` bytes (fewer at the end of the input).
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos += n;
        &self.data[start..end]
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// The agreement one input byte describes: bit 0 server_no_context_takeover, bit 1
/// client_no_context_takeover, bits 2-4 the server's window - 8, bits 5-7 the
/// client's.
pub fn agreement(b: u8) -> Agreement {
    Agreement {
        server_no_context_takeover: b & 1 != 0,
        client_no_context_takeover: b & 2 != 0,
        server_max_window_bits: 8 + (b >> 2 & 7),
        client_max_window_bits: 8 + (b >> 5 & 7),
    }
}

/// Thresholds a config byte picks from.
const THRESHOLDS: [usize; 8] = [0, 1, 2, 16, 128, 300, 1000, 4096];

/// A cheap pseudo-random byte stream (incompressible data).
fn noise(len: usize, seed: u8) -> Vec<u8> {
    let mut s = u32::from(seed) << 8 | 0x5b;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 11) as u8
        })
        .collect()
}

/// A deterministic mask-key source for client connections.
fn keys(seed: u8) -> impl FnMut(&mut [u8]) + 'static {
    let mut n = seed;
    move |buf: &mut [u8]| {
        for b in buf {
            n = n.wrapping_mul(13).wrapping_add(101);
            *b = n;
        }
    }
}

/// Chunk sizes from a seed: whole, 1-8, 1-300 or 1-3000 bytes.
struct Chunks {
    seed: u8,
    state: u32,
}

impl Chunks {
    fn new(seed: u8) -> Chunks {
        Chunks {
            seed,
            state: u32::from(seed) << 8 | 0x9d,
        }
    }
    fn next(&mut self, left: usize) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        let n = match self.seed & 3 {
            0 => left,
            1 => 1 + (self.state % 8) as usize,
            2 => 1 + (self.state % 300) as usize,
            _ => 1 + (self.state % 3000) as usize,
        };
        n.min(left)
    }
}

/// One frame as written: its header and unmasked payload.
struct WireFrame {
    header: FrameHeader,
    payload: Vec<u8>,
}

/// Splits bytes a connection wrote into frames (they must be whole frames).
fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Ok(Parsed::Complete(header, n)) = FrameHeader::parse(bytes) else {
            panic!("partial or invalid frame written")
        };
        let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        assert!(bytes.len() - n >= len, "frame cut short");
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = header.mask {
            apply_mask(key, 0, &mut payload);
        }
        out.push(WireFrame { header, payload });
        bytes = &bytes[n + len..];
    }
    out
}

/// Everything `conn` has queued, written whole (the sender receives nothing, so it
/// has no event to give).
fn drain(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        match conn.next() {
            Next::Write(t) => {
                let bytes = t.bytes();
                let n = bytes.len();
                out.extend_from_slice(bytes);
                t.consume(n);
            }
            Next::Wait(_) => return out,
            Next::Event(e, _) => panic!("unexpected event {e:?}"),
            Next::Close(c) => panic!("closed while sending: {:?}", c.error),
        }
    }
}

// ---------------------------------------------------------------------------------
// deflate_roundtrip

/// Repeat factors an item picks from (messages beyond the window, up to ~256 KiB).
const REPEATS: [usize; 16] = [1, 1, 1, 1, 2, 3, 4, 7, 16, 50, 130, 300, 700, 1000, 0, 0];

/// What one side of the roundtrip expects to receive, and what it has so far.
struct Side {
    conn: Connection,
    streaming: bool,
    /// Messages sent to it, in order, not yet delivered.
    expect: VecDeque<(MessageKind, Vec<u8>)>,
    /// Pings sent to it whose pong it owes.
    pings: usize,
    /// Pongs expected back from the peer.
    pongs: VecDeque<Vec<u8>>,
    /// The streamed message being delivered: its kind and bytes.
    piece: Option<(MessageKind, Vec<u8>)>,
    /// Its peer's close frame arrived.
    peer_closed: bool,
    /// `Close`: its error.
    closed: Option<Option<Error>>,
}

impl Side {
    fn new(conn: Connection, streaming: bool) -> Side {
        Side {
            conn,
            streaming,
            expect: VecDeque::new(),
            pings: 0,
            pongs: VecDeque::new(),
            piece: None,
            peer_closed: false,
            closed: None,
        }
    }

    /// Feeds `bytes` in chunks and takes every event; returns what it wrote.
    fn receive(&mut self, bytes: &[u8], chunks: &mut Chunks) -> Vec<u8> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let n = chunks.next(bytes.len() - pos);
            if n > 0 {
                self.conn.receive(&bytes[pos..pos + n]);
                pos += n;
            }
            self.take(&mut out);
            if pos == bytes.len() || self.closed.is_some() {
                assert_eq!(pos, bytes.len(), "closed with input left");
                return out;
            }
        }
    }

    fn take(&mut self, out: &mut Vec<u8>) {
        loop {
            match self.conn.next() {
                Next::Event(e, _) => {
                    assert!(!self.peer_closed, "event after the close frame: {e:?}");
                    match e {
                        Event::Text(t) => {
                            assert!(!self.streaming, "whole message while streaming");
                            delivered(&mut self.expect, MessageKind::Text, t.as_bytes());
                        }
                        Event::Binary(b) => {
                            assert!(!self.streaming, "whole message while streaming");
                            delivered(&mut self.expect, MessageKind::Binary, b);
                        }
                        Event::Fragment(f) => {
                            assert!(self.streaming, "fragment in message mode");
                            assert_eq!(f.first, self.piece.is_none(), "Fragment::first");
                            let (kind, data) =
                                self.piece.get_or_insert_with(|| (f.kind, Vec::new()));
                            assert_eq!(*kind, f.kind, "kind changed inside a message");
                            data.extend_from_slice(f.data);
                            if f.fin {
                                if let Some((kind, data)) = self.piece.take() {
                                    delivered(&mut self.expect, kind, &data);
                                }
                            }
                        }
                        Event::Ping(_) => {
                            assert!(self.pings > 0, "ping that was not sent");
                            self.pings -= 1;
                        }
                        Event::Pong(p) => {
                            let want = self.pongs.pop_front();
                            assert_eq!(want.as_deref(), Some(p), "pong");
                        }
                        Event::Close(c) => {
                            assert_eq!(c.code, CloseCode::NORMAL, "close code");
                            self.peer_closed = true;
                        }
                    }
                }
                Next::Write(t) => {
                    let bytes = t.bytes();
                    let n = bytes.len();
                    out.extend_from_slice(bytes);
                    t.consume(n);
                }
                Next::Wait(_) => return,
                Next::Close(c) => {
                    assert!(self.closed.is_none() || self.closed == Some(c.error));
                    self.closed = Some(c.error);
                    return;
                }
            }
        }
    }
}

/// A message arrived whole: it must be the next one sent.
fn delivered(expect: &mut VecDeque<(MessageKind, Vec<u8>)>, kind: MessageKind, data: &[u8]) {
    let Some((want_kind, want)) = expect.pop_front() else {
        panic!("message of {} bytes that was not sent", data.len())
    };
    assert_eq!(kind, want_kind, "message kind");
    assert!(data == want, "message of {} bytes differs", want.len());
}

/// Checks the frames one side wrote for a message: RSV1 only on a data message's
/// first frame, never below the threshold for a whole message, masking for the role.
fn check_sent(frames: &[WireFrame], role: Role, whole_len: Option<usize>, threshold: usize) {
    let mut first = true;
    for f in frames {
        let h = &f.header;
        assert_eq!(h.mask.is_some(), role == Role::Client, "masking");
        assert!(!h.rsv2 && !h.rsv3, "RSV2/RSV3 written");
        if h.opcode.is_control() {
            assert!(!h.rsv1, "RSV1 on a control frame");
            continue;
        }
        if !first {
            assert!(!h.rsv1, "RSV1 on a continuation frame");
        }
        if first && h.rsv1 {
            if let Some(len) = whole_len {
                assert!(len >= threshold, "message of {len} bytes compressed");
            }
        }
        first = h.fin;
    }
}

/// `deflate_roundtrip`. Input: `[agreement][levels][flags][chunk seed][items...]`.
/// `levels`: the client's level `% 10` in the low nibble, the server's in the high
/// one (each `% 10`). `flags`: bit 0 the server streams, bit 1 the client streams,
/// bit 2 the codecs are lent by a pool between messages, bits 3-5 the client's
/// threshold, bits 6-7 the server's (from [`THRESHOLDS`]). Each item: `[op][len]`
/// then `len` bytes of payload; `op` bit 0: the server sends it (else the client);
/// bits 1-2: 0 a whole message, else that many fragments plus one, cut at positions
/// read next, with a ping between them if bit 3; bits 4-7 a repeat factor from
/// [`REPEATS`] (14 and 15: `len * 64` bytes of noise instead). Text if the payload is
/// valid UTF-8, else binary.
pub fn run_roundtrip(data: &[u8]) {
    let mut r = Reader::new(data);
    let agreement = agreement(r.u8());
    let levels = r.u8();
    let flags = r.u8();
    let mut chunks = Chunks::new(r.u8());
    let lend = flags & 4 != 0;
    let client_threshold = THRESHOLDS[usize::from(flags >> 3 & 7)];
    let server_threshold = THRESHOLDS[usize::from(flags >> 6) * 2 + 1];
    let config = |streaming: bool, level: u8, threshold: usize| {
        let deflate = DeflateConfig::default()
            .with_level(level % 10)
            .with_threshold(threshold);
        let config = Config::default()
            .with_max_message_size(1 << 20)
            .with_max_frame_size(1 << 20)
            .with_delivery(if streaming {
                Delivery::Streaming
            } else {
                Delivery::Message
            });
        (config, deflate)
    };
    let (cc, cd) = config(flags & 2 != 0, levels & 15, client_threshold);
    let (sc, sd) = config(flags & 1 != 0, levels >> 4, server_threshold);
    let mut client = Connection::client(cc, keys(levels));
    let mut server = Connection::server(sc);
    client.enable_deflate(agreement, cd);
    server.enable_deflate(agreement, sd);
    assert_eq!(client.deflate(), Some(&agreement));
    let mut c = Side::new(client, flags & 2 != 0);
    let mut s = Side::new(server, flags & 1 != 0);
    let mut pool = (None, None);
    let mut items = 0;
    while !r.done() && items < 64 {
        items += 1;
        let op = r.u8();
        let len = usize::from(r.u8());
        let base = r.bytes(len);
        let payload = match op >> 4 {
            14 | 15 => noise(len * 64, op),
            k => base.repeat(REPEATS[usize::from(k)]),
        };
        let kind = if core::str::from_utf8(&payload).is_ok() {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        let n = usize::from(op >> 1 & 3);
        let mut cuts: Vec<usize> = (0..n)
            .map(|_| usize::from(r.u16()) % (payload.len() + 1))
            .collect();
        cuts.sort_unstable();
        let (from, to, role, threshold) = if op & 1 == 0 {
            (&mut c, &mut s, Role::Client, client_threshold)
        } else {
            (&mut s, &mut c, Role::Server, server_threshold)
        };
        if lend {
            give(&mut from.conn, &mut pool);
            give(&mut to.conn, &mut pool);
        }
        if n == 0 {
            match kind {
                MessageKind::Text => from
                    .conn
                    .send_text(core::str::from_utf8(&payload).unwrap_or_else(|_| unreachable!())),
                MessageKind::Binary => from.conn.send_binary(&payload),
            }
            .unwrap_or_else(|e| panic!("send refused: {e:?}"));
        } else {
            let mut start = 0;
            for (i, &cut) in cuts.iter().chain([payload.len()].iter()).enumerate() {
                let fin = i == n;
                from.conn
                    .send_fragment(kind, &payload[start..cut], fin)
                    .unwrap_or_else(|e| panic!("fragment refused: {e:?}"));
                start = cut;
                if !fin && op & 8 != 0 {
                    let ping = [i as u8; 3];
                    from.conn
                        .send_ping(&ping)
                        .unwrap_or_else(|e| panic!("ping refused: {e:?}"));
                    to.pings += 1;
                    from.pongs.push_back(ping.to_vec());
                }
            }
        }
        to.expect.push_back((kind, payload));
        let bytes = drain(&mut from.conn);
        let frames = parse_frames(&bytes);
        let whole = (n == 0).then(|| to.expect.back().map_or(0, |m| m.1.len()));
        check_sent(&frames, role, whole, threshold);
        let back = to.receive(&bytes, &mut chunks);
        assert!(to.expect.is_empty(), "message not delivered");
        assert!(to.closed.is_none(), "closed: {:?}", to.closed);
        // What it wrote back (pongs) goes to the sender.
        let more = from.receive(&back, &mut chunks);
        assert!(more.is_empty(), "answer to a pong");
        assert!(from.pongs.is_empty(), "pong missing");
        if lend {
            take(&mut from.conn, &mut pool);
            take(&mut to.conn, &mut pool);
        }
    }
    // The closing handshake ends both cleanly.
    c.conn
        .close(CloseCode::NORMAL, "done")
        .unwrap_or_else(|e| panic!("close refused: {e:?}"));
    let bytes = drain(&mut c.conn);
    let back = s.receive(&bytes, &mut chunks);
    c.receive(&back, &mut chunks);
    c.conn.receive_eof();
    s.conn.receive_eof();
    c.take(&mut Vec::new());
    s.take(&mut Vec::new());
    assert_eq!(c.closed, Some(None), "client's end");
    assert_eq!(s.closed, Some(None), "server's end");
}

type Pool = (
    Option<Box<hybi::deflate::Deflater>>,
    Option<Box<hybi::deflate::Inflater>>,
);

fn give(conn: &mut Connection, pool: &mut Pool) {
    if let Some(d) = pool.0.take() {
        pool.0 = conn.give_deflater(d);
    }
    if let Some(i) = pool.1.take() {
        pool.1 = conn.give_inflater(i);
    }
}

fn take(conn: &mut Connection, pool: &mut Pool) {
    if pool.0.is_none() {
        pool.0 = conn.take_deflater();
    }
    if pool.1.is_none() {
        pool.1 = conn.take_inflater();
    }
}

// ---------------------------------------------------------------------------------
// deflate_connection

/// The server's limits in `deflate_connection`.
pub const MAX_MESSAGE: usize = 64 << 10;
/// See [`MAX_MESSAGE`] (a compressed frame may be as large as the message limit).
pub const MAX_FRAME: usize = 16 << 10;
/// See [`MAX_MESSAGE`].
pub const READ_BUF: usize = 4 << 10;

/// Plaintext sizes around the limits (and an inflation bomb of 4 MiB).
const SIZES: [usize; 16] = [
    0,
    1,
    5,
    100,
    1000,
    5000,
    MAX_FRAME,
    MAX_FRAME + 1,
    30_000,
    MAX_MESSAGE - 1,
    MAX_MESSAGE,
    MAX_MESSAGE + 1,
    100_000,
    300_000,
    1 << 20,
    2 << 20,
];

/// Text the messages are cut from.
const TEXT: &str = "κόσμε hello ☃ 𝄞 wörld — ascii ascii ascii 中文字符 end; ";

/// What the server must do with one item, while nothing was damaged.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Want {
    /// This message is delivered.
    Message(MessageKind, Vec<u8>),
    /// A ping.
    Ping(Vec<u8>),
    /// The connection fails with one of these codes; streaming may deliver a prefix
    /// of these bytes first.
    Fail(&'static [u16], Vec<u8>),
    /// The client's close frame: the connection ends cleanly.
    Close,
    /// Anything may happen from here on (garbage, damage).
    Unknown,
}

/// The frames one item becomes.
struct Item {
    /// Where its first byte is on the wire.
    at: usize,
    want: Want,
    /// The pings sent between its fragments.
    pings: Vec<Vec<u8>>,
}

/// A frame to write: first byte, payload, mask key.
fn encode(out: &mut Vec<u8>, first_byte: u8, payload: &[u8], key: [u8; 4]) {
    out.push(first_byte);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(key, 0, &mut out[start..]);
}

/// Message content of `size` bytes: 0 text, 1 text with an invalid sequence at a
/// position the reader picks, 2 binary (a repeated pattern), 3 noise.
fn content(r: &mut Reader<'_>, how: u8, size: usize) -> Vec<u8> {
    match how & 3 {
        0 | 1 => {
            let mut t = TEXT.as_bytes().repeat(size / TEXT.len() + 1);
            t.truncate(size);
            // End on a character boundary.
            while core::str::from_utf8(&t).is_err() && !t.is_empty() {
                t.pop();
            }
            if how & 3 == 1 && !t.is_empty() {
                let at = usize::from(r.u16()) * 64 % t.len();
                t[at] = 0xFF;
            }
            t
        }
        2 => (0..size).map(|i| (i % 251) as u8).collect(),
        _ => noise(size.min(100_000), how),
    }
}

/// Codes a message failing for its size and content may end with (the inflated
/// size and UTF-8 are checked as it inflates: which comes first depends on where).
fn fail_codes(kind: MessageKind, data: &[u8], too_big: bool) -> Option<&'static [u16]> {
    let bad_utf8 = kind == MessageKind::Text && core::str::from_utf8(data).is_err();
    match (too_big, bad_utf8) {
        (true, true) => Some(&[1007, 1009]),
        (true, false) => Some(&[1009]),
        (false, true) => Some(&[1007]),
        (false, false) => None,
    }
}

/// Builds the wire a client sends, with what each item must do.
fn generate(r: &mut Reader<'_>, client: &mut Connection) -> (Vec<u8>, Vec<Item>) {
    let mut wire = Vec::new();
    let mut items = Vec::new();
    let mut key = [0x37u8, 0xfa, 0x21, 0x3d];
    let next_key = |k: &mut [u8; 4]| {
        for b in k.iter_mut() {
            *b = b.wrapping_mul(5).wrapping_add(1);
        }
        *k
    };
    while !r.done() && items.len() < 24 {
        let op = r.u8();
        let at = wire.len();
        let (want, pings) = match op & 7 {
            0..=3 => {
                // A message the client compresses (or not, below its threshold), re-cut.
                let size = SIZES[usize::from(r.u8() % 16)];
                let how = r.u8();
                let data = content(r, how, size);
                let kind = if op & 0x20 == 0 {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                client
                    .send_binary(&data)
                    .unwrap_or_else(|e| panic!("send refused: {e:?}"));
                let frames = parse_frames(&drain(client));
                let rsv1 = frames.first().is_some_and(|f| f.header.rsv1);
                let compressed: Vec<u8> = frames.iter().flat_map(|f| f.payload.clone()).collect();
                let n = 1 + usize::from(op >> 6);
                let mut cuts: Vec<usize> = (1..n)
                    .map(|_| usize::from(r.u16()) % (compressed.len() + 1))
                    .collect();
                cuts.sort_unstable();
                let mut start = 0;
                let mut too_big = false;
                let mut announced = 0;
                let mut pings = Vec::new();
                for (i, &cut) in cuts.iter().chain([compressed.len()].iter()).enumerate() {
                    let fin = i == n - 1;
                    let piece = &compressed[start..cut];
                    start = cut;
                    announced += piece.len();
                    let b0 = (u8::from(fin) << 7)
                        | (u8::from(rsv1 && i == 0) << 6)
                        | if i == 0 { kind.opcode().as_u8() } else { 0 };
                    encode(&mut wire, b0, piece, next_key(&mut key));
                    // Frame and message limits on what is announced.
                    let frame_max = if rsv1 {
                        MAX_FRAME.max(MAX_MESSAGE)
                    } else {
                        MAX_FRAME
                    };
                    too_big |= piece.len() > frame_max || (!rsv1 && announced > MAX_MESSAGE);
                    if !fin && how & 4 != 0 {
                        encode(&mut wire, 0x89, &[i as u8], next_key(&mut key));
                        pings.push(vec![i as u8]);
                    }
                }
                too_big |= data.len() > MAX_MESSAGE;
                let want = match fail_codes(kind, &data, too_big) {
                    Some(codes) => Want::Fail(codes, data),
                    None => Want::Message(kind, data),
                };
                (want, pings)
            }
            4 => {
                let len = usize::from(r.u8() % 126);
                let p = noise(len, op);
                encode(&mut wire, 0x89, &p, next_key(&mut key));
                (Want::Ping(p), Vec::new())
            }
            5 => {
                // Compressed-looking garbage: RSV1 and bytes from the input.
                let len = usize::from(r.u8());
                let b0 = 0xC0 | if op & 8 != 0 { 1 } else { 2 };
                let p = r.bytes(len).to_vec();
                encode(&mut wire, b0, &p, next_key(&mut key));
                (Want::Unknown, Vec::new())
            }
            6 => {
                // RSV1 where it may not be (a control frame, a continuation), RSV2, or
                // the client's close frame.
                let partial = match op >> 3 & 3 {
                    0 => {
                        encode(&mut wire, 0xC9, b"x", next_key(&mut key));
                        Vec::new()
                    }
                    1 => {
                        encode(&mut wire, 0x01, b"ab", next_key(&mut key));
                        encode(&mut wire, 0xC0, b"cd", next_key(&mut key));
                        b"ab".to_vec()
                    }
                    2 => {
                        encode(&mut wire, 0xA2, b"x", next_key(&mut key));
                        Vec::new()
                    }
                    _ => {
                        encode(&mut wire, 0x88, &[0x03, 0xE8], next_key(&mut key));
                        items.push(Item {
                            at,
                            want: Want::Close,
                            pings: Vec::new(),
                        });
                        break;
                    }
                };
                (Want::Fail(&[1002], partial), Vec::new())
            }
            _ => {
                // A message sent as it is, RSV1 off, in one frame.
                let size = SIZES[usize::from(r.u8() % 12)];
                let how = r.u8();
                let data = content(r, how, size);
                let kind = if op & 0x20 == 0 {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                encode(
                    &mut wire,
                    0x80 | kind.opcode().as_u8(),
                    &data,
                    next_key(&mut key),
                );
                let want = match fail_codes(kind, &data, data.len() > MAX_FRAME) {
                    Some(codes) => Want::Fail(codes, data),
                    None => Want::Message(kind, data),
                };
                (want, Vec::new())
            }
        };
        let stop = matches!(want, Want::Fail(..) | Want::Unknown);
        items.push(Item { at, want, pings });
        if stop {
            break;
        }
    }
    (wire, items)
}

/// The model's expectations as the engine delivers, checked as events come.
struct Expect<'a> {
    items: &'a [Item],
    /// Index of the next item expected.
    next: usize,
    /// Bytes of the current message already delivered (streaming).
    offset: usize,
    /// A piece of the current message was delivered (streaming).
    started: bool,
    /// Events from here on are not predicted (damage, garbage): only checked for sanity.
    unknown_from: usize,
    streaming: bool,
    /// Bytes of the message being streamed, in the unknown zone.
    wild: usize,
    /// The peer's close frame was delivered.
    peer_closed: bool,
    /// `Close` came.
    closed: Option<(Option<Error>, bool)>,
}

impl<'a> Expect<'a> {
    fn current(&self) -> Option<&'a Want> {
        (self.next < self.unknown_from)
            .then(|| self.items.get(self.next).map(|i| &i.want))
            .flatten()
    }

    /// Skips items that deliver nothing, until the next that does.
    fn data(&mut self, kind: MessageKind, data: &[u8], first: bool, fin: bool) {
        assert!(data.len() <= MAX_MESSAGE, "event of {} bytes", data.len());
        if self.streaming {
            if first {
                self.wild = 0;
            }
            self.wild += data.len();
            assert!(self.wild <= MAX_MESSAGE, "streamed {} bytes", self.wild);
        }
        match self.current() {
            Some(Want::Message(k, want)) => {
                assert_eq!(*k, kind, "message kind");
                assert_eq!(first, !self.started, "Fragment::first");
                let end = self.offset + data.len();
                assert!(end <= want.len(), "more delivered than sent");
                assert!(
                    data == &want[self.offset..end],
                    "message bytes differ at {}",
                    self.offset
                );
                self.offset = end;
                self.started = true;
                if fin {
                    assert_eq!(end, want.len(), "message ended early");
                    self.next += 1;
                    self.offset = 0;
                    self.started = false;
                }
            }
            Some(Want::Fail(_, want)) => {
                // Streaming may deliver part of a failing message: a prefix, unfinished.
                assert!(self.streaming && !fin, "failing message delivered");
                assert_eq!(first, !self.started, "Fragment::first");
                self.started = true;
                let end = self.offset + data.len();
                assert!(
                    end <= want.len().min(MAX_MESSAGE),
                    "more delivered than sent"
                );
                assert!(data == &want[self.offset..end], "partial message differs");
                self.offset = end;
            }
            Some(other) => panic!("data delivered where {other:?} was due"),
            None => {
                // Unpredicted: valid text at least (whole messages; pieces may split
                // characters).
                if kind == MessageKind::Text && !self.streaming {
                    assert!(core::str::from_utf8(data).is_ok(), "invalid text delivered");
                }
            }
        }
    }

    fn ping(&mut self, p: &[u8]) {
        match self.current() {
            Some(Want::Ping(want)) => {
                assert_eq!(p, &want[..], "ping payload");
                self.next += 1;
            }
            // A ping between the fragments of a message comes while it arrives.
            Some(Want::Message(..) | Want::Fail(..)) => {
                let sent = self.items[self.next].pings.iter().any(|w| w == p);
                assert!(sent, "ping {p:?} not sent");
            }
            Some(other) => panic!("ping where {other:?} was due"),
            None => {}
        }
    }
}

/// Feeds the wire in chunks and checks every event, collecting what the server writes
/// in `out`; returns the largest chunk.
fn feed(
    conn: &mut Connection,
    wire: &[u8],
    seed: u8,
    zero_copy: bool,
    x: &mut Expect<'_>,
    out: &mut Vec<u8>,
) -> usize {
    let mut chunks = Chunks::new(seed);
    let mut pos = 0;
    let mut max_chunk = 0;
    while pos < wire.len() {
        let n = chunks.next(wire.len() - pos);
        max_chunk = max_chunk.max(n);
        let mut chunk = &wire[pos..pos + n];
        pos += n;
        if zero_copy {
            while !chunk.is_empty() && x.closed.is_none() {
                let buf = conn.read_buf();
                let k = buf.len().min(chunk.len());
                assert!(k > 0, "read_buf empty");
                buf[..k].copy_from_slice(&chunk[..k]);
                conn.commit(k);
                chunk = &chunk[k..];
                drive(conn, x, out);
            }
        } else {
            conn.receive(chunk);
            drive(conn, x, out);
        }
        if x.closed.is_some() {
            break;
        }
    }
    conn.receive_eof();
    drive(conn, x, out);
    max_chunk
}

fn drive(conn: &mut Connection, x: &mut Expect<'_>, out: &mut Vec<u8>) {
    loop {
        match conn.next() {
            Next::Event(e, _) => {
                assert!(x.closed.is_none(), "event after Close");
                assert!(!x.peer_closed, "event after the peer's close: {e:?}");
                match e {
                    Event::Text(t) => {
                        x.data(MessageKind::Text, t.as_bytes(), true, true);
                    }
                    Event::Binary(b) => x.data(MessageKind::Binary, b, true, true),
                    Event::Fragment(f) => x.data(f.kind, f.data, f.first, f.fin),
                    Event::Ping(p) => x.ping(p),
                    Event::Pong(_) => assert!(x.current().is_none(), "pong not sent"),
                    Event::Close(_) => {
                        assert!(
                            x.current().is_none_or(|w| *w == Want::Close),
                            "close frame delivered where {:?} was due",
                            x.current()
                        );
                        x.peer_closed = true;
                    }
                }
            }
            Next::Write(t) => {
                assert!(x.closed.is_none(), "Write after Close");
                let bytes = t.bytes();
                let n = bytes.len();
                out.extend_from_slice(bytes);
                t.consume(n);
            }
            Next::Wait(_) => {
                assert!(x.closed.is_none(), "Wait after Close");
                return;
            }
            Next::Close(c) => {
                let now = (c.error, c.peer.is_some());
                if let Some(prev) = x.closed {
                    assert_eq!(prev, now, "Close changed");
                }
                x.closed = Some(now);
                return;
            }
        }
    }
}

/// `deflate_connection`. Input: `[agreement][flags][client config][damage][at: u16 LE]
/// [items...]`. `flags`: bit 0 streaming delivery, bit 1 `read_buf` + `commit`, bits
/// 2-7 the chunk seed. Client config: its level `% 10` in the low nibble, its
/// threshold from [`THRESHOLDS`] in bits 4-6. `damage % 4`: 0 none, 1 truncates the
/// wire at `at`, 2 flips bit `damage >> 5` of byte `at`. Items, by `op & 7`: 0-3
/// `[size][how]` then (if the content asks) a u16 position, then `op >> 6` u16 cuts: a
/// message of a size from [`SIZES`] (its content by `how & 3`: text, text with an
/// invalid byte at that position, a pattern, noise), compressed by a client connection
/// with the agreement (unless below its threshold), sent as text unless `op & 0x20`,
/// re-cut into `1 + (op >> 6)` frames at the cuts, with a ping between them if
/// `how & 4`; 4 `[len]` a ping; 5 `[len][bytes]` a data frame with RSV1 and those
/// bytes; 6 (by `op >> 3 & 3`) RSV1 on a ping or on a continuation, RSV2 on a binary
/// frame, or the client's close frame; 7 `[size][how]` an uncompressed text or binary
/// message in one frame. The model stops at the first item that must fail.
pub fn run_connection(data: &[u8]) {
    let mut r = Reader::new(data);
    let agreement = agreement(r.u8());
    let flags = r.u8();
    let cfg = r.u8();
    let damage = r.u8();
    let at = usize::from(r.u16());
    let streaming = flags & 1 != 0;
    let deflate = DeflateConfig::default()
        .with_level(cfg & 15)
        .with_threshold(THRESHOLDS[usize::from(cfg >> 4 & 7)]);
    let mut client = Connection::client(
        Config::default()
            .with_max_message_size(8 << 20)
            .with_max_frame_size(8 << 20),
        keys(cfg),
    );
    client.enable_deflate(agreement, deflate);
    let (mut wire, items) = generate(&mut r, &mut client);
    drop(client);
    let mut unknown_at = usize::MAX;
    if !wire.is_empty() {
        match damage % 4 {
            1 => {
                unknown_at = at % wire.len();
                wire.truncate(unknown_at);
            }
            2 => {
                unknown_at = at % wire.len();
                wire[unknown_at] ^= 1 << (damage >> 5);
            }
            _ => {}
        }
    }
    // Items from the one holding the damaged byte on are not predicted.
    let damaged = if unknown_at == usize::MAX {
        items.len()
    } else {
        items
            .iter()
            .rposition(|i| i.at <= unknown_at)
            .unwrap_or(items.len())
    };
    let unknown_from = items
        .iter()
        .position(|i| i.want == Want::Unknown)
        .unwrap_or(items.len())
        .min(damaged);
    let mut x = Expect {
        items: &items,
        next: 0,
        offset: 0,
        started: false,
        unknown_from,
        streaming,
        wild: 0,
        peer_closed: false,
        closed: None,
    };
    let config = Config::default()
        .with_max_message_size(MAX_MESSAGE)
        .with_max_frame_size(MAX_FRAME)
        .with_read_buffer_size(READ_BUF)
        .with_delivery(if streaming {
            Delivery::Streaming
        } else {
            Delivery::Message
        });
    let mut server = Connection::server(config);
    server.enable_deflate(agreement, DeflateConfig::default());
    // Room for what the server writes (pongs, a close frame), not counted.
    let mut out = Vec::with_capacity(wire.len() + 4096);
    let base = alloc::start();
    let max_chunk = feed(
        &mut server,
        &wire,
        flags >> 2,
        flags & 2 != 0,
        &mut x,
        &mut out,
    );
    let peak = alloc::peak_since(base);
    // The message buffer (up to the limit, and while it grows the old one too: it
    // grows by doubling until two thirds of the limit), the inflater (zlib-rs: its
    // state and a 32 KiB window), the peer's context (a window and an eighth), the
    // read buffer (which takes a whole chunk given to `receive`, and while it grows
    // holds the old one too), and slack. Nothing in proportion to what a message
    // inflates to (the bombs inflate to megabytes).
    let bound =
        MAX_MESSAGE * 5 / 3 + (64 << 10) + (40 << 10) + READ_BUF + 2 * max_chunk + (16 << 10);
    assert!(peak <= bound, "peak {peak} bytes > bound {bound}");
    let Some((error, _)) = x.closed else {
        panic!("no Close after the end of input")
    };
    // The close frame the server wrote, if any.
    let frames = parse_frames(&out);
    let close = frames.iter().find(|f| f.header.opcode == OpCode::Close);
    for f in &frames {
        assert!(!f.header.has_rsv(), "RSV bits on a control frame");
        assert!(f.header.mask.is_none(), "server frame masked");
    }
    // No code only in answer to a close frame without one (damage can make one); a
    // failure always sends its code.
    let close_code = close.and_then(|f| {
        assert!(f.payload.len() != 1, "close frame with a one-byte payload");
        (f.payload.len() >= 2).then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]))
    });
    if let Some(Error::Protocol(p)) = error {
        let code = p.close_code().0;
        assert_eq!(close_code, Some(code), "close frame vs the error {p:?}");
        assert!(matches!(code, 1002 | 1007 | 1009), "error {p:?}");
    }
    // The undamaged part ends as the model says.
    if x.next < unknown_from {
        match &items[x.next].want {
            Want::Fail(codes, _) => match error {
                Some(Error::Protocol(p)) => assert!(
                    codes.contains(&p.close_code().0),
                    "failed with {p:?}, expected {codes:?}"
                ),
                e => panic!("ended with {e:?}, expected a failure {codes:?}"),
            },
            Want::Close => {
                assert!(x.peer_closed, "close frame not delivered");
                assert_eq!(error, None, "a closing handshake, then {error:?}");
                assert_eq!(close_code, Some(1000), "close echoed");
            }
            w => panic!("{w:?} never delivered (ended with {error:?})"),
        }
    } else if unknown_from == items.len() {
        // Everything delivered and nothing damaged: the end of input ends it.
        assert_eq!(error, Some(Error::UnexpectedEof), "end of input");
    }
}

// ---------------------------------------------------------------------------------
// deflate_negotiation

/// A server or client config from one byte: bits 0-1 the no-context-takeover flags,
/// bits 2-4 the server's window - 8, bits 5-7 the client's.
fn config_of(b: u8) -> DeflateConfig {
    let mut c = DeflateConfig::default();
    c.server_no_context_takeover = b & 1 != 0;
    c.client_no_context_takeover = b & 2 != 0;
    c.server_max_window_bits = 8 + (b >> 2 & 7);
    c.client_max_window_bits = 8 + (b >> 5 & 7);
    c
}

fn check_agreement(a: &Agreement) {
    assert!((8..=15).contains(&a.server_max_window_bits), "{a:?}");
    assert!((8..=15).contains(&a.client_max_window_bits), "{a:?}");
}

fn check_offer(o: &Offer) {
    if let Some(b) = o.server_max_window_bits {
        assert!((8..=15).contains(&b), "{o:?}");
    }
    if let Some(Some(b)) = o.client_max_window_bits {
        assert!((8..=15).contains(&b), "{o:?}");
    }
}

/// The client config whose offer this is (as far as the offer says).
fn client_config_for(o: &Offer) -> DeflateConfig {
    let mut c = DeflateConfig::default();
    c.server_no_context_takeover = o.server_no_context_takeover;
    c.client_no_context_takeover = o.client_no_context_takeover;
    c.server_max_window_bits = o.server_max_window_bits.unwrap_or(15);
    c.client_max_window_bits = o.client_max_window_bits.flatten().unwrap_or(15);
    c
}

/// `deflate_negotiation`. Input: `[server config][client config][values...]`, the
/// values separated by `\n` (each a `Sec-WebSocket-Extensions` header value, as
/// bytes). As a request: parsed, chosen from, answered and read back. As a response:
/// read by a client that offered its config; an agreement it accepts fits that offer
/// and reads back the same from its own `response()`. The client's own offer is
/// chosen from and read back as well.
pub fn run_negotiation(data: &[u8]) {
    let server = config_of(data.first().copied().unwrap_or(0));
    let client = config_of(data.get(1).copied().unwrap_or(0));
    let rest = data.get(2..).unwrap_or(&[]);
    let values: Vec<&[u8]> = rest.split(|&b| b == b'\n').take(16).collect();

    // As a request.
    let offers = negotiate::parse_offers(values.iter().copied());
    for o in offers.iter().flatten() {
        check_offer(o);
    }
    if let Some(a) = negotiate::choose(&offers, &server) {
        check_agreement(&a);
        let offer = offers
            .iter()
            .flatten()
            .next()
            .unwrap_or_else(|| panic!("an agreement without a valid offer"));
        assert!(a.answers(offer), "{a:?} does not answer {offer:?}");
        assert!(a.server_max_window_bits <= server.server_max_window_bits);
        assert!(a.server_no_context_takeover || !server.server_no_context_takeover);
        assert!(a.client_no_context_takeover || !server.client_no_context_takeover);
        let response = a.response();
        let back = Agreement::from_response(
            core::iter::once(response.as_bytes()),
            &client_config_for(offer),
        );
        assert_eq!(back, Ok(Some(a)), "response {response:?} read back");
    }

    // As a response to the client's offer.
    match Agreement::from_response(values.iter().copied(), &client) {
        Ok(Some(a)) => {
            check_agreement(&a);
            assert!(a.client_max_window_bits <= client.client_max_window_bits);
            if client.server_max_window_bits < 15 {
                assert!(a.server_max_window_bits <= client.server_max_window_bits);
            }
            assert!(a.server_no_context_takeover || !client.server_no_context_takeover);
            assert!(a.client_no_context_takeover || !client.client_no_context_takeover);
            let response = a.response();
            let again = Agreement::from_response(core::iter::once(response.as_bytes()), &client);
            assert_eq!(again, Ok(Some(a)), "own response {response:?} read back");
        }
        Ok(None) => assert!(
            values
                .iter()
                .all(|v| v.iter().all(|b| matches!(b, b' ' | b'\t' | b','))),
            "no agreement from {values:?}"
        ),
        Err(NegotiationError::UnknownParameter)
        | Err(NegotiationError::DuplicateParameter)
        | Err(NegotiationError::InvalidValue)
        | Err(NegotiationError::NotOffered)
        | Err(NegotiationError::UnexpectedExtension)
        | Err(NegotiationError::Syntax) => {}
    }

    // The client's own offer, answered by the server and read back.
    let offer = negotiate::offer(&client);
    let parsed = negotiate::parse_offers(core::iter::once(offer.as_bytes()));
    assert_eq!(parsed.len(), 1, "offer {offer:?}");
    let Some(Ok(o)) = parsed.first() else {
        panic!("own offer {offer:?} refused: {parsed:?}")
    };
    assert_eq!(
        client_config_for(o).server_max_window_bits,
        client.server_max_window_bits
    );
    assert_eq!(
        client_config_for(o).client_max_window_bits,
        client.client_max_window_bits
    );
    let a = negotiate::choose(&parsed, &server)
        .unwrap_or_else(|| panic!("own offer {offer:?} declined"));
    check_agreement(&a);
    let back = Agreement::from_response(core::iter::once(a.response().as_bytes()), &client);
    assert_eq!(back, Ok(Some(a)), "answer to our own offer read back");
}
