//! The `server_connection` and `client_connection` targets: arbitrary bytes fed to a
//! [`Connection`] in chunks the input chooses, with sends, closes and clock ticks
//! interleaved, driven through [`Connection::next`] as a driver would, and every
//! invariant checked as it goes.
//!
//! Input layout: `[flags][n][n control bytes][wire bytes...]` (missing bytes read as 0).
//!
//! `flags`:
//! - bit 0: [`Delivery::Streaming`] (else whole messages);
//! - bit 1: zero-copy input (`read_buf` + `commit`) instead of `receive`;
//! - bit 2: keepalive pings every 1 s, pong timeout 2 s;
//! - bit 3: idle timeout 5 s;
//! - bit 4: `auto_pong` off;
//! - bits 5-6: how each [`Next::Write`] is written: 0 its `bytes()` whole, 1 in 3-byte
//!   pieces, 2 vectored (`chunks`), 3 vectored in 3-byte pieces, with a transport that
//!   stalls on action 1 (below);
//! - bit 7: end of input (`receive_eof`) after the last byte, given before the events
//!   of the last step are taken.
//!
//! Each control byte `c` is one step: an action chosen by `c >> 5`, then a chunk of
//! `CHUNKS[c & 31]` wire bytes fed in, then `next` until it returns `Wait` or `Close`,
//! handling each event and writing each `Write`. Actions: 0 none; 1 none, or with output
//! mode 3 a stall: the chunk's events are taken but the `Write` after them is left
//! pending (the transport takes nothing), a second chunk of the same size is read
//! meanwhile, and one piece of the output is written through `transmit` (as a writer
//! thread would, without taking events) before the step drains as usual; 2 hand the
//! message, receive and output buffers back (`take_message_buffer`, `take_read_buffer`,
//! `take_output_buffer`), fill them with garbage as a pool might, and give them again
//! (`give_*_buffer`); 3 toggle echo mode (every message, fragment and pong payload is
//! sent back through the event's `Outbox` while the event still borrows the input); 4
//! `send_text` (or a text fragment); 5 `send_ping`; 6 `close`; 7 advance the clock by
//! `(c & 31) * 250 ms` and `handle_timeout`. When the control bytes run out, the rest of
//! the wire is fed in chunks of 256 bytes. After the input, 40 s of clock in 10 s ticks.
//!
//! The harness itself allocates nothing, so the counting allocator sees the engine only.
//!
//! Invariants:
//! - output: a sequence of whole frames valid for the role (client frames masked,
//!   server frames unmasked, no RSV bits, control frames at most 125 bytes with FIN,
//!   continuation only inside a fragmented message), nothing after our close frame;
//!   each `Transmit`: not empty, `bytes()` its first chunk, its chunks adding up to
//!   `len()`, `buffered_output()` what is left after `consume`, the same length again
//!   when nothing new was queued; `transmit()` hands out exactly `buffered_output()`
//!   bytes; each pong written is either an echoed pong, in the order echoed, or with
//!   `auto_pong` the answer to an unanswered ping (answering it and any older ones),
//!   and every ping received before our close is answered once the output is
//!   written; our close frame carries the code of what caused it (our `close`, the
//!   idle timeout, the echo of the peer's code, or else a protocol error's code, which
//!   `Closed::error` must then report); keepalive pings go out as the timer model
//!   says (below), with consecutive counters;
//! - events: nothing after `Event::Close`, after the close frame of a protocol error,
//!   or after `Close` (the idle timeout starts a closing handshake and lets the peer's
//!   data and close frame still come); all events before any `Write` (none after a
//!   `Write` with no new input); whole messages in message mode, fragments in
//!   streaming mode, with `first`/`fin` consistent, one kind per message and text
//!   pieces concatenating to valid UTF-8; sizes within the limits;
//! - sends: refused with `SendError::Closed` exactly once a close was sent or queued or
//!   the connection ended; `Outbox::can_send` says the same;
//! - input: `read_buf()` is never empty once `next` returned `Write` or `Wait`;
//! - timers, against a model of the keepalive, pong and idle timers: after each
//!   `handle_timeout` the state is what the model says (a pong timeout ends the
//!   connection, the idle timeout starts closing, else it stays open); every
//!   `Wait(deadline)` of an open connection has the model's deadline exactly
//!   (`Instant::ZERO` before the clock was given, `None` without timers); a closing
//!   connection always waits with a deadline, after now and within the close timeout;
//!   nothing waits after the end of input, after a protocol error or after a server's
//!   closing handshake;
//! - the end: `Close` only with the output handed out (with end of input, what was
//!   queued is still written before it) and the state `Closed`; then every call
//!   returns the same `Close` again; `Closed::peer` is the close frame delivered;
//!   `Closed::error` is what the harness knows happened: none only after a closing
//!   handshake, `UnexpectedEof` only after end of input, the idle or pong timeout when
//!   the model fired it, `CloseTimeout` only for our own close, a protocol error with
//!   the code of the close frame it wrote; `code()` and `is_clean()` agree with it;
//!   after 40 s of clock every connection that began closing has ended, and an
//!   untouched one is still open and waiting;
//! - memory: live bytes stay below `MAX_MESSAGE * 3/2 + READ_BUF + largest chunk + 4 KiB`,
//!   plus, once echo mode was on, what the echoes queue (at most a message and a chunk,
//!   in a buffer that may have doubled: `2 * (MAX_MESSAGE + 2 KiB)`), plus, once the
//!   transport stalled, twice the largest output it left queued.

use core::time::Duration;

use hybi::close::CloseCode;
use hybi::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Parsed};
use hybi::{
    Closed, Config, Connection, Delivery, Error, Event, Instant, MessageKind, Next, Role,
    SendError, State, Transmit,
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

/// The timers the harness configures (milliseconds).
const KEEPALIVE_MS: u64 = 1_000;
/// See [`KEEPALIVE_MS`].
const PONG_TIMEOUT_MS: u64 = 2_000;
/// See [`KEEPALIVE_MS`].
const IDLE_MS: u64 = 5_000;
/// See [`KEEPALIVE_MS`].
const CLOSE_TIMEOUT_MS: u64 = 3_000;

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
    let stalled = if h.stalled { 2 * h.max_queued } else { 0 };
    let bound = MAX_MESSAGE * 3 / 2 + READ_BUF + max_chunk + SLACK + echo + stalled;
    assert!(peak <= bound, "peak {peak} bytes > bound {bound}");
}

/// What our close frame must carry, decided by what caused it first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CloseExpect {
    /// No cause known: only a protocol error (whose code `Closed::error` must report)
    /// may write one.
    None,
    /// An empty close frame (echo of a peer's close without a code).
    Empty,
    /// A close frame with this code.
    Code(u16),
}

/// A close reason, copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reason {
    bytes: [u8; 123],
    len: usize,
}

impl Reason {
    fn of(reason: &str) -> Reason {
        assert!(
            reason.len() <= 123,
            "close reason of {} bytes",
            reason.len()
        );
        let mut bytes = [0u8; 123];
        bytes[..reason.len()].copy_from_slice(reason.as_bytes());
        Reason {
            bytes,
            len: reason.len(),
        }
    }
}

/// [`Closed`], copied (and what its methods say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ClosedCopy {
    peer: Option<(CloseCode, Reason)>,
    error: Option<Error>,
    code: CloseCode,
    clean: bool,
}

impl ClosedCopy {
    fn of(c: &Closed<'_>) -> ClosedCopy {
        ClosedCopy {
            peer: c.peer.map(|f| (f.code, Reason::of(f.reason))),
            error: c.error,
            code: c.code(),
            clean: c.is_clean(),
        }
    }
}

/// The engine's keepalive, pong and idle timers as the harness expects them to run
/// while the connection is open (milliseconds).
#[derive(Clone, Copy, Debug, Default)]
struct TimerModel {
    /// `handle_timeout` was called at least once.
    ticked: bool,
    /// When input last arrived (`None` before the clock was first given).
    last_rx: Option<u64>,
    /// A keepalive ping is out: the pong deadline.
    pong_deadline: Option<u64>,
    /// Keepalive pings sent.
    pings: u64,
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
    /// Keepalive pings written (8-byte payloads: our `send_ping`s are multiples of 5).
    keepalive_pings: u64,
}

struct Harness {
    conn: Connection,
    streaming: bool,
    zero_copy: bool,
    auto_pong: bool,
    small_drain: bool,
    vectored: bool,
    /// Action 1 stalls the transport (output mode 3).
    stalls: bool,
    eof_at_end: bool,
    keepalive: bool,
    idle: bool,
    now_ms: u64,
    timers: TimerModel,
    out: OutCheck,

    /// Nothing more may be delivered: `Event::Close`, a protocol error's close frame,
    /// or `Close`.
    ended: bool,
    /// The model fired the idle timeout (the closing handshake proceeds after it).
    idle_timeout: bool,
    /// The model fired the pong timeout: `Close` must follow.
    pong_timeout: bool,
    /// The connection ended without a close frame of ours to come (pong timeout, end of
    /// input, `Close`): sends are refused from then on.
    dead: bool,
    /// A close frame was written that no known cause explains: a protocol error, with
    /// this code.
    unexplained: Option<u16>,
    protocol_error: bool,
    /// A close frame is sent or queued (by us, by an error, or as an echo).
    close_queued: bool,
    /// Our `close` was accepted.
    closed_by_us: bool,
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
    /// The peer's close frame, as delivered.
    peer_close: Option<(CloseCode, Reason)>,
    /// End of input was given.
    eof_given: bool,
    /// End of input was given and `next` has not gone past the events yet; the output
    /// queued when it was given.
    eof_pending: Option<usize>,
    /// How the connection ended, once `next` said `Close`.
    closed: Option<ClosedCopy>,
    /// A stall is under way: `Write`s are left pending.
    stalling: bool,
    /// The transport stalled at some point.
    stalled: bool,
    /// The most output a `Transmit` held.
    max_queued: usize,
}

/// How a drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// A `Write` left pending (stall).
    Write,
    Wait,
    Close,
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
            .with_close_timeout(Duration::from_millis(CLOSE_TIMEOUT_MS));
        if flags & 4 != 0 {
            config = config
                .with_keepalive(Some(Duration::from_millis(KEEPALIVE_MS)))
                .with_pong_timeout(Duration::from_millis(PONG_TIMEOUT_MS));
        }
        if flags & 8 != 0 {
            config = config.with_idle_timeout(Some(Duration::from_millis(IDLE_MS)));
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
            stalls: flags & 96 == 96,
            eof_at_end: flags & 128 != 0,
            keepalive: flags & 4 != 0,
            idle: flags & 8 != 0,
            now_ms: 0,
            timers: TimerModel::default(),
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
                keepalive_pings: 0,
            },
            ended: false,
            idle_timeout: false,
            pong_timeout: false,
            dead: false,
            unexplained: None,
            protocol_error: false,
            close_queued: false,
            closed_by_us: false,
            close_expect: CloseExpect::None,
            pongs: Pongs::new(),
            rx_message: None,
            carry: [0; 4],
            carry_len: 0,
            data_sent: 0,
            tx_fragmenting: None,
            echo: false,
            echoed: false,
            peer_close: None,
            eof_given: false,
            eof_pending: None,
            closed: None,
            stalling: false,
            stalled: false,
            max_queued: 0,
        }
    }

    fn run(&mut self, ctl: &[u8], wire: &[u8], max_chunk: &mut usize) {
        let mut pos = 0;
        let mut i = 0;
        loop {
            let (c, size) = if let Some(&c) = ctl.get(i) {
                (c, CHUNKS[usize::from(c & 31)])
            } else if pos < wire.len() {
                (0, DEFAULT_CHUNK)
            } else {
                break;
            };
            i += 1;
            *max_chunk = (*max_chunk).max(size);
            self.action(c);
            let end = (pos + size).min(wire.len());
            self.feed(&wire[pos..end]);
            pos = end;
            if self.stalls && c >> 5 == 1 {
                self.stall(&wire[pos..(pos + size).min(wire.len())]);
                pos = (pos + size).min(wire.len());
            }
            if i >= ctl.len() && pos >= wire.len() && self.eof_at_end {
                self.give_eof();
            }
            self.drain(true);
        }
        if self.eof_at_end && !self.eof_given {
            // No step at all.
            self.give_eof();
            self.drain(true);
        }
        // Let every timer run out.
        for _ in 0..4 {
            self.tick(10_000);
            self.drain(true);
        }
        self.finish();
    }

    /// The transport takes nothing: the events of what was fed are taken and the
    /// `Write` after them left pending; `more` is read meanwhile; then a writer that
    /// does not take events writes one piece through `transmit`.
    fn stall(&mut self, more: &[u8]) {
        self.stalled = true;
        self.stalling = true;
        self.drain(false);
        self.feed(more);
        self.stalling = false;
        let queued = self.conn.buffered_output();
        let written = match self.conn.transmit() {
            Some(t) => {
                assert_eq!(t.len(), queued, "transmit() vs buffered_output()");
                let (len, n) = write_transmit(
                    t,
                    &mut self.out,
                    &mut OutState {
                        close_expect: self.close_expect,
                        pongs: &mut self.pongs,
                        unexplained: &mut self.unexplained,
                    },
                    self.small_drain,
                    self.vectored,
                );
                self.max_queued = self.max_queued.max(len);
                Some(len - n)
            }
            None => {
                assert_eq!(queued, 0, "transmit() is None with output queued");
                None
            }
        };
        if let Some(left) = written {
            assert_eq!(
                self.conn.buffered_output(),
                left,
                "output left after transmit"
            );
            self.after_write();
        }
    }

    fn give_eof(&mut self) {
        self.eof_given = true;
        self.eof_pending = Some(self.conn.buffered_output());
        self.conn.receive_eof();
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
                        self.closed_by_us = true;
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
                let queued = self.conn.buffered_output();
                if let Some(mut buf) = self.conn.take_output_buffer() {
                    assert_eq!(queued, 0, "output buffer taken with output");
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

    /// Advances the clock, and the timer model with it: the pong deadline passed ends
    /// the connection, else 5 s without input start the closing handshake (1001), else
    /// a keepalive ping goes out 1 s after the last input.
    fn tick(&mut self, ms: u64) {
        self.now_ms += ms;
        let now = self.now_ms;
        self.conn.handle_timeout(Instant::from_millis(now));
        let open = !self.close_queued && !self.dead;
        let t = &mut self.timers;
        t.ticked = true;
        let last_rx = *t.last_rx.get_or_insert(now);
        if !open {
            return;
        }
        if t.pong_deadline.is_some_and(|d| now >= d) {
            t.pong_deadline = None;
            self.pong_timeout = true;
            self.dead = true;
            assert_eq!(self.conn.state(), State::Closed, "pong timeout at {now} ms");
        } else if self.idle && now >= last_rx + IDLE_MS {
            t.pong_deadline = None;
            self.idle_timeout = true;
            self.queue_close(CloseExpect::Code(1001));
            assert_eq!(
                self.conn.state(),
                State::CloseSent,
                "idle timeout at {now} ms"
            );
        } else {
            if self.keepalive && t.pong_deadline.is_none() && now >= last_rx + KEEPALIVE_MS {
                t.pings += 1;
                t.pong_deadline = Some(now + PONG_TIMEOUT_MS);
            }
            assert_eq!(
                self.conn.state(),
                State::Open,
                "no timer was due at {now} ms"
            );
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // The engine notes the time of the input (the last time it was given).
        let t = &mut self.timers;
        t.last_rx = t.ticked.then_some(self.now_ms);
        t.pong_deadline = None;
        if self.zero_copy {
            let mut rest = bytes;
            while !rest.is_empty() {
                let buf = self.conn.read_buf();
                if buf.is_empty() {
                    // After `Close` reading is moot; before it, `next` returned `Write`
                    // or `Wait` (every feed follows one), so there must be room.
                    assert!(
                        self.closed.is_some(),
                        "read_buf() empty after next() returned Write or Wait"
                    );
                    return;
                }
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.conn.commit(n);
                rest = &rest[n..];
                if !rest.is_empty() {
                    self.drain(!self.stalling);
                }
            }
        } else {
            self.conn.receive(bytes);
        }
    }

    /// Calls `next` until it waits or closes, handling every event and writing every
    /// `Write` (or, if not `write`, stopping at the first `Write`, left pending).
    fn drain(&mut self, write: bool) -> Stop {
        // What the last `Write` left queued: until new input, nothing changes it.
        let mut left: Option<usize> = None;
        loop {
            let got = match self.conn.next() {
                Next::Event(event, mut outbox) => {
                    let echo = if self.echo {
                        // Send back from the borrowed payload, before anything else.
                        match event {
                            Event::Text(t) => Some((outbox.send_text(t), true, None)),
                            Event::Binary(b) => Some((outbox.send_binary(b), true, None)),
                            Event::Fragment(f) => Some((
                                outbox.send_fragment(f.kind, f.data, f.fin),
                                true,
                                Some((f.kind, f.fin)),
                            )),
                            Event::Pong(p) => Some((outbox.send_pong(p), false, None)),
                            _ => None,
                        }
                    } else {
                        None
                    };
                    Got::Event(copy_event(event), echo, outbox.can_send())
                }
                Next::Write(t) => {
                    let len = t.len();
                    assert!(len > 0 && !t.is_empty(), "empty Write");
                    if let Some(l) = left {
                        assert_eq!(len, l, "Write changed with nothing new queued");
                    }
                    self.max_queued = self.max_queued.max(len);
                    if write {
                        let (len, n) = write_transmit(
                            t,
                            &mut self.out,
                            &mut OutState {
                                close_expect: self.close_expect,
                                pongs: &mut self.pongs,
                                unexplained: &mut self.unexplained,
                            },
                            self.small_drain,
                            self.vectored,
                        );
                        Got::Written(len - n)
                    } else {
                        // The transport takes nothing now: the bytes stay queued.
                        Got::Pending
                    }
                }
                Next::Wait(deadline) => Got::Wait(deadline),
                Next::Close(c) => Got::Close(ClosedCopy::of(&c)),
            };
            if !matches!(got, Got::Event(..)) {
                self.past_events(&got);
            }
            match got {
                Got::Event(event, echo, can_send) => {
                    assert!(self.closed.is_none(), "event after Close: {event:?}");
                    assert!(!self.ended, "event after the end: {event:?}");
                    assert!(left.is_none(), "event after a Write, without new input");
                    if let Some((r, data, fragment)) = echo {
                        self.check_echo(r, data, fragment, can_send, &event);
                    }
                    self.on_event(event);
                }
                Got::Written(rest) => {
                    assert!(self.closed.is_none(), "Write after Close");
                    assert_eq!(
                        self.conn.buffered_output(),
                        rest,
                        "buffered_output() after consume"
                    );
                    left = Some(rest);
                    self.after_write();
                }
                Got::Pending => {
                    assert!(self.closed.is_none(), "Write after Close");
                    return Stop::Write;
                }
                Got::Wait(deadline) => {
                    self.check_wait(deadline);
                    self.drained();
                    return Stop::Wait;
                }
                Got::Close(c) => {
                    self.on_close(c);
                    self.drained();
                    return Stop::Close;
                }
            }
        }
    }

    /// `next` went past the events of the input so far.
    fn past_events(&mut self, got: &Got) {
        if let Some(queued) = self.eof_pending.take() {
            if self.closed.is_none() {
                // The end of input before the peer's close failed the connection, but
                // what was queued is still handed out before `Close`.
                if self.peer_close.is_none() {
                    self.dead = true;
                }
                if queued > 0 {
                    assert!(
                        matches!(got, Got::Written(_) | Got::Pending),
                        "output queued at the end of input was not handed out: {got:?}"
                    );
                }
            }
        }
    }

    /// Output was written: learns of a protocol error from its close frame.
    fn after_write(&mut self) {
        if let Some(code) = self.unexplained {
            if !self.protocol_error {
                self.protocol_error = true;
                assert!(!self.close_queued, "second close frame");
                self.queue_close(CloseExpect::Code(code));
                self.ended = true;
                self.rx_message = None;
            }
        }
    }

    /// The output is written (`Wait` or `Close`): every pong owed is too.
    fn drained(&mut self) {
        // With auto_pong, every ping received before our close is answered at once;
        // echoed pongs are written at once.
        assert!(
            self.pongs.is_empty(),
            "ping left unanswered or echoed pong not written"
        );
        // Everything owed was written: nothing forgotten can still come.
        self.pongs.clear();
    }

    fn check_wait(&mut self, deadline: Option<Instant>) {
        assert!(self.closed.is_none(), "Wait after Close");
        assert!(!self.eof_given, "Wait after the end of input");
        assert!(!self.dead, "Wait after the connection died (pong timeout)");
        assert!(!self.protocol_error, "Wait after a protocol error");
        assert!(
            !(self.out.role == Role::Server && self.out.closed && self.peer_close.is_some()),
            "a server waits after the closing handshake"
        );
        let now = self.now_ms;
        let open = !self.close_queued;
        if !self.timers.ticked {
            let armed = !open || self.keepalive || self.idle;
            let want = armed.then_some(Instant::ZERO);
            assert_eq!(deadline, want, "Wait before the clock was given");
        } else if open {
            let last = self.timers.last_rx.unwrap_or(now);
            let mut want: Option<u64> = None;
            if self.keepalive {
                let t = self.timers.pong_deadline.unwrap_or(last + KEEPALIVE_MS);
                want = Some(want.map_or(t, |w| w.min(t)));
            }
            if self.idle {
                let t = last + IDLE_MS;
                want = Some(want.map_or(t, |w| w.min(t)));
            }
            assert_eq!(
                deadline,
                want.map(Instant::from_millis),
                "Wait deadline at {now} ms (input at {last} ms) vs the timer model"
            );
        } else {
            let t = deadline.unwrap_or_else(|| panic!("closing waits without a deadline")); // ok: oracle
            assert!(
                t > Instant::from_millis(now) && t <= Instant::from_millis(now + CLOSE_TIMEOUT_MS),
                "closing waits until {t:?} at {now} ms"
            );
        }
        assert!(self.conn.transmit().is_none(), "Wait with output queued");
    }

    fn on_close(&mut self, c: ClosedCopy) {
        if let Some(prev) = self.closed {
            assert_eq!(c, prev, "Close changed");
            assert!(self.conn.transmit().is_none(), "output after Close");
            return;
        }
        assert_eq!(self.conn.state(), State::Closed, "Close, state");
        assert_eq!(
            self.conn.buffered_output(),
            0,
            "Close with output never handed out"
        );
        assert!(self.conn.transmit().is_none(), "output after Close");
        assert_eq!(c.peer, self.peer_close, "Closed::peer vs the Event::Close");
        match c.error {
            None => assert!(
                c.peer.is_some() && self.out.closed && !self.dead,
                "clean Close without a closing handshake"
            ),
            Some(Error::Protocol(p)) => {
                assert!(c.peer.is_none(), "protocol error after the peer's close");
                match self.unexplained {
                    Some(code) => assert_eq!(
                        p.close_code().0,
                        code,
                        "Closed::error {p:?} vs the close frame written"
                    ),
                    None => assert!(
                        self.closed_by_us && !self.idle_timeout,
                        "protocol error {p:?} without its close frame"
                    ),
                }
            }
            Some(Error::IdleTimeout) => assert!(self.idle_timeout, "unexpected idle timeout"),
            Some(Error::PongTimeout) => assert!(self.pong_timeout, "unexpected pong timeout"),
            Some(Error::CloseTimeout) => assert!(
                self.closed_by_us && c.peer.is_none() && !self.idle_timeout,
                "close timeout without a close of ours"
            ),
            Some(Error::UnexpectedEof) => assert!(
                self.eof_given && c.peer.is_none(),
                "UnexpectedEof without the end of input"
            ),
        }
        if self.idle_timeout {
            assert_eq!(c.error, Some(Error::IdleTimeout), "after the idle timeout");
        }
        if self.pong_timeout {
            assert_eq!(c.error, Some(Error::PongTimeout), "after the pong timeout");
        }
        if self.unexplained.is_some() {
            assert!(
                matches!(c.error, Some(Error::Protocol(_))),
                "a close frame without a cause, then {:?}",
                c.error
            );
        }
        let code = match c.error {
            Some(Error::Protocol(p)) => p.close_code(),
            Some(Error::IdleTimeout) => CloseCode::GOING_AWAY,
            Some(_) => CloseCode::ABNORMAL,
            None => c.peer.map_or(CloseCode::ABNORMAL, |(code, _)| code),
        };
        assert_eq!(c.code, code, "Closed::code()");
        assert_eq!(
            c.clean,
            c.error.is_none() && c.peer.is_some(),
            "Closed::is_clean()"
        );
        self.closed = Some(c);
        self.dead = true;
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
            Ev::Close(code, reason) => {
                assert!(
                    code == CloseCode::NO_STATUS || code.is_valid_on_wire(),
                    "close code {code} reported"
                );
                self.queue_close(if code == CloseCode::NO_STATUS {
                    CloseExpect::Empty
                } else {
                    CloseExpect::Code(code.0)
                });
                self.peer_close = Some((code, reason));
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
        assert_eq!(
            self.out.keepalive_pings, self.timers.pings,
            "keepalive pings written vs. the timer model"
        );
        if self.close_queued {
            assert!(self.out.closed, "a close was queued but never written");
        }
        if self.out.closed {
            assert!(!self.conn.is_open());
        }
        // 40 s of clock after the input: every closing handshake has finished or timed
        // out, and `next` says `Close` (again); an untouched connection is still open
        // and waits.
        let stop = self.drain(true);
        if self.close_queued || self.dead {
            assert_eq!(stop, Stop::Close, "closing never finished");
            assert_eq!(self.conn.state(), State::Closed);
        } else {
            assert_eq!(stop, Stop::Wait);
            assert_eq!(self.conn.state(), State::Open);
        }
    }
}

/// What sending an event back gave: the result, whether it was data, and for a
/// fragment its kind and `fin`.
type EchoResult = (Result<(), SendError>, bool, Option<(MessageKind, bool)>);

/// What one call of `next` gave, copied out of the connection's borrow.
// Large on purpose: the harness must not allocate (the allocator is measured).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Got {
    /// An event, the outcome of echoing it (result, data?, fragment kind and fin), and
    /// `Outbox::can_send`.
    Event(Ev, Option<EchoResult>, bool),
    /// Output written; this much is left.
    Written(usize),
    /// A `Write` left pending.
    Pending,
    Wait(Option<Instant>),
    Close(ClosedCopy),
}

/// Writes what `t` holds as a transport would: its first run whole or in 3-byte
/// pieces, or vectored (then each slice whole or 3 bytes of the first), checking
/// `bytes`, `chunks` and `len` against each other. Returns the bytes queued and written.
fn write_transmit(
    t: Transmit<'_>,
    out: &mut OutCheck,
    st: &mut OutState<'_>,
    small: bool,
    vectored: bool,
) -> (usize, usize) {
    let len = t.len();
    assert!(len > 0 && !t.is_empty(), "empty Transmit");
    let n = {
        let mut slices: [&[u8]; 4] = [&[]; 4];
        let count = t.chunks(&mut slices);
        assert!((1..=4).contains(&count), "chunks() filled {count}");
        assert!(
            slices[..count].iter().all(|s| !s.is_empty()),
            "empty slice in vectored output"
        );
        let total: usize = slices[..count].iter().map(|s| s.len()).sum();
        assert!(
            total <= len && (count == 4 || total == len),
            "chunks vs len"
        );
        let first = t.bytes();
        assert!(
            first.as_ptr() == slices[0].as_ptr() && first.len() == slices[0].len(),
            "bytes() is not the first chunk"
        );
        if vectored {
            let mut written = 0;
            for s in &slices[..count] {
                let take = if small { s.len().min(3) } else { s.len() };
                out.feed(&s[..take], st);
                written += take;
                if take < s.len() {
                    break;
                }
            }
            written
        } else {
            let take = if small {
                first.len().min(3)
            } else {
                first.len()
            };
            out.feed(&first[..take], st);
            take
        }
    };
    t.consume(n);
    (len, n)
}

/// What the output check needs from the harness for one feed.
struct OutState<'a> {
    close_expect: CloseExpect,
    pongs: &'a mut Pongs,
    /// Set to the code of a close frame written without a known cause.
    unexplained: &'a mut Option<u16>,
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
            OpCode::Ping if payload.len() == 8 => {
                // A keepalive ping: its payload counts them.
                self.keepalive_pings += 1;
                assert_eq!(
                    payload,
                    &self.keepalive_pings.to_be_bytes(),
                    "keepalive ping payload"
                );
            }
            OpCode::Pong => {
                assert!(
                    st.pongs.written(payload),
                    "pong written that echoes neither an unanswered ping nor a received pong"
                );
            }
            OpCode::Close => {
                match st.close_expect {
                    CloseExpect::None => {
                        // A protocol error the harness cannot see coming (it does not
                        // parse the input): `Close` must report it with this code.
                        assert!(payload.len() >= 2, "close frame without a code or a cause");
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        assert!(
                            matches!(code, 1002 | 1007 | 1009),
                            "close frame {code} without a cause"
                        );
                        *st.unexplained = Some(code);
                    }
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
    Close(CloseCode, Reason),
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
        Event::Close(c) => Ev::Close(c.code, Reason::of(c.reason)),
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
