//! Helpers shared by the engine's integration tests: raw frame building, draining
//! events into owned values, and decoding what an engine wrote.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use hybi::frame::{FrameHeader, MAX_HEADER_LEN, Parsed};
use hybi::mask::apply_mask;
use hybi::{Config, Connection, Error, Event, MessageKind, OpCode};

/// The mask key every test client frame uses.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Raw frame bytes. `first_byte` is FIN|RSV|opcode exactly as on the wire, so tests
/// can build frames the engine itself would never send (reserved opcodes, RSV bits).
pub fn raw_frame(first_byte: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mut body = payload.to_vec();
    if let Some(key) = mask {
        out.extend_from_slice(&key);
        apply_mask(key, 0, &mut body);
    }
    out.extend_from_slice(&body);
    out
}

/// A frame as a client sends it (masked with [`KEY`]).
pub fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    raw_frame(u8::from(fin) << 7 | opcode.as_u8(), Some(KEY), payload)
}

/// A frame as a server sends it (unmasked).
pub fn server_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    raw_frame(u8::from(fin) << 7 | opcode.as_u8(), None, payload)
}

/// A close frame payload.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

pub fn server() -> Connection {
    Connection::server(Config::default())
}

/// A client whose mask keys count up from 1 (deterministic).
pub fn client() -> Connection {
    client_with(Config::default())
}

pub fn client_with(config: Config) -> Connection {
    let mut n = 0u8;
    Connection::client(config, move |buf: &mut [u8]| {
        for b in buf {
            n = n.wrapping_add(1);
            *b = n;
        }
    })
}

/// An event copied out of the engine's buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Fragment {
        kind: MessageKind,
        data: Vec<u8>,
        first: bool,
        fin: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
    Err(Error),
}

impl From<Event<'_>> for Ev {
    fn from(e: Event<'_>) -> Ev {
        match e {
            Event::Text(t) => Ev::Text(t.to_owned()),
            Event::Binary(b) => Ev::Binary(b.to_vec()),
            Event::Fragment(f) => Ev::Fragment {
                kind: f.kind,
                data: f.data.to_vec(),
                first: f.first,
                fin: f.fin,
            },
            Event::Ping(p) => Ev::Ping(p.to_vec()),
            Event::Pong(p) => Ev::Pong(p.to_vec()),
            Event::Close(c) => Ev::Close(c.code.as_u16(), c.reason.to_owned()),
        }
    }
}

/// The events the engine has from the input so far: `next` until it asks for
/// something else. What it wants to write stays queued (see [`take_output`]); when it
/// is over, [`Next::Close`](hybi::Next::Close)'s error (if any) ends the list.
pub fn drain(conn: &mut Connection) -> Vec<Ev> {
    let mut out = Vec::new();
    loop {
        match conn.next() {
            hybi::Next::Event(e, _) => out.push(e.into()),
            hybi::Next::Write(_) | hybi::Next::Wait(_) => return out,
            hybi::Next::Close(closed) => {
                out.extend(closed.error.map(Ev::Err));
                return out;
            }
        }
    }
}

/// Feeds `bytes` and drains events.
pub fn feed(conn: &mut Connection, bytes: &[u8]) -> Vec<Ev> {
    conn.receive(bytes);
    drain(conn)
}

/// Takes everything the engine wants to write, without taking events.
pub fn take_output(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(t) = conn.transmit() {
        let chunk = t.bytes();
        let n = chunk.len();
        out.extend_from_slice(chunk);
        t.consume(n);
    }
    out
}

/// A decoded frame: header and unmasked payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub header: FrameHeader,
    pub payload: Vec<u8>,
}

/// Decodes a byte stream of whole frames (panics on anything else).
pub fn frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Ok(Parsed::Complete(header, n)) = FrameHeader::parse(bytes) else {
            panic!("not a whole frame: {bytes:?}");
        };
        let len = header.payload_len as usize;
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = header.mask {
            apply_mask(key, 0, &mut payload);
        }
        out.push(Frame { header, payload });
        bytes = &bytes[n + len..];
    }
    out
}

/// The close frame the engine queued: (code, reason).
pub fn sent_close(conn: &mut Connection) -> Option<(u16, String)> {
    let out = take_output(conn);
    frames(&out)
        .into_iter()
        .find(|f| f.header.opcode == OpCode::Close)
        .map(|f| {
            if f.payload.is_empty() {
                (1005, String::new())
            } else {
                (
                    u16::from_be_bytes([f.payload[0], f.payload[1]]),
                    String::from_utf8(f.payload[2..].to_vec()).unwrap(),
                )
            }
        })
}

/// Largest header plus a control payload.
pub const MAX_CONTROL_FRAME: usize = MAX_HEADER_LEN + 125;

/// Feeds `bytes` the zero-copy way, `read_buf` + `commit`, at most `chunk` bytes per
/// read, draining events after each; returns the events and the largest slice
/// `read_buf` offered.
pub fn feed_via_read_buf(conn: &mut Connection, bytes: &[u8], chunk: usize) -> (Vec<Ev>, usize) {
    let mut events = Vec::new();
    let mut largest = 0;
    let mut pos = 0;
    while pos < bytes.len() {
        let buf = conn.read_buf();
        largest = largest.max(buf.len());
        let n = buf.len().min(bytes.len() - pos).min(chunk.max(1));
        if n == 0 {
            events.extend(drain(conn));
            if matches!(events.last(), Some(Ev::Err(_))) {
                return (events, largest);
            }
            continue;
        }
        buf[..n].copy_from_slice(&bytes[pos..pos + n]);
        conn.commit(n);
        pos += n;
        events.extend(drain(conn));
        if matches!(events.last(), Some(Ev::Err(_))) {
            break;
        }
    }
    (events, largest)
}

/// Where a run of [`drive`] stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// `Next::Wait` with its deadline.
    Wait(Option<hybi::Instant>),
    /// `Next::Close`: the peer's close frame (code, reason) and the error.
    Close {
        peer: Option<(u16, String)>,
        error: Option<Error>,
        code: u16,
    },
}

/// What [`drive`] saw: the events, every byte written, and where it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Driven {
    pub events: Vec<Ev>,
    pub written: Vec<u8>,
    pub end: End,
}

/// Calls `next` until it waits or closes, copying out events and writing all output.
/// `reply` runs on each event with its outbox (an echo, say).
pub fn drive_with(
    conn: &mut Connection,
    mut reply: impl FnMut(&Event<'_>, &mut hybi::Outbox<'_>),
) -> Driven {
    let mut events = Vec::new();
    let mut written = Vec::new();
    loop {
        match conn.next() {
            hybi::Next::Event(e, mut out) => {
                reply(&e, &mut out);
                events.push(e.into());
            }
            hybi::Next::Write(t) => {
                let bytes = t.bytes();
                written.extend_from_slice(bytes);
                let n = bytes.len();
                t.consume(n);
            }
            hybi::Next::Wait(deadline) => {
                return Driven {
                    events,
                    written,
                    end: End::Wait(deadline),
                };
            }
            hybi::Next::Close(closed) => {
                let end = End::Close {
                    peer: closed.peer.map(|f| (f.code.as_u16(), f.reason.to_owned())),
                    error: closed.error,
                    code: closed.code().as_u16(),
                };
                return Driven {
                    events,
                    written,
                    end,
                };
            }
        }
    }
}

/// [`drive_with`] without replies.
pub fn drive(conn: &mut Connection) -> Driven {
    drive_with(conn, |_, _| {})
}

/// An echo for [`drive_with`]: text and binary messages go back as they came.
pub fn echo(event: &Event<'_>, out: &mut hybi::Outbox<'_>) {
    match *event {
        Event::Text(t) => out.send_text(t).unwrap(),
        Event::Binary(b) => out.send_binary(b).unwrap(),
        _ => {}
    }
}

/// Feeds `bytes` and drives the connection, writing everything: the events, then
/// the error it ended with (as [`Ev::Err`], if it ended with one), and the close frame
/// it wrote (code, reason).
pub fn feed_and_drive(conn: &mut Connection, bytes: &[u8]) -> (Vec<Ev>, Option<(u16, String)>) {
    conn.receive(bytes);
    let mut d = drive(conn);
    let close = frames(&d.written)
        .into_iter()
        .find(|f| f.header.opcode == OpCode::Close)
        .map(|f| {
            if f.payload.is_empty() {
                (1005, String::new())
            } else {
                (
                    u16::from_be_bytes([f.payload[0], f.payload[1]]),
                    String::from_utf8(f.payload[2..].to_vec()).unwrap(),
                )
            }
        });
    if let End::Close { error: Some(e), .. } = d.end {
        d.events.push(Ev::Err(e));
    }
    (d.events, close)
}

/// The deadline `next` waits for; panics if it asks for anything else (an event to
/// take, output to write, the transport to close).
pub fn wait(conn: &mut Connection) -> Option<hybi::Instant> {
    match conn.next() {
        hybi::Next::Wait(deadline) => deadline,
        other => panic!("expected a wait, got {other:?}"),
    }
}

/// True if `next` says to close the transport now (false: it has output to write or
/// waits); panics on an event.
pub fn closing(conn: &mut Connection) -> bool {
    match conn.next() {
        hybi::Next::Close(_) => true,
        hybi::Next::Write(_) | hybi::Next::Wait(_) => false,
        hybi::Next::Event(e, _) => panic!("an event left: {e:?}"),
    }
}
