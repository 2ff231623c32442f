//! The `structured` target: the input describes a conversation of frames (mostly valid:
//! whole and fragmented messages in both kinds, pings between fragments, pongs, close
//! frames with all sorts of codes and reasons; sometimes not: RSV bits, missing masks,
//! reserved opcodes, stray continuations, bad UTF-8, oversized frames and messages,
//! 64-bit lengths), which is encoded, optionally damaged (a bit flip or a truncation),
//! and fed to a server or client connection (frames masked or not to suit) in chunks
//! the input chooses.
//!
//! Input layout: `[flags][damage][at: u16 LE][items...]`. `flags` bit 0: streaming
//! delivery, bit 1: `read_buf` + `commit`, bits 2-7: chunk seed (its low 2 bits: whole,
//! 1-8, 1-300 or 1-3000 bytes). `damage % 16`: 0 truncates the stream at `at`, 1 flips
//! bit `damage >> 5` of byte `at`; `damage & 0x10`: client role. Items: see
//! [`generate`].
//!
//! A small reference model reads the same bytes in one go and says what must happen:
//! the events in order and how it ends (an error with its close code, the peer's
//! close, or more input needed). The engine's events, the error's close code and the
//! close frame it writes must agree; so must its pongs.
//!
//! The input is decoded by [`Reader`] (missing bytes read as zero), not by the
//! `arbitrary` crate, so that a normal `cargo test` can replay any input without it.

use hybi::frame::{FrameHeader, Parsed};
use hybi::mask::apply_mask;
use hybi::{
    CloseCode, Config, Connection, Delivery, Error, Event, Instant, MessageKind, Next, OpCode,
};

use crate::conn::{MAX_FRAME, MAX_MESSAGE, READ_BUF};

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
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// Text the generator slices messages from (one- to four-byte characters).
const TEXT: &str = "κόσμε hello ☃ 𝄞 wörld — ascii ascii ascii 中文字符 end;";

/// Payload sizes around the limits and the length forms.
const SIZES: [usize; 16] = [
    0, 1, 2, 5, 13, 64, 125, 126, 127, 300, 1000, 1011, 1990, 2000, 2001, 3000,
];

/// Close codes: valid, reserved, out of range.
const CODES: [u16; 16] = [
    1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1014, 1015, 1016, 2999, 3000, 4999, 5000,
];

/// One frame to put on the wire.
#[derive(Clone, Debug)]
struct FrameSpec {
    first_byte: u8,
    masked: bool,
    key: [u8; 4],
    /// Length form: 0 shortest, 1 always 16-bit, 2 always 64-bit.
    form: u8,
    /// Announced length when it differs from the payload (oversized frames).
    announced: Option<u64>,
    payload: Vec<u8>,
}

impl FrameSpec {
    fn new(r: &mut Reader<'_>, fin: bool, op: u8, payload: Vec<u8>) -> FrameSpec {
        let m = r.u8();
        let mut spec = FrameSpec {
            first_byte: (u8::from(fin) << 7) | op,
            masked: true,
            key: [r.u8(), r.u8(), r.u8(), r.u8()],
            form: 0,
            announced: None,
            payload,
        };
        // Rare damage to the frame itself (about one frame in 20).
        match m {
            0xF0 => spec.first_byte |= 0x40,              // RSV1
            0xF1 => spec.first_byte |= 0x10 << (m & 1),   // RSV3 or RSV2
            0xF2 => spec.masked = false,                  // the wrong masking for the role
            0xF3 => spec.first_byte ^= 0x80,              // flip FIN
            0xF4 | 0xF5 => spec.form = 1 + (m & 1),       // non-minimal length form
            0xF6 => spec.announced = Some(u64::MAX >> 1), // huge 64-bit length
            0xF7 => spec.announced = Some(1 << 63 | 5),   // top bit set
            0xF8 => spec.announced = Some(MAX_FRAME as u64 + 1),
            _ => {}
        }
        spec
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let len = self.announced.unwrap_or(self.payload.len() as u64);
        out.push(self.first_byte);
        let mbit = if self.masked { 0x80 } else { 0 };
        if len < 126 && self.form == 0 {
            out.push(mbit | len as u8);
        } else if len <= 0xFFFF && self.form != 2 {
            out.push(mbit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mbit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        let mut body = self.payload.clone();
        if self.masked {
            out.extend_from_slice(&self.key);
            apply_mask(self.key, 0, &mut body);
        }
        out.extend_from_slice(&body);
    }
}

/// Text of about `len` bytes from [`TEXT`], starting at character `skip`.
fn text(len: usize, skip: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 4);
    let mut chars = TEXT.chars().cycle().skip(skip % 40);
    while out.len() < len {
        let c = chars.next().unwrap_or('x');
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out
}

fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(seed | 1)).collect()
}

/// Splits `payload` into `n` pieces at byte positions the reader picks (so text
/// fragments may end inside a character).
fn split(r: &mut Reader<'_>, payload: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = (1..n)
        .map(|_| usize::from(r.u16()) % (payload.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::with_capacity(n);
    let mut start = 0;
    for c in cuts {
        pieces.push(payload[start..c].to_vec());
        start = c;
    }
    pieces.push(payload[start..].to_vec());
    pieces
}

/// Builds the wire bytes the items describe (the input after its first 4 bytes), with
/// the masking the role receives. Each item starts with a byte `op`; `op % 16` picks:
/// 0-3 and 12-15 a data message (text, or binary if `op & 0x10`) of a size from
/// `SIZES`, cut into `1 + (op >> 5 & 3)` fragments at byte positions read next, with a
/// ping between fragments if `op & 0x80`; 4-5 a ping of up to 129 bytes; 6 a pong; 7 a
/// close frame (empty, one byte, or a code from `CODES` with a reason, at times
/// invalid UTF-8 or one byte too long); 8 a stray continuation; 9 a reserved opcode;
/// 10 text with an invalid sequence; 11 a frame over the frame limit, or a message over
/// the message limit. Every frame then reads a damage byte (`0xF0..=0xF8`: RSV bits,
/// wrong masking, FIN flipped, non-minimal, huge or top-bit lengths) and a mask key.
pub fn generate(r: &mut Reader<'_>, client: bool) -> Vec<u8> {
    let mut frames = Vec::new();
    while !r.done() && frames.len() < 40 {
        let op = r.u8();
        match op % 16 {
            0..=3 | 12..=15 => {
                // A data message, in 1 to 4 fragments, maybe with pings between them.
                let kind = if op & 0x10 != 0 {
                    OpCode::Binary
                } else {
                    OpCode::Text
                };
                let size = SIZES[usize::from(r.u8() % 16)];
                let payload = if kind == OpCode::Text {
                    text(size, usize::from(r.u8()))
                } else {
                    binary(size, r.u8())
                };
                let n = 1 + usize::from(op >> 5 & 3);
                let pieces = split(r, &payload, n);
                let last = pieces.len() - 1;
                for (i, piece) in pieces.into_iter().enumerate() {
                    let opcode = if i == 0 { kind.as_u8() } else { 0 };
                    frames.push(FrameSpec::new(r, i == last, opcode, piece));
                    if i < last && op & 0x80 != 0 {
                        let ping = binary(usize::from(r.u8() % 8), 3);
                        frames.push(FrameSpec::new(r, true, 0x9, ping));
                    }
                }
            }
            4 | 5 => {
                let len = usize::from(r.u8() % 130);
                frames.push(FrameSpec::new(r, true, 0x9, binary(len, op)));
            }
            6 => {
                let len = usize::from(r.u8() % 20);
                frames.push(FrameSpec::new(r, true, 0xA, binary(len, op)));
            }
            7 => {
                let how = r.u8();
                let payload = match how % 8 {
                    0 => Vec::new(),
                    1 => vec![0x03],
                    _ => {
                        let mut p = CODES[usize::from(r.u8() % 16)].to_be_bytes().to_vec();
                        let reason = text(usize::from(r.u8() % 40), usize::from(how));
                        p.extend_from_slice(&reason);
                        if how % 8 == 7 {
                            p.push(0xFF); // invalid UTF-8 in the reason
                        }
                        p.truncate(125 + usize::from(how >> 7)); // at times one too many
                        p
                    }
                };
                frames.push(FrameSpec::new(r, true, 0x8, payload));
            }
            8 => {
                let fin = op & 0x10 != 0;
                frames.push(FrameSpec::new(r, fin, 0x0, text(3, 0)));
            }
            9 => {
                let reserved = [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF];
                let opcode = reserved[usize::from(r.u8() % 10)];
                frames.push(FrameSpec::new(r, true, opcode, Vec::new()));
            }
            10 => {
                // Text with an invalid sequence somewhere.
                let mut payload = text(usize::from(r.u8() % 64), 3);
                let bad: [&[u8]; 6] = [
                    b"\xFF",
                    b"\xC0\xAF",
                    b"\xED\xA0\x80",
                    b"\xF4\x90\x80\x80",
                    b"\xE2\x82",
                    b"\x80",
                ];
                let at = usize::from(r.u8()) % (payload.len() + 1);
                let at = (0..=at)
                    .rev()
                    .find(|&i| i == 0 || i == payload.len() || (payload[i] & 0xC0) != 0x80)
                    .unwrap_or(0);
                let b = bad[usize::from(r.u8() % 6)];
                payload.splice(at..at, b.iter().copied());
                let fin = op & 0x10 != 0;
                frames.push(FrameSpec::new(r, fin, 0x1, payload));
            }
            _ => {
                // A binary frame larger than the frame limit, or a message over the
                // message limit in frames under it.
                if op & 0x10 != 0 {
                    frames.push(FrameSpec::new(r, true, 0x2, binary(MAX_FRAME + 1, 7)));
                } else {
                    for i in 0..3 {
                        let opcode = if i == 0 { 0x2 } else { 0x0 };
                        frames.push(FrameSpec::new(r, i == 2, opcode, binary(MAX_FRAME, 9)));
                    }
                }
            }
        }
    }
    let mut wire = Vec::new();
    for f in &mut frames {
        // A server receives masked frames, a client unmasked ones.
        f.masked ^= client;
        f.encode(&mut wire);
    }
    wire
}

/// What is delivered, normalized so model and engine compare: streamed pieces of one
/// message are merged until a control event comes between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A whole message (message mode).
    Message(MessageKind, Vec<u8>),
    /// Pieces of a message (streaming mode), merged.
    Piece {
        /// Text or binary.
        kind: MessageKind,
        /// The bytes.
        data: Vec<u8>,
        /// Starts the message.
        first: bool,
        /// Ends the message.
        fin: bool,
    },
    /// A ping.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's close frame.
    Close(u16, Vec<u8>),
}

/// How the conversation ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The input ran out: more bytes are needed.
    NeedMore,
    /// The engine fails the connection with this close code.
    Error(u16),
    /// The peer's close frame arrived; this code (or 1005) is echoed.
    Closed(u16),
}

fn push_piece(events: &mut Vec<Ev>, kind: MessageKind, data: &[u8], first: bool, fin: bool) {
    if data.is_empty() && !first && !fin {
        return;
    }
    if let Some(Ev::Piece {
        kind: k,
        data: d,
        fin: f,
        ..
    }) = events.last_mut()
    {
        if !first && !*f {
            assert_eq!(*k, kind, "kind changed inside a message");
            d.extend_from_slice(data);
            *f = fin;
            return;
        }
    }
    events.push(Ev::Piece {
        kind,
        data: data.to_vec(),
        first,
        fin,
    });
}

/// A valid prefix of UTF-8 (invalid only if some sequence can never be completed).
fn utf8_prefix_ok(bytes: &[u8]) -> bool {
    match core::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// The reference model: what a server (or client) with the fuzz limits must report
/// for `wire`.
pub fn model(wire: &[u8], streaming: bool, client: bool) -> (Vec<Ev>, End) {
    let mut events = Vec::new();
    // The message in progress: kind, bytes so far, announced length, delivered yet.
    let mut msg: Option<(MessageKind, Vec<u8>, u64, bool)> = None;
    let mut pos = 0;
    loop {
        let rest = &wire[pos..];
        let Some(&b0) = rest.first() else {
            return (events, End::NeedMore);
        };
        let op = b0 & 0x0F;
        let Ok(opcode) = OpCode::from_u8(op) else {
            return (events, End::Error(1002));
        };
        let Some(&b1) = rest.get(1) else {
            return (events, End::NeedMore);
        };
        let masked = b1 & 0x80 != 0;
        let (ext, len) = match b1 & 0x7F {
            126 if rest.len() >= 4 => (2, u64::from(u16::from_be_bytes([rest[2], rest[3]]))),
            127 if rest.len() >= 10 => {
                let len = u64::from_be_bytes(rest[2..10].try_into().unwrap_or_default());
                if len >> 63 != 0 {
                    return (events, End::Error(1002));
                }
                (8, len)
            }
            126 | 127 => return (events, End::NeedMore),
            short => (0, u64::from(short)),
        };
        let head = 2 + ext + if masked { 4 } else { 0 };
        if rest.len() < head {
            return (events, End::NeedMore);
        }
        let key = masked.then(|| {
            [
                rest[head - 4],
                rest[head - 3],
                rest[head - 2],
                rest[head - 1],
            ]
        });
        let fin = b0 & 0x80 != 0;
        if b0 & 0x70 != 0 || masked == client {
            return (events, End::Error(1002));
        }
        let present = (rest.len() - head).min(usize::try_from(len).unwrap_or(usize::MAX));
        let mut payload = rest[head..head + present].to_vec();
        if let Some(k) = key {
            apply_mask(k, 0, &mut payload);
        }
        let complete = present as u64 == len;
        if opcode.is_control() {
            if !fin || len > 125 {
                return (events, End::Error(1002));
            }
            if !complete {
                return (events, End::NeedMore);
            }
            match opcode {
                OpCode::Ping => events.push(Ev::Ping(payload)),
                OpCode::Pong => events.push(Ev::Pong(payload)),
                _ => {
                    let code = match payload.len() {
                        0 => 1005,
                        1 => return (events, End::Error(1002)),
                        _ => u16::from_be_bytes([payload[0], payload[1]]),
                    };
                    if payload.len() >= 2 {
                        if !CloseCode(code).is_valid_on_wire() {
                            return (events, End::Error(1002));
                        }
                        if core::str::from_utf8(&payload[2..]).is_err() {
                            return (events, End::Error(1007));
                        }
                    }
                    let reason = payload.get(2..).unwrap_or(&[]).to_vec();
                    events.push(Ev::Close(code, reason));
                    return (events, End::Closed(code));
                }
            }
            pos += head + present;
            continue;
        }
        if len > MAX_FRAME as u64 {
            return (events, End::Error(1009));
        }
        match (opcode, msg.as_mut()) {
            (OpCode::Continuation, None) => return (events, End::Error(1002)),
            (OpCode::Continuation, Some(m)) => {
                m.2 += len;
                if m.2 > MAX_MESSAGE as u64 {
                    return (events, End::Error(1009));
                }
            }
            (_, Some(_)) => return (events, End::Error(1002)),
            (_, None) => {
                let kind = if opcode == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                msg = Some((kind, Vec::new(), len, false));
            }
        }
        let Some((kind, data, _, started)) = msg.as_mut() else {
            unreachable!()
        };
        let kind = *kind;
        let before = data.len();
        data.extend_from_slice(&payload);
        let text_ok = kind == MessageKind::Binary || utf8_prefix_ok(data);
        let text_done_ok =
            kind == MessageKind::Binary || !(complete && fin) || core::str::from_utf8(data).is_ok();
        if streaming && (present > 0 || complete) {
            let first = !*started;
            *started = true;
            let ok = text_ok && text_done_ok;
            push_piece(
                &mut events,
                kind,
                &data[before..],
                first,
                fin && complete && ok,
            );
        }
        if !text_ok || !text_done_ok {
            return (events, End::Error(1007));
        }
        if !complete {
            return (events, End::NeedMore);
        }
        if fin {
            if !streaming {
                events.push(Ev::Message(kind, core::mem::take(data)));
            }
            msg = None;
        }
        pos += head + present;
    }
}

/// The frames a connection wrote: opcode and unmasked payload.
pub type Written = Vec<(OpCode, Vec<u8>)>;

/// How the engine said the connection ended ([`Next::Close`]): the peer's close frame
/// (code, reason) and the error.
pub type Ending = (Option<(u16, Vec<u8>)>, Option<Error>);

/// What the engine said so far, as a driver sees it through [`Connection::next`].
struct Driven {
    events: Vec<Ev>,
    end: End,
    /// The bytes it wrote.
    out: Vec<u8>,
    /// The peer's close frame, as delivered.
    peer: Option<(u16, Vec<u8>)>,
    /// `Close`, once it came.
    closed: Option<Ending>,
    /// End of input was given.
    eof: bool,
    client: bool,
}

/// Runs the engine on `wire` in chunks from `seed`, then gives it the end of input;
/// returns its normalized events, how it ended before the end of input, the frames it
/// wrote (opcode, unmasked payload) and how `Close` said it ended.
pub fn engine(
    wire: &[u8],
    streaming: bool,
    client: bool,
    zero_copy: bool,
    seed: u8,
) -> (Vec<Ev>, End, Written, Ending) {
    let config = Config::default()
        .with_max_frame_size(MAX_FRAME)
        .with_max_message_size(MAX_MESSAGE)
        .with_read_buffer_size(READ_BUF)
        .with_delivery(if streaming {
            Delivery::Streaming
        } else {
            Delivery::Message
        });
    let mut conn = if client {
        let mut n = seed;
        Connection::client(config, move |buf: &mut [u8]| {
            for b in buf {
                n = n.wrapping_mul(13).wrapping_add(101);
                *b = n;
            }
        })
    } else {
        Connection::server(config)
    };
    let mut d = Driven {
        events: Vec::new(),
        end: End::NeedMore,
        out: Vec::new(),
        peer: None,
        closed: None,
        eof: false,
        client,
    };
    let mut state = u32::from(seed) << 8 | 0x9d;
    let mut pos = 0;
    while pos < wire.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = match seed & 3 {
            0 => wire.len(),
            1 => 1 + (state % 8) as usize,
            2 => 1 + (state % 300) as usize,
            _ => 1 + (state % 3000) as usize,
        };
        let chunk = &wire[pos..(pos + size).min(wire.len())];
        pos += chunk.len();
        if zero_copy {
            let mut rest = chunk;
            while !rest.is_empty() {
                let buf = conn.read_buf();
                let n = buf.len().min(rest.len());
                assert!(
                    n > 0,
                    "read_buf empty after next() returned Write, Wait or Close"
                );
                buf[..n].copy_from_slice(&rest[..n]);
                conn.commit(n);
                rest = &rest[n..];
                d.drive(&mut conn);
            }
        } else {
            conn.receive(chunk);
            d.drive(&mut conn);
        }
    }
    // The transport ends: whatever the input left unfinished, `Close` follows.
    let end = d.end;
    conn.receive_eof();
    d.eof = true;
    d.drive(&mut conn);
    let closed = d
        .closed
        .clone()
        .unwrap_or_else(|| panic!("no Close after the end of input")); // ok: oracle
    match end {
        End::NeedMore => assert_eq!(
            closed,
            (None, Some(Error::UnexpectedEof)),
            "end of input mid-stream"
        ),
        End::Closed(_) => assert_eq!(closed.1, None, "a closing handshake, then {closed:?}"),
        End::Error(_) => {}
    }
    // Decode what was written: whole frames, masked for the role.
    let mut frames = Vec::new();
    let mut rest = &d.out[..];
    while !rest.is_empty() {
        let Ok(Parsed::Complete(h, n)) = FrameHeader::parse(rest) else {
            panic!("partial frame written")
        };
        assert_eq!(h.mask.is_some(), client, "masking wrong for the role");
        assert!(!h.has_rsv() && h.fin);
        let len = h.payload_len as usize;
        let mut payload = rest[n..n + len].to_vec();
        if let Some(key) = h.mask {
            apply_mask(key, 0, &mut payload);
        }
        frames.push((h.opcode, payload));
        rest = &rest[n + len..];
    }
    (d.events, end, frames, closed)
}

impl Driven {
    /// Calls `next` until it waits or closes: events recorded, output written whole.
    fn drive(&mut self, conn: &mut Connection) {
        loop {
            match conn.next() {
                Next::Event(e, _) => {
                    assert!(self.closed.is_none(), "event after Close: {e:?}");
                    assert_eq!(self.end, End::NeedMore, "event after the end: {e:?}");
                    match e {
                        Event::Text(t) => self
                            .events
                            .push(Ev::Message(MessageKind::Text, t.as_bytes().to_vec())),
                        Event::Binary(b) => self
                            .events
                            .push(Ev::Message(MessageKind::Binary, b.to_vec())),
                        Event::Fragment(f) => {
                            push_piece(&mut self.events, f.kind, f.data, f.first, f.fin)
                        }
                        Event::Ping(p) => self.events.push(Ev::Ping(p.to_vec())),
                        Event::Pong(p) => self.events.push(Ev::Pong(p.to_vec())),
                        Event::Close(c) => {
                            let reason = c.reason.as_bytes().to_vec();
                            self.events.push(Ev::Close(c.code.0, reason.clone()));
                            self.peer = Some((c.code.0, reason));
                            self.end = End::Closed(c.code.0);
                        }
                    }
                }
                Next::Write(t) => {
                    assert!(self.closed.is_none(), "Write after Close");
                    let bytes = t.bytes();
                    let n = bytes.len();
                    self.out.extend_from_slice(bytes);
                    t.consume(n);
                }
                Next::Wait(deadline) => {
                    assert!(self.closed.is_none(), "Wait after Close");
                    assert!(!self.eof, "Wait after the end of input");
                    match self.end {
                        // No timer is configured, and no clock given.
                        End::NeedMore => assert_eq!(deadline, None, "Wait while open"),
                        // A client waits for the server to close the transport, within
                        // the close timeout (`ZERO`: the clock is needed to start it).
                        End::Closed(_) => assert!(
                            self.client && deadline == Some(Instant::ZERO),
                            "Wait({deadline:?}) after the closing handshake"
                        ),
                        End::Error(_) => panic!("Wait after a protocol error"),
                    }
                    return;
                }
                Next::Close(c) => {
                    let ending: Ending = (
                        c.peer.map(|f| (f.code.0, f.reason.as_bytes().to_vec())),
                        c.error,
                    );
                    let code = c.code();
                    let clean = c.is_clean();
                    self.close(ending, code, clean);
                    // Close is final: asked again, it says the same.
                    match conn.next() {
                        Next::Close(again) => assert_eq!(
                            (
                                again.peer.map(|f| (f.code.0, f.reason.as_bytes().to_vec())),
                                again.error
                            ),
                            self.closed.clone().unwrap_or_default(),
                            "Close changed"
                        ),
                        other => panic!("{other:?} after Close"),
                    }
                    return;
                }
            }
        }
    }

    fn close(&mut self, ending: Ending, code: CloseCode, clean: bool) {
        if let Some(prev) = &self.closed {
            assert_eq!(&ending, prev, "Close changed");
            return;
        }
        assert_eq!(ending.0, self.peer, "Closed::peer vs the Event::Close");
        match ending.1 {
            Some(Error::Protocol(p)) => {
                assert_eq!(self.end, End::NeedMore, "error {p:?} after the end");
                self.end = End::Error(p.close_code().0);
            }
            Some(Error::UnexpectedEof) => {
                assert!(
                    self.eof && self.peer.is_none(),
                    "UnexpectedEof before the end"
                )
            }
            Some(e) => panic!("{e:?} without a timer"),
            None => assert!(
                matches!(self.end, End::Closed(_)),
                "clean Close without the peer's close"
            ),
        }
        let want = match (ending.1, &ending.0) {
            (Some(e), _) => e.close_code(),
            (None, Some((c, _))) => CloseCode(*c),
            (None, None) => CloseCode::ABNORMAL,
        };
        assert_eq!(code, want, "Closed::code()");
        assert_eq!(
            clean,
            ending.1.is_none() && ending.0.is_some(),
            "Closed::is_clean()"
        );
        self.closed = Some(ending);
    }
}

/// Drops a trailing unfinished message piece: how much of an unfinished message was
/// delivered depends on the chunks.
fn split_partial(events: &mut Vec<Ev>) -> Option<Vec<u8>> {
    match events.last() {
        Some(Ev::Piece { fin: false, .. }) => match events.pop() {
            Some(Ev::Piece { data, .. }) => Some(data),
            _ => None,
        },
        _ => None,
    }
}

/// Runs one input: generate, damage, model, engine, compare.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    let flags = r.u8();
    let damage = r.u8();
    let at = usize::from(r.u16());
    let client = damage & 0x10 != 0;
    let mut wire = generate(&mut r, client);
    if !wire.is_empty() {
        match damage % 16 {
            0 => wire.truncate(at % wire.len()),
            1 => {
                let i = at % wire.len();
                wire[i] ^= 1 << (damage >> 5);
            }
            _ => {}
        }
    }
    let streaming = flags & 1 != 0;
    let (mut want, want_end) = model(&wire, streaming, client);
    let (mut got, got_end, written, closed) =
        engine(&wire, streaming, client, flags & 2 != 0, flags >> 2);
    assert_eq!(
        got_end, want_end,
        "ending differs\nmodel {want:?}\nengine {got:?}"
    );
    let want_partial = split_partial(&mut want);
    let got_partial = split_partial(&mut got);
    assert_eq!(got, want, "events differ");
    if let Some(g) = got_partial {
        let w = want_partial.unwrap_or_default();
        assert!(
            w.starts_with(&g),
            "partial message not a prefix of the bytes sent"
        );
    }
    // What the engine wrote: pongs answering pings (the latest of each batch, so a
    // subsequence ending with the last ping), then the close frame the end calls for.
    let pings: Vec<&Vec<u8>> = want
        .iter()
        .filter_map(|e| match e {
            Ev::Ping(p) => Some(p),
            _ => None,
        })
        .collect();
    let mut close = None;
    let mut pongs = Vec::new();
    for (op, payload) in &written {
        assert!(close.is_none(), "frame written after our close");
        match op {
            OpCode::Pong => pongs.push(payload),
            OpCode::Close => close = Some(payload.clone()),
            other => panic!("wrote {other:?} on its own"),
        }
    }
    let mut it = pings.iter();
    for p in &pongs {
        assert!(it.any(|q| q == p), "pong {p:?} answers no ping, in order");
    }
    if let Some(last) = pings.last() {
        assert_eq!(pongs.last().copied(), Some(*last), "last ping unanswered");
    }
    match want_end {
        End::NeedMore => assert_eq!(close, None, "close frame without a cause"),
        End::Error(code) | End::Closed(code) => {
            let payload = close.expect("no close frame written"); // ok: oracle: the model requires one
            if code == 1005 {
                assert!(payload.is_empty(), "echo of a close without code");
            } else {
                assert!(payload.len() >= 2);
                assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
            }
        }
    }
    // How `Close` said it ended agrees with the model and with the close frame written.
    match (want_end, &closed) {
        (End::Error(code), (None, Some(Error::Protocol(p)))) => {
            assert_eq!(p.close_code().0, code, "Closed::error vs the model");
        }
        (End::Closed(code), (Some((c, reason)), None)) => {
            assert_eq!(*c, code, "Closed::peer vs the model");
            let want = want.iter().rev().find_map(|e| match e {
                Ev::Close(_, r) => Some(r),
                _ => None,
            });
            assert_eq!(Some(reason), want, "Closed::peer's reason vs the model");
        }
        (End::NeedMore, (None, Some(Error::UnexpectedEof))) => {}
        (end, closed) => panic!("ended {end:?} but Close said {closed:?}"),
    }
}
