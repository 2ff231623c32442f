//! The state machine of one open WebSocket connection, for either role.
//!
//! Bytes from the transport go in with [`Connection::receive`] (or, without a copy,
//! [`Connection::read_buf`] + [`Connection::commit`]); events come out of
//! [`Connection::poll_event`]. Sends queue encoded frames that the caller drains with
//! [`Connection::pending_output`] + [`Connection::consume_output`]. Time comes in
//! through [`Connection::handle_timeout`]. Nothing here blocks, reads a clock, or
//! touches a socket.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::close::{CloseCode, MAX_REASON_LEN, parse_close_payload};
use crate::config::{Config, Delivery};
use crate::error::{Error, ProtocolError, SendError};
use crate::event::{CloseFrame, Event, Fragment, MessageKind};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Parsed};
use crate::mask::{apply_mask, copy_masked};
use crate::output::Output;
use crate::random::RandomSource;
use crate::time::Instant;
use crate::utf8::Utf8Validator;

/// Which end of the connection this engine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Opened the connection; masks every frame it sends.
    Client,
    /// Accepted the connection; requires masked frames from the client.
    Server,
}

/// Where the connection is in its life (RFC 6455 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Data flows both ways.
    Open,
    /// We sent a close frame (it may still be in the output queue) and wait for the
    /// peer's. Data the peer sent before seeing our close is still delivered.
    CloseSent,
    /// The peer sent a close frame; our answer is queued but not yet written.
    CloseReceived,
    /// The closing handshake is over (or the connection failed) and our output is
    /// written. See [`Connection::should_close_transport`].
    Closed,
}

/// Payload lengths at or above this, handed over by value, are queued without a copy.
const OWNED_THRESHOLD: usize = 4 << 10;

/// Smallest receive buffer used, whatever the configuration says: room for any
/// control frame with its header.
const MIN_READ_BUFFER: usize = 256;

/// The frame whose payload is being received.
#[derive(Clone, Copy, Debug)]
struct RxFrame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload length.
    len: usize,
    /// Payload bytes processed so far.
    done: usize,
    /// The payload stays in the receive buffer until complete and is delivered from
    /// there; `Input::pos` points at its first byte meanwhile.
    in_place: bool,
    /// Part of the payload was validated as UTF-8 before the frame was complete.
    validated: bool,
}

/// A data message being received.
#[derive(Clone, Copy, Debug)]
struct RxMessage {
    kind: MessageKind,
    /// Payload bytes announced so far (for the message size limit).
    len: u64,
    /// A piece of it was delivered ([`Delivery::Streaming`]).
    started: bool,
}

/// Received bytes and the buffer messages are assembled in.
#[derive(Debug, Default)]
struct Input {
    /// Storage; `buf[pos..end]` holds received, unprocessed bytes.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Fragmented or oversized messages are assembled here.
    msg: Vec<u8>,
}

impl Input {
    #[inline]
    fn slice(&self, src: Src, start: usize, end: usize) -> &[u8] {
        match src {
            Src::Read => &self.buf[start..end],
            Src::Msg => &self.msg[start..end],
        }
    }
}

/// What [`Connection::poll_event`] found, as positions into the buffers, so that the
/// borrow of the buffers starts only once the state machine is done mutating.
#[derive(Clone, Copy, Debug)]
enum Ready {
    Text {
        src: Src,
        start: usize,
        end: usize,
    },
    Binary {
        src: Src,
        start: usize,
        end: usize,
    },
    Fragment {
        kind: MessageKind,
        start: usize,
        end: usize,
        first: bool,
        fin: bool,
    },
    Ping {
        start: usize,
        end: usize,
    },
    Pong {
        start: usize,
        end: usize,
    },
    Close {
        code: CloseCode,
        start: usize,
        end: usize,
    },
}

/// Which buffer a delivered payload lives in.
#[derive(Clone, Copy, Debug)]
enum Src {
    Read,
    Msg,
}

/// A timer that may be waiting for the clock before it can be armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    Off,
    /// Armed before the first [`Connection::handle_timeout`]: starts at the next one.
    Pending(Duration),
    At(Instant),
}

impl Timer {
    fn arm(now: Option<Instant>, after: Duration) -> Timer {
        match now {
            Some(now) => Timer::At(now + after),
            None => Timer::Pending(after),
        }
    }

    fn deadline(self) -> Option<Instant> {
        match self {
            Timer::Off => None,
            Timer::Pending(_) => Some(Instant::ZERO),
            Timer::At(t) => Some(t),
        }
    }

    fn resolve(&mut self, now: Instant) {
        if let Timer::Pending(d) = *self {
            *self = Timer::At(now + d);
        }
    }

    fn expired(self, now: Instant) -> bool {
        matches!(self, Timer::At(t) if now >= t)
    }
}

/// Everything but the receive buffers, so an event can borrow the buffers while the
/// state machine still records a failure.
struct Core {
    role: Role,
    config: Config,
    rng: Option<Box<dyn RandomSource>>,

    rx_frame: Option<RxFrame>,
    rx_message: Option<RxMessage>,
    rx_utf8: Utf8Validator,
    /// No more input is processed (close received, or the connection failed).
    rx_done: bool,

    out: Output,
    tx_message: Option<MessageKind>,
    tx_utf8: Utf8Validator,
    /// Latest unanswered ping payload (answered once, when output is next taken).
    pending_pong: Option<([u8; MAX_CONTROL_PAYLOAD], u8)>,

    close_sent: bool,
    close_received: bool,
    /// The connection ended abnormally: protocol error, timeout or EOF.
    failed: bool,
    /// Nothing written now would reach the peer (dead peer, close timeout, EOF): the
    /// transport may be closed with output still queued.
    transport_dead: bool,
    /// The transport reached end of input.
    eof: bool,
    /// The client's wait for the server to close the transport is over.
    close_wait_over: bool,
    peer_close: Option<(CloseCode, [u8; MAX_REASON_LEN], u8)>,
    pending_error: Option<Error>,

    now: Option<Instant>,
    last_rx: Option<Instant>,
    pong_timer: Timer,
    close_timer: Timer,
    ping_counter: u64,
}

/// One WebSocket connection's protocol state, in either role.
///
/// A client and a server engine, wired back to back in memory:
///
/// ```
/// use hybi::{Config, Connection, Event};
///
/// let mut client = Connection::client(Config::default(), |buf: &mut [u8]| buf.fill(7));
/// let mut server = Connection::server(Config::default());
///
/// client.send_text("hello").unwrap();
/// server.receive(client.pending_output());
/// let written = client.buffered_output();
/// client.consume_output(written);
///
/// match server.poll_event().unwrap() {
///     Some(Event::Text(text)) => assert_eq!(text, "hello"),
///     other => panic!("{other:?}"),
/// }
/// ```
pub struct Connection {
    input: Input,
    core: Core,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.core.role)
            .field("state", &self.state())
            .field("buffered_input", &(self.input.end - self.input.pos))
            .field("buffered_output", &self.core.out.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A server-side connection (frames from the client must be masked).
    pub fn server(config: Config) -> Connection {
        Connection::new(Role::Server, config, None)
    }

    /// A client-side connection; `rng` provides the mask key of every frame sent.
    pub fn client(config: Config, rng: impl RandomSource + 'static) -> Connection {
        Connection::new(Role::Client, config, Some(Box::new(rng)))
    }

    /// A connection in `role`. A client needs `rng` for mask keys: without one (a
    /// client built from a handshake that lost it, say) every key is zero, which is
    /// valid framing but not the unpredictability RFC 6455 §10.3 asks for.
    pub fn new(role: Role, config: Config, rng: Option<Box<dyn RandomSource>>) -> Connection {
        Connection {
            input: Input::default(),
            core: Core {
                role,
                config,
                rng,
                rx_frame: None,
                rx_message: None,
                rx_utf8: Utf8Validator::new(),
                rx_done: false,
                out: Output::default(),
                tx_message: None,
                tx_utf8: Utf8Validator::new(),
                pending_pong: None,
                close_sent: false,
                close_received: false,
                failed: false,
                transport_dead: false,
                eof: false,
                close_wait_over: false,
                peer_close: None,
                pending_error: None,
                now: None,
                last_rx: None,
                pong_timer: Timer::Off,
                close_timer: Timer::Off,
                ping_counter: 0,
            },
        }
    }

    /// This connection's role.
    pub fn role(&self) -> Role {
        self.core.role
    }

    /// The configuration the connection runs with.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    // ----------------------------------------------------------------- input

    fn read_capacity(&self) -> usize {
        self.core.config.read_buffer_size.max(MIN_READ_BUFFER)
    }

    /// Makes room at the end of the receive buffer: resets it when empty, moves a
    /// partial frame to the front when the free tail is small.
    fn prepare_input(&mut self) {
        let cap = self.read_capacity();
        let input = &mut self.input;
        if input.pos == input.end {
            input.pos = 0;
            input.end = 0;
            if input.buf.len() > cap {
                input.buf.truncate(cap);
                input.buf.shrink_to_fit();
            }
        } else if input.pos > 0 && input.buf.len() - input.end < input.buf.len() / 2 {
            input.buf.copy_within(input.pos..input.end, 0);
            input.end -= input.pos;
            input.pos = 0;
        }
        if input.buf.len() < cap {
            input.buf.resize(cap, 0);
        }
    }

    /// Free space at the end of the receive buffer, for the caller to read the
    /// transport into directly; then call [`commit`](Self::commit) with the number of
    /// bytes read.
    ///
    /// The buffer is allocated on first use with
    /// [`Config::read_buffer_size`] bytes. The slice is empty only if the caller
    /// committed bytes without draining events: call [`poll_event`](Self::poll_event)
    /// until it returns `Ok(None)` first.
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.prepare_input();
        &mut self.input.buf[self.input.end..]
    }

    /// Adds `n` bytes, just written into [`read_buf`](Self::read_buf), to the input.
    ///
    /// # Panics
    /// If `n` is larger than the slice `read_buf` returned.
    pub fn commit(&mut self, n: usize) {
        assert!(
            n <= self.input.buf.len() - self.input.end,
            "commit({n}) beyond the read buffer"
        );
        self.input.end += n;
        if n > 0 {
            self.core.note_rx();
        }
    }

    /// Adds received bytes to the input (a copy; [`read_buf`](Self::read_buf) avoids it).
    ///
    /// Every byte is kept: if `data` does not fit the receive buffer, the buffer grows
    /// to hold it. Drain [`poll_event`](Self::poll_event) between calls to keep memory
    /// at the configured buffer size.
    pub fn receive(&mut self, data: &[u8]) {
        if data.is_empty() || self.core.rx_done {
            return;
        }
        self.prepare_input();
        let input = &mut self.input;
        let free = input.buf.len() - input.end;
        if data.len() <= free {
            input.buf[input.end..input.end + data.len()].copy_from_slice(data);
        } else {
            input.buf.truncate(input.end);
            input.buf.extend_from_slice(data);
        }
        input.end += data.len();
        self.core.note_rx();
    }

    /// Tells the engine the transport reached end of input (the peer closed TCP).
    ///
    /// Before the closing handshake finished, this is an abnormal closure:
    /// [`poll_event`](Self::poll_event) reports [`Error::UnexpectedEof`] once the bytes
    /// already received have been processed.
    pub fn receive_eof(&mut self) {
        self.core.eof = true;
        self.core.close_wait_over = true;
    }

    /// Bytes received and not yet processed.
    pub fn buffered_input(&self) -> usize {
        self.input.end - self.input.pos
    }

    /// The next event from the bytes received so far.
    ///
    /// Returns `Ok(None)` when more input is needed. An `Err` is returned once, when the
    /// connection fails or times out (see [`Error`]); the matching close frame, if any,
    /// is already queued. Call it until `Ok(None)` after every
    /// [`receive`](Self::receive) or [`commit`](Self::commit).
    pub fn poll_event(&mut self) -> Result<Option<Event<'_>>, Error> {
        if let Some(e) = self.core.pending_error.take() {
            return Err(e);
        }
        match self.step()? {
            Some(ready) => self.materialize(ready),
            None => {
                let core = &mut self.core;
                if core.eof && !core.close_received && !core.failed {
                    core.failed = true;
                    core.transport_dead = true;
                    core.rx_done = true;
                    return Err(Error::UnexpectedEof);
                }
                Ok(None)
            }
        }
    }

    /// Turns positions found by [`step`](Self::step) into an event borrowing the buffers.
    fn materialize(&mut self, ready: Ready) -> Result<Option<Event<'_>>, Error> {
        let Connection { input, core } = self;
        let slice = |src: Src, start: usize, end: usize| input.slice(src, start, end);
        let event = match ready {
            Ready::Text { src, start, end } => match core::str::from_utf8(slice(src, start, end)) {
                Ok(text) => Event::Text(text),
                Err(_) => return Err(core.fail(ProtocolError::InvalidUtf8)),
            },
            Ready::Binary { src, start, end } => Event::Binary(slice(src, start, end)),
            Ready::Fragment {
                kind,
                start,
                end,
                first,
                fin,
            } => Event::Fragment(Fragment {
                kind,
                data: &input.buf[start..end],
                first,
                fin,
            }),
            Ready::Ping { start, end } => Event::Ping(&input.buf[start..end]),
            Ready::Pong { start, end } => Event::Pong(&input.buf[start..end]),
            Ready::Close { code, start, end } => {
                // Validated in `step`; an invalid reason cannot reach here.
                let reason = core::str::from_utf8(&input.buf[start..end]).unwrap_or("");
                Event::Close(CloseFrame { code, reason })
            }
        };
        Ok(Some(event))
    }

    /// Runs the receive state machine until an event is ready or input runs out.
    fn step(&mut self) -> Result<Option<Ready>, Error> {
        loop {
            if self.core.rx_done {
                self.input.pos = self.input.end;
                return Ok(None);
            }
            let Some(mut frame) = self.core.rx_frame else {
                let avail = &self.input.buf[self.input.pos..self.input.end];
                let (header, header_len) = match FrameHeader::parse(avail) {
                    Ok(Parsed::Complete(h, n)) => (h, n),
                    Ok(Parsed::Incomplete(_)) => return Ok(None),
                    Err(e) => return Err(self.core.fail(e.into())),
                };
                let frame = self.core.start_frame(&header, self.read_capacity())?;
                self.input.pos += header_len;
                if header.opcode != OpCode::Continuation
                    && !header.opcode.is_control()
                    && !frame.in_place
                {
                    let keep = self.read_capacity();
                    Connection::reset_message_buffer(&mut self.input.msg, keep);
                }
                self.core.rx_frame = Some(frame);
                continue;
            };

            let avail = self.input.end - self.input.pos;
            if frame.opcode.is_control() {
                if avail < frame.len {
                    return Ok(None);
                }
                let start = self.input.pos;
                let end = start + frame.len;
                if let Some(key) = frame.mask {
                    apply_mask(key, 0, &mut self.input.buf[start..end]);
                }
                self.input.pos = end;
                self.core.rx_frame = None;
                return self
                    .core
                    .control_frame(frame.opcode, &self.input.buf[start..end], start);
            }

            let kind = match self.core.rx_message {
                Some(m) => m.kind,
                None => match frame.opcode {
                    OpCode::Text => MessageKind::Text,
                    _ => MessageKind::Binary,
                },
            };

            if frame.in_place {
                // Whole message in one frame that fits the buffer: unmask in place as
                // bytes arrive, deliver from the buffer once complete.
                let have = avail.min(frame.len);
                let start = self.input.pos;
                if have > frame.done {
                    let new = &mut self.input.buf[start + frame.done..start + have];
                    if let Some(key) = frame.mask {
                        apply_mask(key, frame.done, new);
                    }
                    if kind == MessageKind::Text && (have < frame.len || frame.validated) {
                        // Partial arrival: validate now so bad text fails fast.
                        if self.core.rx_utf8.feed(new).is_err() {
                            return Err(self.core.fail(ProtocolError::InvalidUtf8));
                        }
                        frame.validated = true;
                    }
                    frame.done = have;
                }
                if frame.done < frame.len {
                    self.core.rx_frame = Some(frame);
                    return Ok(None);
                }
                if frame.validated && self.core.rx_utf8.finish().is_err() {
                    return Err(self.core.fail(ProtocolError::InvalidUtf8));
                }
                self.core.rx_frame = None;
                self.core.rx_message = None;
                let end = start + frame.len;
                self.input.pos = end;
                return Ok(Some(match kind {
                    MessageKind::Text => Ready::Text {
                        src: Src::Read,
                        start,
                        end,
                    },
                    MessageKind::Binary => Ready::Binary {
                        src: Src::Read,
                        start,
                        end,
                    },
                }));
            }

            // The payload is consumed from the buffer as it arrives.
            let take = avail.min(frame.len - frame.done);
            let start = self.input.pos;
            let end = start + take;
            let chunk = &mut self.input.buf[start..end];
            if let Some(key) = frame.mask {
                apply_mask(key, frame.done, chunk);
            }
            if kind == MessageKind::Text && self.core.rx_utf8.feed(chunk).is_err() {
                return Err(self.core.fail(ProtocolError::InvalidUtf8));
            }
            self.input.pos = end;
            frame.done += take;
            let frame_done = frame.done == frame.len;
            let message_done = frame_done && frame.fin;
            if message_done && kind == MessageKind::Text && self.core.rx_utf8.finish().is_err() {
                return Err(self.core.fail(ProtocolError::InvalidUtf8));
            }
            self.core.rx_frame = if frame_done { None } else { Some(frame) };

            match self.core.config.delivery {
                Delivery::Streaming => {
                    if take == 0 && !frame_done {
                        return Ok(None);
                    }
                    let Some(message) = self.core.rx_message.as_mut() else {
                        // start_frame records the message of every data frame.
                        return Ok(None);
                    };
                    let first = !message.started;
                    message.started = true;
                    if message_done {
                        self.core.rx_message = None;
                    }
                    if take == 0 && !first && !message_done {
                        continue; // an empty frame in the middle of a message
                    }
                    return Ok(Some(Ready::Fragment {
                        kind,
                        start,
                        end,
                        first,
                        fin: message_done,
                    }));
                }
                Delivery::Message => {
                    let max = self.core.config.max_message_size;
                    let Input { buf, msg, .. } = &mut self.input;
                    append_bounded(msg, &buf[start..end], max);
                    if message_done {
                        self.core.rx_message = None;
                        let len = self.input.msg.len();
                        return Ok(Some(match kind {
                            MessageKind::Text => Ready::Text {
                                src: Src::Msg,
                                start: 0,
                                end: len,
                            },
                            MessageKind::Binary => Ready::Binary {
                                src: Src::Msg,
                                start: 0,
                                end: len,
                            },
                        }));
                    }
                    if !frame_done {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Clears the assembly buffer for a new message, releasing a large one.
    fn reset_message_buffer(msg: &mut Vec<u8>, keep: usize) {
        msg.clear();
        if msg.capacity() > keep.max(OWNED_THRESHOLD) * 4 {
            *msg = Vec::new();
        }
    }

    // ---------------------------------------------------------------- output

    /// The next contiguous bytes to write to the transport (empty when there is
    /// nothing to write). After writing some, call [`consume_output`](Self::consume_output).
    pub fn pending_output(&mut self) -> &[u8] {
        self.core.flush_pong();
        self.core.out.first_chunk()
    }

    /// Fills `slices` with the bytes to write, in order, for a vectored write (a
    /// frame header and a payload queued by value are separate slices). Returns how
    /// many slices were filled.
    pub fn pending_output_vectored<'a>(&'a mut self, slices: &mut [&'a [u8]]) -> usize {
        self.core.flush_pong();
        self.core.out.chunks(slices)
    }

    /// Marks `n` bytes of the pending output as written.
    ///
    /// # Panics
    /// If `n` exceeds [`buffered_output`](Self::buffered_output).
    pub fn consume_output(&mut self, n: usize) {
        self.core.out.advance(n);
    }

    /// True if there are bytes to write (including a pong not yet encoded).
    pub fn has_output(&self) -> bool {
        !self.core.out.is_empty() || self.core.pending_pong.is_some()
    }

    /// Bytes queued and not yet written: what a caller applies backpressure on.
    pub fn buffered_output(&self) -> usize {
        self.core.out.len()
            + self.core.pending_pong.map_or(0, |(_, n)| {
                usize::from(n) + if self.core.role == Role::Client { 6 } else { 2 }
            })
    }

    /// Position in the output stream just after everything queued so far. Once
    /// [`output_written`](Self::output_written) reaches the value read right after a
    /// send, that message has been handed to the transport: a send-completion signal.
    pub fn output_queued(&self) -> u64 {
        self.core.out.queued_total()
    }

    /// Total bytes consumed with [`consume_output`](Self::consume_output).
    pub fn output_written(&self) -> u64 {
        self.core.out.written_total()
    }

    /// Queues a whole text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.core.check_data_send()?;
        self.core.write_frame(OpCode::Text, true, text.as_bytes());
        Ok(())
    }

    /// Queues a whole binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.core.check_data_send()?;
        self.core.write_frame(OpCode::Binary, true, data);
        Ok(())
    }

    /// Queues a whole text message, taking ownership: a large payload is queued as its
    /// own output slice instead of being copied.
    pub fn send_text_owned(&mut self, text: String) -> Result<(), SendError> {
        self.core.check_data_send()?;
        self.core.write_owned(OpCode::Text, text.into_bytes());
        Ok(())
    }

    /// Queues a whole binary message, taking ownership: a large payload is queued as its
    /// own output slice instead of being copied (client frames are masked in place).
    pub fn send_binary_owned(&mut self, data: Vec<u8>) -> Result<(), SendError> {
        self.core.check_data_send()?;
        self.core.write_owned(OpCode::Binary, data);
        Ok(())
    }

    /// Queues one fragment of a message: the first fragment starts a message of `kind`,
    /// later ones continue it (with the same `kind`), and `fin` ends it. Control frames
    /// and received data keep flowing meanwhile; other data messages wait.
    ///
    /// Text fragments are checked as UTF-8 across fragment boundaries (a fragment may
    /// end inside a character); an invalid one is refused and nothing is sent.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        let core = &mut self.core;
        if core.close_sent || core.failed {
            return Err(SendError::Closed);
        }
        let opcode = match core.tx_message {
            None => kind.opcode(),
            Some(k) if k == kind => OpCode::Continuation,
            Some(_) => return Err(SendError::KindMismatch),
        };
        if kind == MessageKind::Text {
            let mut v = if core.tx_message.is_none() {
                Utf8Validator::new()
            } else {
                core.tx_utf8
            };
            v.feed(data).map_err(|_| SendError::InvalidUtf8)?;
            if fin {
                v.finish().map_err(|_| SendError::InvalidUtf8)?;
            }
            core.tx_utf8 = v;
        }
        core.write_frame(opcode, fin, data);
        core.tx_message = if fin { None } else { Some(kind) };
        Ok(())
    }

    /// True while a message sent with [`send_fragment`](Self::send_fragment) is unfinished.
    pub fn is_sending_fragments(&self) -> bool {
        self.core.tx_message.is_some()
    }

    /// Queues a ping (payload at most 125 bytes).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.core.check_control_send(payload)?;
        self.core.write_frame(OpCode::Ping, true, payload);
        Ok(())
    }

    /// Queues a pong (payload at most 125 bytes): an answer when
    /// [`Config::auto_pong`] is off, or an unsolicited heartbeat.
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.core.check_control_send(payload)?;
        self.core.write_frame(OpCode::Pong, true, payload);
        Ok(())
    }

    /// Starts the closing handshake: queues a close frame with `code` and `reason`
    /// (at most 123 bytes of UTF-8). No data may be sent afterwards; received data keeps
    /// being delivered until the peer's close frame, which must arrive within
    /// [`Config::close_timeout`].
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let core = &mut self.core;
        if core.close_sent || core.failed {
            return Err(SendError::Closed);
        }
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(SendError::CloseReasonTooLong(reason.len()));
        }
        core.send_close(Some(code), reason);
        Ok(())
    }

    // ----------------------------------------------------------------- state

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        let c = &self.core;
        let flushed = c.out.is_empty() || c.transport_dead;
        if (c.failed || (c.close_sent && c.close_received)) && flushed {
            State::Closed
        } else if c.close_received {
            State::CloseReceived
        } else if c.close_sent {
            State::CloseSent
        } else {
            State::Open
        }
    }

    /// True until a close frame is sent or received, or the connection fails.
    pub fn is_open(&self) -> bool {
        self.state() == State::Open
    }

    /// True when the caller should now close the transport: the output is written and
    /// either the connection failed or timed out, or the closing handshake is complete
    /// and we are the server (which closes TCP first, RFC 6455 §7.1.1) or a client whose
    /// wait for the server to do so is over ([`Config::close_timeout`], or end of input).
    pub fn should_close_transport(&self) -> bool {
        let c = &self.core;
        if !c.out.is_empty() && !c.transport_dead {
            return false;
        }
        c.failed
            || (c.close_sent && c.close_received && (c.role == Role::Server || c.close_wait_over))
    }

    /// The peer's close code and reason, once its close frame has arrived.
    pub fn peer_close(&self) -> Option<(CloseCode, &str)> {
        self.core.peer_close.as_ref().map(|(code, reason, len)| {
            (
                *code,
                core::str::from_utf8(&reason[..usize::from(*len)]).unwrap_or(""),
            )
        })
    }

    // ---------------------------------------------------------------- timers

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever.
    /// [`Instant::ZERO`] means "now": a timer was started before the engine was given
    /// the time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let c = &self.core;
        let mut next = min_opt(c.pong_timer.deadline(), c.close_timer.deadline());
        if c.close_sent || c.failed {
            return next;
        }
        let last_rx = c.last_rx.or(c.now);
        if let Some(interval) = c.config.keepalive_interval {
            if c.pong_timer == Timer::Off {
                next = min_opt(next, Some(last_rx.map_or(Instant::ZERO, |t| t + interval)));
            }
        }
        if let Some(idle) = c.config.idle_timeout {
            next = min_opt(next, Some(last_rx.map_or(Instant::ZERO, |t| t + idle)));
        }
        next
    }

    /// Gives the engine the current time and fires what is due: keepalive pings, the
    /// pong deadline, the idle timeout and the close timeout. Errors surface from the
    /// next [`poll_event`](Self::poll_event).
    ///
    /// Call it when [`poll_timeout`](Self::poll_timeout) passes, and whenever you have
    /// a fresh time (before waiting on the transport, say): timers started by a send are
    /// measured from the last time given.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
    }
}

/// Appends to the assembly buffer, growing its capacity by doubling but never beyond
/// the message limit (once doubling passes half the limit it goes straight to the
/// limit, so a message near the limit is not copied twice). The buffer never holds
/// more than the limit; a reallocation briefly holds the old half-size buffer too.
#[inline]
fn append_bounded(msg: &mut Vec<u8>, data: &[u8], max: usize) {
    let want = msg.len() + data.len();
    if want > msg.capacity() {
        let doubled = msg.capacity().saturating_mul(2);
        let grown = if doubled > max / 2 { max } else { doubled };
        msg.reserve_exact(grown.max(want) - msg.len());
    }
    msg.extend_from_slice(data);
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Core {
    fn note_rx(&mut self) {
        self.last_rx = self.now;
        self.pong_timer = Timer::Off;
    }

    /// Fails the connection: queues a close frame with the error's code (unless one was
    /// sent already) and stops reading.
    fn fail(&mut self, e: ProtocolError) -> Error {
        if !self.close_sent {
            self.send_close(Some(e.close_code()), e.reason());
        }
        self.failed = true;
        self.rx_done = true;
        self.rx_frame = None;
        self.rx_message = None;
        self.pending_pong = None;
        Error::Protocol(e)
    }

    /// Validates a new frame header against RFC 6455 §5 and the limits, and sets up
    /// the receive state for its payload.
    fn start_frame(&mut self, h: &FrameHeader, read_capacity: usize) -> Result<RxFrame, Error> {
        if h.has_rsv() {
            return Err(self.fail(ProtocolError::ReservedBits));
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(self.fail(ProtocolError::UnmaskedFrame)),
            (Role::Client, true) => return Err(self.fail(ProtocolError::MaskedFrame)),
            _ => {}
        }
        let len64 = h.payload_len;
        if h.opcode.is_control() {
            if !h.fin {
                return Err(self.fail(ProtocolError::FragmentedControlFrame));
            }
            if len64 > MAX_CONTROL_PAYLOAD as u64 {
                return Err(self.fail(ProtocolError::ControlFrameTooLong(len64)));
            }
            return Ok(RxFrame {
                opcode: h.opcode,
                fin: true,
                mask: h.mask,
                len: len64 as usize,
                done: 0,
                in_place: true,
                validated: false,
            });
        }
        let max_frame = self.config.max_frame_size;
        if len64 > max_frame as u64 {
            return Err(self.fail(ProtocolError::FrameTooLarge {
                len: len64,
                max: max_frame,
            }));
        }
        let len = len64 as usize;
        let max_message = self.config.max_message_size as u64;
        let mut in_place = false;
        match (h.opcode, self.rx_message.as_mut()) {
            (OpCode::Continuation, None) => {
                return Err(self.fail(ProtocolError::UnexpectedContinuation));
            }
            (OpCode::Continuation, Some(m)) => {
                m.len += len64;
                if m.len > max_message {
                    let len = m.len;
                    return Err(self.fail(ProtocolError::MessageTooLarge {
                        len,
                        max: self.config.max_message_size,
                    }));
                }
            }
            (_, Some(_)) => return Err(self.fail(ProtocolError::ExpectedContinuation)),
            (opcode, None) => {
                if len64 > max_message {
                    return Err(self.fail(ProtocolError::MessageTooLarge {
                        len: len64,
                        max: self.config.max_message_size,
                    }));
                }
                let kind = if opcode == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                self.rx_message = Some(RxMessage {
                    kind,
                    len: len64,
                    started: false,
                });
                self.rx_utf8.reset();
                in_place = self.config.delivery == Delivery::Message
                    && h.fin
                    && len + MAX_HEADER_LEN <= read_capacity;
            }
        }
        Ok(RxFrame {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            len,
            done: 0,
            in_place,
            validated: false,
        })
    }

    /// Handles a complete, unmasked control frame whose payload starts at `start` in the
    /// receive buffer.
    fn control_frame(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        start: usize,
    ) -> Result<Option<Ready>, Error> {
        let end = start + payload.len();
        match opcode {
            OpCode::Ping => {
                if self.config.auto_pong && !self.close_sent {
                    let mut copy = [0u8; MAX_CONTROL_PAYLOAD];
                    copy[..payload.len()].copy_from_slice(payload);
                    self.pending_pong = Some((copy, payload.len() as u8));
                }
                Ok(Some(Ready::Ping { start, end }))
            }
            OpCode::Pong => Ok(Some(Ready::Pong { start, end })),
            _ => {
                let (code, reason) = match parse_close_payload(payload) {
                    Ok(parsed) => parsed,
                    Err(e) => return Err(self.fail(ProtocolError::InvalidClosePayload(e))),
                };
                let mut stored = [0u8; MAX_REASON_LEN];
                stored[..reason.len()].copy_from_slice(reason.as_bytes());
                self.peer_close = Some((code, stored, reason.len() as u8));
                self.close_received = true;
                self.rx_done = true;
                self.rx_message = None;
                if !self.close_sent {
                    // Echo the code (RFC 6455 §5.5.1); an empty close gets an empty one.
                    let echo = (code != CloseCode::NO_STATUS).then_some(code);
                    self.send_close(echo, "");
                }
                self.pending_pong = None;
                if self.role == Role::Client {
                    // Wait for the server to close the transport, but not forever.
                    self.close_timer = Timer::arm(self.now, self.config.close_timeout);
                } else {
                    self.close_timer = Timer::Off;
                }
                let reason_start = if payload.len() >= 2 { start + 2 } else { end };
                Ok(Some(Ready::Close {
                    code,
                    start: reason_start,
                    end,
                }))
            }
        }
    }

    fn check_data_send(&self) -> Result<(), SendError> {
        if self.close_sent || self.failed {
            Err(SendError::Closed)
        } else if self.tx_message.is_some() {
            Err(SendError::MessageInProgress)
        } else {
            Ok(())
        }
    }

    fn check_control_send(&self, payload: &[u8]) -> Result<(), SendError> {
        if self.close_sent || self.failed {
            Err(SendError::Closed)
        } else if payload.len() > MAX_CONTROL_PAYLOAD {
            Err(SendError::ControlPayloadTooLong(payload.len()))
        } else {
            Ok(())
        }
    }

    fn mask_key(&mut self) -> Option<[u8; 4]> {
        match self.role {
            Role::Server => None,
            Role::Client => Some(self.rng.as_mut().map_or([0; 4], |rng| rng.mask_key())),
        }
    }

    /// Encodes one frame into the output buffer (masking it in the client role).
    fn write_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        let mask = self.mask_key();
        let header = FrameHeader {
            fin,
            mask,
            ..FrameHeader::new(opcode, payload.len() as u64)
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let header_len = header.encode(&mut head);
        let buf = self.out.buf_mut();
        buf.reserve(header_len + payload.len());
        buf.extend_from_slice(&head[..header_len]);
        match mask {
            None => buf.extend_from_slice(payload),
            Some(key) => {
                let at = buf.len();
                buf.resize(at + payload.len(), 0);
                copy_masked(key, 0, payload, &mut buf[at..]);
            }
        }
        self.out.commit_appended(header_len + payload.len());
    }

    /// Queues a whole data message whose payload the caller gave up.
    fn write_owned(&mut self, opcode: OpCode, mut payload: Vec<u8>) {
        if payload.len() < OWNED_THRESHOLD {
            self.write_frame(opcode, true, &payload);
            return;
        }
        let mask = self.mask_key();
        if let Some(key) = mask {
            apply_mask(key, 0, &mut payload);
        }
        let header = FrameHeader {
            mask,
            ..FrameHeader::new(opcode, payload.len() as u64)
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let header_len = header.encode(&mut head);
        self.out.buf_mut().extend_from_slice(&head[..header_len]);
        self.out.commit_appended(header_len);
        self.out.push_owned(payload);
    }

    /// Encodes the pending pong, if any, behind what is queued.
    fn flush_pong(&mut self) {
        if let Some((payload, len)) = self.pending_pong.take() {
            self.write_frame(OpCode::Pong, true, &payload[..usize::from(len)]);
        }
    }

    /// Queues our close frame and starts waiting for the peer's.
    fn send_close(&mut self, code: Option<CloseCode>, reason: &str) {
        self.flush_pong();
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let len = match code {
            None => 0,
            Some(code) => {
                payload[..2].copy_from_slice(&code.0.to_be_bytes());
                let reason = &reason.as_bytes()[..reason.len().min(MAX_REASON_LEN)];
                payload[2..2 + reason.len()].copy_from_slice(reason);
                2 + reason.len()
            }
        };
        self.write_frame(OpCode::Close, true, &payload[..len]);
        self.close_sent = true;
        self.pong_timer = Timer::Off;
        if !self.close_received {
            self.close_timer = Timer::arm(self.now, self.config.close_timeout);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        if self.last_rx.is_none() {
            self.last_rx = Some(now);
        }
        self.pong_timer.resolve(now);
        self.close_timer.resolve(now);

        if self.close_timer.expired(now) {
            self.close_timer = Timer::Off;
            if self.close_received {
                self.close_wait_over = true;
            } else if !self.failed {
                self.failed = true;
                self.transport_dead = true;
                self.rx_done = true;
                self.pending_error = Some(Error::CloseTimeout);
            }
        }
        if self.failed || self.close_sent {
            return;
        }
        if self.pong_timer.expired(now) {
            self.pong_timer = Timer::Off;
            self.failed = true;
            self.transport_dead = true;
            self.rx_done = true;
            self.out.discard();
            self.pending_pong = None;
            self.pending_error = Some(Error::PongTimeout);
            return;
        }
        let last_rx = self.last_rx.unwrap_or(now);
        if let Some(idle) = self.config.idle_timeout {
            if now >= last_rx + idle {
                self.send_close(Some(CloseCode::GOING_AWAY), "idle timeout");
                self.pending_error = Some(Error::IdleTimeout);
                return;
            }
        }
        if let Some(interval) = self.config.keepalive_interval {
            if self.pong_timer == Timer::Off && now >= last_rx + interval {
                self.ping_counter += 1;
                let payload = self.ping_counter.to_be_bytes();
                self.write_frame(OpCode::Ping, true, &payload);
                self.pong_timer = Timer::At(now + self.config.pong_timeout);
            }
        }
    }
}
