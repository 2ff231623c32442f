//! The `server_connection` and `client_connection` targets: arbitrary bytes fed to a
//! [`Connection`] in chunks the input chooses, with sends, closes and clock ticks
//! interleaved, and every invariant checked as it goes.
//!
//! Input layout: `[flags][n][n control bytes][wire bytes...]` (missing bytes read as 0).
//!
//! `flags`:
//! - bit 0: [`Delivery::Streaming`] (else whole messages);
//! - bit 1: zero-copy input (`read_buf` + `commit`) instead of `receive`;
//! - bit 2: keepalive pings every 1 s, pong timeout 2 s;
//! - bit 3: idle timeout 5 s;
//! - bit 4: `auto_pong` off;
//! - bit 5: drain output in small pieces;
//! - bit 6: drain output with `pending_output_vectored`;
//! - bit 7: end of input (`receive_eof`) after the last byte.
//!
//! Each control byte `c` is one step: an action chosen by `c >> 5`, then a chunk of
//! `CHUNKS[c & 31]` wire bytes fed in, then every event polled and all output drained.
//! Actions: 0-1 none; 2 hand the message, receive and output buffers back
//! (`take_message_buffer`, `take_read_buffer`, `take_output_buffer`), fill them with garbage as a pool might, and give them again
//! (`give_*_buffer`); 3 toggle echo mode (events are polled with
//! `poll_event_with_outbox` and every message, fragment and pong payload is sent back
//! through the `Outbox` while the event still borrows the input); 4 `send_text` (or a
//! text fragment); 5 `send_ping`; 6 `close`; 7 advance the clock by
//! `(c & 31) * 250 ms` and `handle_timeout`. When the control bytes run out, the rest
//! of the wire is fed in chunks of 256 bytes.
//!
//! The harness itself allocates nothing, so the counting allocator sees the engine only.
//!
//! Invariants:
//! - output: a sequence of whole frames valid for the role (client frames masked,
//!   server frames unmasked, no RSV bits, control frames at most 125 bytes with FIN,
//!   continuation only inside a fragmented message), nothing after our close frame;
//!   `buffered_output` equals the bytes then drained; each pong written is either
//!   an echoed pong, in the order echoed, or with `auto_pong` the answer to an
//!   unanswered ping (answering it and any older ones), and every ping received
//!   before our close is answered; our close frame carries the code of what
//!   caused it (our `close`, the protocol error, the idle timeout, or the echo of the
//!   peer's code);
//! - events: nothing after `Event::Close` or an error (an idle timeout starts the
//!   closing handshake and is the only exception); whole messages in message mode,
//!   fragments in streaming mode, with `first`/`fin` consistent, one kind per message
//!   and text pieces concatenating to valid UTF-8; sizes within the limits;
//! - sends: refused with `SendError::Closed` once a close was sent or queued;
//! - memory: live bytes stay below `MAX_MESSAGE * 3/2 + READ_BUF + largest chunk + 4 KiB`,
//!   plus, once echo mode was on, what the echoes queue (at most a message and a chunk,
//!   in a buffer that may have doubled: `2 * (MAX_MESSAGE + 2 KiB)`).

use core::time::Duration;

use hybi::close::CloseCode;
use hybi::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Parsed};
use hybi::{
    Config, Connection, Delivery, Error, Event, Instant, MessageKind, Role, SendError, State,
};

use crate::alloc;

/// Limits small enough that the fuzzer reaches them.
pub const MAX_FRAME: usize = 2_000;
/// See [`MAX_FRAME`].
pub const MAX_MESSAGE: usize = 5_000;
/// See [`MAX_FRAME`].
pub const READ_BUF: usize = 1_024;

/// Chunk sizes a control byte selects from (around the interesting boundaries).
pub const CHUNKS: [usize; 32] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 31, 32, 33, 64, 100, 125, 126, 127, 128,
    200, 255, 256, 500, 700, 1024, 2048,
];

/// Chunk size once the control bytes run out.
const DEFAULT_CHUNK: usize = 256;

/// Text our sends use: mixed one- to four-byte characters.
const TEXT: &str = "héllo wörld ☃ 𝄞 ascii and more ascii, κόσμε; \
    the quick brown fox jumps over the lazy dog: 0123456789 €€€ 𝄞𝄞 ok; \
    the end of the text, long enough for every payload the actions ask for.";

/// Close codes our `close` picks from.
const CLOSE_CODES: [u16; 8] = [1000, 1001, 1003, 1008, 1011, 3000, 4999, 1002];

/// Memory slack for the engine's fixed-size parts (output, small allocations).
const SLACK: usize = 4 << 10;

/// Runs one input in `role` and checks everything.
pub fn run(role: Role, data: &[u8]) {
    run_with(role, data);
}

/// Runs one input in `role`.
fn run_with(role: Role, data: &[u8]) {
    let flags = data.first().copied().unwrap_or(0);
    let n = usize::from(data.get(1).copied().unwrap_or(0));
    let ctl_end = (2 + n).min(data.len());
    let ctl = data.get(2..ctl_end).unwrap_or(&[]);
    let wire = data.get(ctl_end..).unwrap_or(&[]);
    let mut h = Harness::new(role, flags);
    let base = alloc::start();
    let mut max_chunk = 0;
    h.run(ctl, wire, &mut max_chunk);
    let peak = alloc::peak_since(base);
    let echo = if h.echoed {
        2 * (MAX_MESSAGE + 2048)
    } else {
        0
    };
    let bound = MAX_MESSAGE * 3 / 2 + READ_BUF + max_chunk + SLACK + echo;
    assert!(peak <= bound, "peak {peak} bytes > bound {bound}");
}

/// What our close frame must carry, decided by what caused it first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CloseExpect {
    /// No close frame may be written (yet).
    None,
    /// An empty close frame (echo of a peer's close without a code).
    Empty,
    /// A close frame with this code.
    Code(u16),
}

/// Streaming check of what the engine writes (no allocation).
struct OutCheck {
    role: Role,
    head: [u8; MAX_HEADER_LEN],
    head_len: usize,
    /// The frame whose payload is being written: header and payload bytes left.
    frame: Option<(FrameHeader, u64)>,
    /// Control payload collected (unmasked), to check pongs and closes.
    ctl: [u8; MAX_CONTROL_PAYLOAD],
    ctl_len: usize,
    /// Position in the payload, for unmasking.
    pos: usize,
    /// Our close frame was written completely.
    closed: bool,
    /// A fragmented data message of ours is unfinished.
    in_message: bool,
    data_frames: u64,
}

struct Harness {
    conn: Connection,
    streaming: bool,
    zero_copy: bool,
    auto_pong: bool,
    small_drain: bool,
    vectored: bool,
    eof_at_end: bool,
    now_ms: u64,
    out: OutCheck,

    /// An error or `Event::Close` ended the event stream.
    ended: bool,
    /// An idle timeout was reported (the closing handshake proceeds after it).
    idle_timeout: bool,
    /// The connection failed without a close frame (pong timeout, end of input):
    /// sends are refused from then on.
    dead: bool,
    protocol_error: bool,
    /// A close frame is sent or queued (by us, by an error, or as an echo).
    close_queued: bool,
    close_expect: CloseExpect,
    /// Pongs owed: pings not yet answered and echoed pongs not yet written.
    pongs: Pongs,
    /// A fragmented message is being received (streaming): its kind and size so far.
    rx_message: Option<(MessageKind, usize)>,
    /// Incomplete UTF-8 sequence at the end of the last text piece.
    carry: [u8; 4],
    carry_len: usize,
    /// Data frames we asked for (send_text / send_fragment) that succeeded.
    data_sent: u64,
    /// Our own fragmented message is unfinished: its kind.
    tx_fragmenting: Option<MessageKind>,
    /// Echo mode (action 3 toggles it).
    echo: bool,
    /// Echo mode was on at some point (it may queue a whole message).
    echoed: bool,
}

impl Harness {
    fn new(role: Role, flags: u8) -> Harness {
        let streaming = flags & 1 != 0;
        let mut config = Config::default()
            .with_max_frame_size(MAX_FRAME)
            .with_max_message_size(MAX_MESSAGE)
            .with_read_buffer_size(READ_BUF)
            .with_delivery(if streaming {
                Delivery::Streaming
            } else {
                Delivery::Message
            })
            .with_auto_pong(flags & 16 == 0)
            .with_close_timeout(Duration::from_secs(3));
        if flags & 4 != 0 {
            config = config
                .with_keepalive(Some(Duration::from_secs(1)))
                .with_pong_timeout(Duration::from_secs(2));
        }
        if flags & 8 != 0 {
            config = config.with_idle_timeout(Some(Duration::from_secs(5)));
        }
        let conn = match role {
            Role::Server => Connection::server(config),
            Role::Client => {
                let mut n = flags;
                Connection::client(config, move |buf: &mut [u8]| {
                    for b in buf {
                        n = n.wrapping_mul(31).wrapping_add(7);
                        *b = n;
                    }
                })
            }
        };
        Harness {
            conn,
            streaming,
            zero_copy: flags & 2 != 0,
            auto_pong: flags & 16 == 0,
            small_drain: flags & 32 != 0,
            vectored: flags & 64 != 0,
            eof_at_end: flags & 128 != 0,
            now_ms: 0,
            out: OutCheck {
                role,
                head: [0; MAX_HEADER_LEN],
                head_len: 0,
                frame: None,
                ctl: [0; MAX_CONTROL_PAYLOAD],
                ctl_len: 0,
                pos: 0,
                closed: false,
                in_message: false,
                data_frames: 0,
            },
            ended: false,
            idle_timeout: false,
            dead: false,
            protocol_error: false,
            close_queued: false,
            close_expect: CloseExpect::None,
            pongs: Pongs::new(),
            rx_message: None,
            carry: [0; 4],
            carry_len: 0,
            data_sent: 0,
            tx_fragmenting: None,
            echo: false,
            echoed: false,
        }
    }

    fn run(&mut self, ctl: &[u8], wire: &[u8], max_chunk: &mut usize) {
        let mut pos = 0;
        for &c in ctl {
            self.action(c);
            let size = CHUNKS[usize::from(c & 31)];
            *max_chunk = (*max_chunk).max(size);
            let end = (pos + size).min(wire.len());
            self.feed(&wire[pos..end]);
            pos = end;
            self.drain();
        }
        while pos < wire.len() {
            *max_chunk = (*max_chunk).max(DEFAULT_CHUNK);
            let end = (pos + DEFAULT_CHUNK).min(wire.len());
            self.feed(&wire[pos..end]);
            pos = end;
            self.drain();
        }
        if self.eof_at_end {
            self.conn.receive_eof();
            self.drain();
        }
        // Let every timer run out.
        for _ in 0..4 {
            self.tick(10_000);
            self.drain();
        }
        self.finish();
    }

    fn action(&mut self, c: u8) {
        let arg = usize::from(c & 31);
        match c >> 5 {
            4 => {
                if arg < 24 {
                    let text = prefix(TEXT, arg * 3);
                    let r = self.conn.send_text(text);
                    self.check_send(r, true, text.len());
                } else {
                    // A fragmented text message, split inside a character at times.
                    let piece = &TEXT.as_bytes()[arg..arg + 5];
                    let fin = c & 1 != 0;
                    let r = self.conn.send_fragment(MessageKind::Text, piece, fin);
                    match r {
                        Ok(()) => {
                            assert!(
                                !self.close_queued && !self.dead,
                                "fragment sent after a close"
                            );
                            assert_ne!(self.tx_fragmenting, Some(MessageKind::Binary));
                            self.data_sent += 1;
                            self.tx_fragmenting = (!fin).then_some(MessageKind::Text);
                        }
                        // Text fragments are refused when they break UTF-8 (a piece may
                        // end inside a character that `fin` would cut).
                        Err(SendError::InvalidUtf8) => assert!(!self.close_queued),
                        Err(SendError::Closed) => assert!(self.close_queued || self.dead),
                        Err(SendError::KindMismatch) => {
                            assert_eq!(self.tx_fragmenting, Some(MessageKind::Binary))
                        }
                        Err(e) => panic!("send_fragment: {e:?}"),
                    }
                }
            }
            5 => {
                let payload = &TEXT.as_bytes()[..arg * 5];
                let r = self.conn.send_ping(payload);
                self.check_send(r, false, payload.len());
            }
            6 => {
                let code = CLOSE_CODES[arg % CLOSE_CODES.len()];
                let reason = prefix(TEXT, arg);
                let r = self.conn.close(CloseCode(code), reason);
                match r {
                    Ok(()) => {
                        assert!(
                            !self.close_queued && !self.dead,
                            "close accepted after the end"
                        );
                        self.queue_close(CloseExpect::Code(code));
                    }
                    Err(SendError::Closed) => {
                        assert!(self.close_queued || self.dead, "close refused")
                    }
                    Err(e) => panic!("close({code}): {e:?}"),
                }
            }
            7 => self.tick(arg as u64 * 250),
            2 => {
                if let Some(mut buf) = self.conn.take_message_buffer() {
                    buf.fill(0x3C);
                    assert!(
                        self.conn.give_message_buffer(buf).is_none(),
                        "message buffer refused"
                    );
                }
                if let Some(mut buf) = self.conn.take_read_buffer() {
                    assert_eq!(
                        self.conn.buffered_input(),
                        0,
                        "read buffer taken with input"
                    );
                    buf.fill(0xA5);
                    assert!(
                        self.conn.give_read_buffer(buf).is_none(),
                        "read buffer refused"
                    );
                }
                if let Some(mut buf) = self.conn.take_output_buffer() {
                    assert!(!self.conn.has_output(), "output buffer taken with output");
                    buf.clear();
                    buf.extend_from_slice(&[0x5A; 16]);
                    assert!(
                        self.conn.give_output_buffer(buf).is_none(),
                        "output buffer refused"
                    );
                }
            }
            3 => {
                self.echo = !self.echo;
                self.echoed |= self.echo;
            }
            _ => {}
        }
    }

    fn check_send(&mut self, r: Result<(), SendError>, data: bool, len: usize) {
        match r {
            Ok(()) => {
                assert!(
                    !self.close_queued && !self.dead,
                    "send accepted after a close"
                );
                if data {
                    assert!(
                        self.tx_fragmenting.is_none(),
                        "message accepted inside a fragmented one"
                    );
                    self.data_sent += 1;
                }
            }
            Err(SendError::Closed) => {
                assert!(self.close_queued || self.dead, "send refused while open")
            }
            Err(SendError::MessageInProgress) => assert!(data && self.tx_fragmenting.is_some()),
            Err(SendError::ControlPayloadTooLong(n)) => assert!(!data && n == len && n > 125),
            Err(e) => panic!("unexpected send error {e:?}"),
        }
    }

    /// Checks the outcome of sending back what an event carried (before the event
    /// itself is accounted for).
    fn check_echo(
        &mut self,
        r: Result<(), SendError>,
        data: bool,
        fragment: Option<(MessageKind, bool)>,
        can_send: bool,
        event: &Ev,
    ) {
        let closed = self.close_queued || self.dead;
        assert_eq!(can_send, !closed, "Outbox::can_send");
        match (r, fragment) {
            (Ok(()), Some((kind, fin))) => {
                assert!(!closed, "echo accepted after a close");
                assert!(self.tx_fragmenting.is_none_or(|k| k == kind));
                self.data_sent += 1;
                self.tx_fragmenting = (!fin).then_some(kind);
            }
            (Ok(()), None) => {
                assert!(!closed, "echo accepted after a close");
                if let (false, Ev::Pong(payload, len)) = (data, event) {
                    self.pongs.push(&payload[..*len], Owed::Echo);
                }
                if data {
                    assert!(self.tx_fragmenting.is_none());
                    self.data_sent += 1;
                }
            }
            (Err(SendError::Closed), _) => assert!(closed, "echo refused while open"),
            (Err(SendError::MessageInProgress), None) => {
                assert!(data && self.tx_fragmenting.is_some())
            }
            (Err(SendError::KindMismatch), Some((kind, _))) => {
                assert!(self.tx_fragmenting.is_some_and(|k| k != kind))
            }
            // A piece echoed into a message it did not start (ours, or the echo was
            // switched on mid-message, or an earlier piece was refused) may break UTF-8:
            // refused, and nothing queued (the frame count at the end checks that).
            (Err(SendError::InvalidUtf8), Some((MessageKind::Text, _))) => {
                assert!(self.tx_fragmenting != Some(MessageKind::Binary))
            }
            (Err(e), _) => panic!("echo refused: {e:?}"),
        }
    }

    fn queue_close(&mut self, expect: CloseExpect) {
        if !self.close_queued {
            self.close_queued = true;
            self.close_expect = expect;
            // Queuing our close flushes a pending pong first; none is owed after it.
        }
    }

    fn tick(&mut self, ms: u64) {
        self.now_ms += ms;
        self.conn.handle_timeout(Instant::from_millis(self.now_ms));
        if let Some(t) = self.conn.poll_timeout() {
            // Whatever was due fired: the next deadline is in the future (a caller
            // that waits for it must not spin).
            let now = Instant::from_millis(self.now_ms);
            assert!(
                t > now,
                "poll_timeout {t:?} not after handle_timeout({now:?})"
            );
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.zero_copy {
            let mut rest = bytes;
            while !rest.is_empty() {
                let buf = self.conn.read_buf();
                if buf.is_empty() {
                    // Allowed only while events are pending: drain and retry.
                    self.drain();
                    let buf = self.conn.read_buf();
                    assert!(!buf.is_empty(), "read_buf empty after draining events");
                    continue;
                }
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.conn.commit(n);
                rest = &rest[n..];
                if !rest.is_empty() {
                    self.drain();
                }
            }
        } else {
            self.conn.receive(bytes);
        }
    }

    /// Polls every event, then drains every byte of output.
    fn drain(&mut self) {
        loop {
            let polled = if self.echo {
                match self.conn.poll_event_with_outbox() {
                    Ok(Some((event, mut outbox))) => {
                        // Send back from the borrowed payload, before anything else.
                        let r = match event {
                            Event::Text(t) => Some((outbox.send_text(t), true, None)),
                            Event::Binary(b) => Some((outbox.send_binary(b), true, None)),
                            Event::Fragment(f) => Some((
                                outbox.send_fragment(f.kind, f.data, f.fin),
                                true,
                                Some((f.kind, f.fin)),
                            )),
                            Event::Pong(p) => Some((outbox.send_pong(p), false, None)),
                            _ => None,
                        };
                        let can_send = outbox.can_send();
                        Ok(Some((copy_event(event), r, Some(can_send))))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                }
            } else {
                match self.conn.poll_event() {
                    Ok(Some(event)) => Ok(Some((copy_event(event), None, None))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                }
            };
            match polled {
                Ok(None) => break,
                Ok(Some((event, echo, can_send))) => {
                    assert!(!self.ended, "event after the end: {event:?}");
                    if let (Some((r, data, fragment)), Some(can_send)) = (echo, can_send) {
                        self.check_echo(r, data, fragment, can_send, &event);
                    }
                    self.on_event(event);
                }
                Err(e) => {
                    assert!(!self.ended, "error after the end: {e:?}");
                    self.on_error(e);
                }
            }
        }
        self.drain_output();
    }

    fn on_error(&mut self, e: Error) {
        match e {
            Error::Protocol(p) => {
                self.protocol_error = true;
                self.queue_close(CloseExpect::Code(p.close_code().0));
            }
            Error::IdleTimeout => {
                assert!(!self.idle_timeout, "idle timeout twice");
                self.idle_timeout = true;
                self.queue_close(CloseExpect::Code(1001));
                // The closing handshake proceeds: events may still follow.
                return;
            }
            Error::PongTimeout => self.dead = true,
            Error::CloseTimeout => assert!(self.close_queued, "close timeout without a close"),
            Error::UnexpectedEof => {
                assert!(self.eof_at_end);
                self.dead = true;
            }
        }
        self.ended = true;
        self.rx_message = None;
    }

    fn on_event(&mut self, event: Ev) {
        match event {
            Ev::Text(len) | Ev::Binary(len) => {
                assert!(!self.streaming, "whole message in streaming mode");
                assert!(len <= MAX_MESSAGE);
            }
            Ev::Fragment {
                kind,
                data,
                len,
                first,
                fin,
            } => {
                assert!(self.streaming, "fragment in message mode");
                let so_far = match self.rx_message {
                    None => {
                        assert!(first, "first piece not marked first");
                        self.carry_len = 0;
                        0
                    }
                    Some((k, so_far)) => {
                        assert!(!first, "first flag inside a message");
                        assert_eq!(k, kind, "kind changed inside a message");
                        so_far
                    }
                };
                let total = so_far + len;
                assert!(total <= MAX_MESSAGE, "message of {total} bytes delivered");
                if kind == MessageKind::Text {
                    self.check_text_piece(&data[..len.min(data.len())], len, fin);
                }
                self.rx_message = if fin { None } else { Some((kind, total)) };
            }
            Ev::Ping(payload, len) => {
                assert!(len <= MAX_CONTROL_PAYLOAD);
                if self.auto_pong && !self.close_queued {
                    self.pongs.push(&payload[..len], Owed::Answer);
                }
            }
            Ev::Pong(_, len) => assert!(len <= MAX_CONTROL_PAYLOAD),
            Ev::Close(code, reason_len) => {
                assert!(reason_len <= 123);
                assert!(
                    code == CloseCode::NO_STATUS || code.is_valid_on_wire(),
                    "close code {code} reported"
                );
                self.queue_close(if code == CloseCode::NO_STATUS {
                    CloseExpect::Empty
                } else {
                    CloseExpect::Code(code.0)
                });
                self.ended = true;
                self.rx_message = None;
                assert!(matches!(
                    self.conn.state(),
                    State::CloseReceived | State::Closed
                ));
            }
        }
    }

    /// Text pieces of one message must concatenate to valid UTF-8. `data` holds the
    /// first 4 KiB of the piece at most (the harness keeps no more); `len` is its size.
    fn check_text_piece(&mut self, data: &[u8], len: usize, fin: bool) {
        assert_eq!(data.len(), len, "text piece larger than the copy buffer");
        let mut rest = data;
        if self.carry_len > 0 {
            // Complete the character the last piece ended inside.
            let need = utf8_len(self.carry[0]);
            while self.carry_len < need && !rest.is_empty() {
                self.carry[self.carry_len] = rest[0];
                self.carry_len += 1;
                rest = &rest[1..];
            }
            if self.carry_len == need {
                assert!(
                    core::str::from_utf8(&self.carry[..need]).is_ok(),
                    "invalid character across pieces: {:?}",
                    &self.carry[..need]
                );
                self.carry_len = 0;
            } else {
                // Validate the partial sequence so far.
                check_partial(&self.carry[..self.carry_len]);
            }
        }
        match core::str::from_utf8(rest) {
            Ok(_) => {}
            Err(e) => {
                assert!(e.error_len().is_none(), "invalid UTF-8 delivered: {rest:?}");
                let tail = &rest[e.valid_up_to()..];
                assert!(self.carry_len == 0 && tail.len() < 4);
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len();
                check_partial(tail);
            }
        }
        if fin {
            assert_eq!(self.carry_len, 0, "text message ends inside a character");
        }
    }

    fn drain_output(&mut self) {
        let Harness {
            conn,
            out,
            pongs,
            close_expect,
            small_drain,
            vectored,
            ..
        } = self;
        loop {
            let buffered = conn.buffered_output();
            let has = conn.has_output();
            assert_eq!(
                has,
                buffered > 0,
                "has_output disagrees with buffered_output"
            );
            if !has {
                break;
            }
            let mut drained = 0;
            while conn.has_output() {
                let mut st = OutState {
                    close_expect: *close_expect,
                    pongs: &mut *pongs,
                };
                let n = if *vectored {
                    let mut slices: [&[u8]; 4] = [&[]; 4];
                    let count = conn.pending_output_vectored(&mut slices);
                    assert!(count > 0);
                    let mut total = 0;
                    for s in &slices[..count] {
                        assert!(!s.is_empty(), "empty slice in vectored output");
                        let take = if *small_drain {
                            s.len().min(3)
                        } else {
                            s.len()
                        };
                        out.feed(&s[..take], &mut st);
                        total += take;
                        if take < s.len() {
                            break;
                        }
                    }
                    total
                } else {
                    let chunk = conn.pending_output();
                    assert!(!chunk.is_empty(), "has_output but nothing pending");
                    let take = if *small_drain {
                        chunk.len().min(3)
                    } else {
                        chunk.len()
                    };
                    out.feed(&chunk[..take], &mut st);
                    take
                };
                conn.consume_output(n);
                drained += n;
            }
            assert_eq!(
                drained, buffered,
                "buffered_output was not what was drained"
            );
        }
        // With auto_pong, every ping received before our close is answered at once;
        // echoed pongs are written at once.
        assert!(
            pongs.is_empty(),
            "ping left unanswered or echoed pong not written"
        );
        // Everything owed was written: nothing forgotten can still come.
        pongs.clear();
    }

    fn finish(&mut self) {
        // Whole frames only.
        assert!(
            self.out.head_len == 0 && self.out.frame.is_none(),
            "output ends inside a frame"
        );
        assert_eq!(
            self.out.data_frames, self.data_sent,
            "data frames written vs. sends accepted"
        );
        if self.protocol_error {
            assert_eq!(self.conn.state(), State::Closed);
            assert!(self.conn.should_close_transport());
        }
        if self.close_queued {
            assert!(self.out.closed, "a close was queued but never written");
        }
        if self.out.closed {
            assert!(!self.conn.is_open());
        }
        // 40 s of clock after the input: every closing handshake has finished or timed
        // out, and the caller is told to close the transport; an untouched connection
        // is still open.
        if self.close_queued || self.dead {
            assert_eq!(self.conn.state(), State::Closed, "closing never finished");
            assert!(
                self.conn.should_close_transport(),
                "transport never released"
            );
            assert!(
                self.conn.poll_timeout().is_none(),
                "timer left after the end: {:?}",
                self.conn.poll_timeout()
            );
        } else {
            assert_eq!(self.conn.state(), State::Open);
            assert!(!self.conn.should_close_transport());
        }
    }
}

/// What the output check needs from the harness for one feed.
struct OutState<'a> {
    close_expect: CloseExpect,
    pongs: &'a mut Pongs,
}

impl OutCheck {
    fn feed(&mut self, mut bytes: &[u8], st: &mut OutState<'_>) {
        while !bytes.is_empty() {
            assert!(!self.closed, "bytes written after our close frame");
            match self.frame {
                None => {
                    self.head[self.head_len] = bytes[0];
                    self.head_len += 1;
                    bytes = &bytes[1..];
                    match FrameHeader::parse(&self.head[..self.head_len]) {
                        Ok(Parsed::Incomplete(_)) => {}
                        Ok(Parsed::Complete(h, n)) => {
                            assert_eq!(n, self.head_len);
                            self.head_len = 0;
                            self.start_frame(h);
                            if h.payload_len == 0 {
                                self.end_frame(h, st);
                            }
                        }
                        Err(e) => panic!("invalid frame header written: {e:?}"),
                    }
                }
                Some((h, left)) => {
                    let take = (left as usize).min(bytes.len());
                    if h.opcode.is_control() {
                        for &b in &bytes[..take] {
                            let b = match h.mask {
                                Some(k) => b ^ k[self.pos & 3],
                                None => b,
                            };
                            self.ctl[self.ctl_len] = b;
                            self.ctl_len += 1;
                            self.pos += 1;
                        }
                    }
                    bytes = &bytes[take..];
                    let left = left - take as u64;
                    self.frame = Some((h, left));
                    if left == 0 {
                        self.end_frame(h, st);
                    }
                }
            }
        }
    }

    fn start_frame(&mut self, h: FrameHeader) {
        assert_eq!(
            h.mask.is_some(),
            self.role == Role::Client,
            "masking wrong for our role"
        );
        assert!(!h.has_rsv(), "RSV bits written");
        if h.opcode.is_control() {
            assert!(h.fin, "fragmented control frame written");
            assert!(h.payload_len <= 125, "long control frame written");
        } else {
            match h.opcode {
                OpCode::Continuation => assert!(self.in_message, "stray continuation written"),
                _ => assert!(!self.in_message, "new message inside a fragmented one"),
            }
            self.in_message = !h.fin;
            self.data_frames += 1;
        }
        self.frame = Some((h, h.payload_len));
        self.ctl_len = 0;
        self.pos = 0;
    }

    fn end_frame(&mut self, h: FrameHeader, st: &mut OutState<'_>) {
        self.frame = None;
        let payload = &self.ctl[..self.ctl_len];
        match h.opcode {
            OpCode::Pong => {
                assert!(
                    st.pongs.written(payload),
                    "pong written that echoes neither an unanswered ping nor a received pong"
                );
            }
            OpCode::Close => {
                match st.close_expect {
                    CloseExpect::None => panic!("close frame written without a cause"),
                    CloseExpect::Empty => assert!(payload.is_empty(), "echo of an empty close"),
                    CloseExpect::Code(code) => {
                        assert!(payload.len() >= 2, "close without a code");
                        let sent = u16::from_be_bytes([payload[0], payload[1]]);
                        assert_eq!(sent, code, "close code written");
                    }
                }
                if payload.len() >= 2 {
                    assert!(
                        CloseCode(u16::from_be_bytes([payload[0], payload[1]])).is_valid_on_wire()
                    );
                    assert!(
                        core::str::from_utf8(&payload[2..]).is_ok(),
                        "close reason not UTF-8"
                    );
                }
                self.closed = true;
                // No pong after our close.
                st.pongs.clear();
            }
            _ => {}
        }
    }
}

/// An event copied out of the engine's buffers without allocating: control payloads
/// in full, data as lengths (and text pieces up to 4 KiB).
// Large on purpose: the harness must not allocate (the allocator is measured).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Ev {
    Text(usize),
    Binary(usize),
    Fragment {
        kind: MessageKind,
        data: [u8; 4096],
        len: usize,
        first: bool,
        fin: bool,
    },
    Ping([u8; MAX_CONTROL_PAYLOAD], usize),
    Pong([u8; MAX_CONTROL_PAYLOAD], usize),
    Close(CloseCode, usize),
}

fn copy_event(event: Event<'_>) -> Ev {
    match event {
        Event::Text(t) => Ev::Text(t.len()),
        Event::Binary(b) => Ev::Binary(b.len()),
        Event::Fragment(f) => {
            let mut data = [0u8; 4096];
            let n = f.data.len().min(data.len());
            data[..n].copy_from_slice(&f.data[..n]);
            Ev::Fragment {
                kind: f.kind,
                data,
                len: f.data.len(),
                first: f.first,
                fin: f.fin,
            }
        }
        Event::Ping(p) => {
            assert!(p.len() <= MAX_CONTROL_PAYLOAD);
            let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
            payload[..p.len()].copy_from_slice(p);
            Ev::Ping(payload, p.len())
        }
        Event::Pong(p) => {
            let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
            payload[..p.len()].copy_from_slice(p);
            Ev::Pong(payload, p.len())
        }
        Event::Close(c) => Ev::Close(c.code, c.reason.len()),
    }
}

/// The longest prefix of `s` of at most `n` bytes that ends on a character boundary.
fn prefix(s: &str, n: usize) -> &str {
    let mut n = n.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// The length of the UTF-8 sequence a lead byte starts (1 for invalid leads, which
/// then fail validation).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

/// `partial` (1 to 3 bytes) must be the start of some valid character: completing it
/// with the smallest continuation bytes that could follow gives valid UTF-8 for at
/// least one completion.
fn check_partial(partial: &[u8]) {
    let need = utf8_len(partial[0]);
    assert!(partial.len() < need, "incomplete sequence {partial:?}");
    let mut ok = false;
    for fill in [0x80u8, 0x90, 0xA0, 0xBF] {
        let mut c = [fill; 4];
        c[..partial.len()].copy_from_slice(partial);
        if core::str::from_utf8(&c[..need]).is_ok() {
            ok = true;
        }
    }
    assert!(
        ok,
        "a piece ends in a sequence no character starts with: {partial:?}"
    );
}

/// Why a pong is owed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owed {
    /// A ping was received and `auto_pong` is on.
    Answer,
    /// The echo mode sent a received pong back.
    Echo,
}

/// Pongs owed, in the order they became owed, in a fixed ring (the harness does not
/// allocate).
///
/// The engine writes an echoed pong at once, and answers a ping at once while little
/// output is queued; when its output backs up it keeps only the answer to the latest
/// ping and writes it later (still before any frame but a pong). So a pong written
/// either is the first echoed pong still owed, or answers one of the pings owed
/// before it, which answers every older ping too. Once more pongs are owed than the
/// ring holds, the oldest are forgotten and a pong that matches nothing is accepted.
pub(crate) struct Pongs {
    ring: [([u8; MAX_CONTROL_PAYLOAD], u8, Owed); 64],
    start: usize,
    len: usize,
    forgot: bool,
}

impl Pongs {
    fn new() -> Pongs {
        Pongs {
            ring: [([0; MAX_CONTROL_PAYLOAD], 0, Owed::Answer); 64],
            start: 0,
            len: 0,
            forgot: false,
        }
    }

    fn push(&mut self, payload: &[u8], why: Owed) {
        if self.len == self.ring.len() {
            self.drop_at(0);
            self.forgot = true;
        }
        let slot = &mut self.ring[(self.start + self.len) % self.ring.len()];
        slot.0[..payload.len()].copy_from_slice(payload);
        slot.1 = payload.len() as u8;
        slot.2 = why;
        self.len += 1;
    }

    fn get(&self, i: usize) -> (&[u8], Owed) {
        let (p, n, why) = &self.ring[(self.start + i) % self.ring.len()];
        (&p[..usize::from(*n)], *why)
    }

    /// Removes entry `i`, keeping the order of the others.
    fn drop_at(&mut self, i: usize) {
        let n = self.ring.len();
        for j in (0..i).rev() {
            self.ring[(self.start + j + 1) % n] = self.ring[(self.start + j) % n];
        }
        self.start = (self.start + 1) % n;
        self.len -= 1;
        // `forgot` stays set even when the ring empties: with forgotten entries, a
        // pong may have been matched to a later entry with the same payload, whose
        // own pong is still to come. It is reset once all output has been drained.
    }

    /// Accounts for a pong written with `payload`; false if nothing owed matches.
    fn written(&mut self, payload: &[u8]) -> bool {
        for i in 0..self.len {
            let (owed, why) = self.get(i);
            if owed == payload {
                match why {
                    Owed::Echo => self.drop_at(i),
                    // The pings owed before it are answered by it (all are
                    // answers: an echoed pong owed earlier would have been written).
                    Owed::Answer => (0..=i).for_each(|_| self.drop_at(0)),
                }
                return true;
            }
            if why == Owed::Echo {
                // Nothing owed after an echoed pong is written before it.
                break;
            }
        }
        // Part of what is owed may be forgotten: then anything goes.
        self.forgot
    }

    fn clear(&mut self) {
        self.len = 0;
        self.forgot = false;
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}
