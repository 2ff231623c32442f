//! The receive state machine: frame headers, then each frame's payload, one function
//! per way a payload is handled (a control frame; a whole message kept in the receive
//! buffer; a message assembled in the message buffer; pieces streamed as they come).
//! It records *positions* of what is ready ([`Ready`]); the event that borrows the
//! buffers is built afterwards, in `receive.rs`.

use alloc::vec::Vec;

use super::timers::Timer;
use super::{Connection, Core, Input, PONG_COALESCE_AT};
use crate::close::{CloseCode, MAX_REASON_LEN, parse_close_payload};
use crate::config::Delivery;
use crate::connection::Role;
use crate::deflate::codec::TAIL;
use crate::error::{Error, ProtocolError};
use crate::event::MessageKind;
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Parsed};
use crate::mask::{apply_mask, copy_masked};

/// The frame whose payload is being received.
#[derive(Clone, Copy, Debug)]
pub(super) struct RxFrame {
    pub(super) opcode: OpCode,
    pub(super) fin: bool,
    pub(super) mask: Option<[u8; 4]>,
    /// Payload length.
    pub(super) len: usize,
    /// Payload bytes processed so far.
    pub(super) done: usize,
    /// The payload stays in the receive buffer until complete and is delivered from
    /// there; `Input::pos` points at its first byte meanwhile.
    pub(super) in_place: bool,
    /// Part of the payload was validated as UTF-8 before the frame was complete.
    pub(super) validated: bool,
    /// Payload bytes unmasked so far (a compressed frame's bytes are unmasked as they
    /// arrive but may be inflated later).
    pub(super) unmasked: usize,
}

/// A data message being received.
#[derive(Clone, Copy, Debug)]
pub(super) struct RxMessage {
    pub(super) kind: MessageKind,
    /// Payload bytes announced so far (for the message size limit).
    pub(super) len: u64,
    /// A piece of it was delivered ([`Delivery::Streaming`]).
    pub(super) started: bool,
    /// Compressed (permessage-deflate): its payload goes through the inflater.
    pub(super) compressed: bool,
    /// Bytes of the sync-flush tail fed to the inflater at the message's end.
    pub(super) tail: u8,
}

/// What [`Connection::poll_event`] found, as positions into the buffers, so that the
/// borrow of the buffers starts only once the state machine is done mutating.
#[derive(Clone, Copy, Debug)]
pub(super) enum Ready {
    Text {
        src: Src,
        start: usize,
        end: usize,
        /// Every byte already went through the incremental validator.
        validated: bool,
    },
    Binary {
        src: Src,
        start: usize,
        end: usize,
    },
    Fragment {
        src: Src,
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
pub(super) enum Src {
    Read,
    Msg,
}

/// A compressed message streamed ([`Delivery::Streaming`]) is inflated in pieces of
/// at most this much.
const STREAM_CHUNK: usize = 16 << 10;

/// A compressed message's buffer grows by at least this much while it inflates.
const MIN_INFLATE_ROOM: usize = 4 << 10;

/// The end of a compressed message: the inflater forgets it if the agreement says so.
fn deflate_done(core: &mut Core) {
    if let Some(d) = core.deflate.as_deref_mut() {
        d.message_inflated();
    }
}

/// What handling a frame's payload made of the input so far.
enum Progress {
    /// An event is ready.
    Ready(Ready),
    /// The frame needs more input.
    More,
    /// The frame is done without an event: go on with the next one.
    Next,
}

impl Connection {
    /// Runs the receive state machine until an event is ready or input runs out.
    pub(super) fn step(&mut self) -> Result<Option<Ready>, Error> {
        loop {
            if self.core.rx_done {
                self.input.pos = self.input.end;
                return Ok(None);
            }
            let frame = match self.core.rx_frame {
                Some(frame) => frame,
                None => match self.start_frame()? {
                    Some(frame) => frame,
                    None => return Ok(None),
                },
            };
            let progress = if frame.opcode.is_control() {
                self.control_payload(frame)?
            } else if self.core.rx_message.is_some_and(|m| m.compressed) {
                self.inflated_payload(frame)?
            } else if frame.in_place {
                self.in_place_payload(frame)?
            } else if self.core.config.delivery == Delivery::Message {
                self.assembled_payload(frame)?
            } else {
                self.streamed_payload(frame)?
            };
            match progress {
                Progress::Ready(ready) => return Ok(Some(ready)),
                Progress::More => return Ok(None),
                Progress::Next => {}
            }
        }
    }

    /// Parses the next frame header in the input and validates it
    /// ([`Core::open_frame`]); `None` until the whole header is there.
    #[inline]
    fn start_frame(&mut self) -> Result<Option<RxFrame>, Error> {
        let avail = &self.input.buf[self.input.pos..self.input.end];
        let (header, header_len) = match FrameHeader::parse(avail) {
            Ok(Parsed::Complete(h, n)) => (h, n),
            Ok(Parsed::Incomplete(_)) => return Ok(None),
            Err(e) => return Err(self.core.fail(e.into())),
        };
        let frame = self.core.open_frame(&header, self.read_capacity())?;
        self.input.pos += header_len;
        if header.opcode != OpCode::Continuation && !header.opcode.is_control() && !frame.in_place {
            let keep = self.message_buffer_keep();
            Connection::reset_message_buffer(&mut self.input, keep);
        }
        Ok(Some(frame))
    }

    /// The kind of the data message `frame` belongs to.
    #[inline]
    fn message_kind(&self, frame: &RxFrame) -> MessageKind {
        match self.core.rx_message {
            Some(m) => m.kind,
            None if frame.opcode == OpCode::Text => MessageKind::Text,
            None => MessageKind::Binary,
        }
    }

    /// A control frame waits until whole, is unmasked in place and delivered from the
    /// receive buffer.
    fn control_payload(&mut self, frame: RxFrame) -> Result<Progress, Error> {
        let start = self.input.pos;
        if self.input.end - start < frame.len {
            self.core.rx_frame = Some(frame);
            return Ok(Progress::More);
        }
        let end = start + frame.len;
        if let Some(key) = frame.mask {
            apply_mask(key, 0, &mut self.input.buf[start..end]);
        }
        self.input.pos = end;
        self.core.rx_frame = None;
        let ready = self
            .core
            .control_frame(frame.opcode, &self.input.buf[start..end], start)?;
        Ok(Progress::Ready(ready))
    }

    /// A whole message in one frame that fits the receive buffer (the common case):
    /// unmasked in place as bytes arrive and delivered from the buffer once complete,
    /// with no copy. Text that arrives in pieces is validated piece by piece, so bad
    /// text fails at the first bad byte; text that arrives at once is validated when
    /// its event is built.
    #[inline]
    fn in_place_payload(&mut self, mut frame: RxFrame) -> Result<Progress, Error> {
        let kind = self.message_kind(&frame);
        let start = self.input.pos;
        let have = (self.input.end - start).min(frame.len);
        if have > frame.done {
            let new = &mut self.input.buf[start + frame.done..start + have];
            if let Some(key) = frame.mask {
                apply_mask(key, frame.done, new);
            }
            if kind == MessageKind::Text && (have < frame.len || frame.validated) {
                if self.core.rx_utf8.feed(new).is_err() {
                    return Err(self.core.fail(ProtocolError::InvalidUtf8));
                }
                frame.validated = true;
            }
            frame.done = have;
        }
        if frame.done < frame.len {
            self.core.rx_frame = Some(frame);
            return Ok(Progress::More);
        }
        if frame.validated && self.core.rx_utf8.finish().is_err() {
            return Err(self.core.fail(ProtocolError::InvalidUtf8));
        }
        self.core.rx_frame = None;
        self.core.rx_message = None;
        let end = start + frame.len;
        self.input.pos = end;
        Ok(Progress::Ready(match kind {
            MessageKind::Text => Ready::Text {
                src: Src::Read,
                start,
                end,
                validated: frame.validated,
            },
            MessageKind::Binary => Ready::Binary {
                src: Src::Read,
                start,
                end,
            },
        }))
    }

    /// A fragmented message, or one too large for the receive buffer: assembled in the
    /// message buffer as it arrives, from bytes the transport read straight into it or
    /// bytes copied (and unmasked) from the receive buffer in one pass.
    fn assembled_payload(&mut self, mut frame: RxFrame) -> Result<Progress, Error> {
        let kind = self.message_kind(&frame);
        let from = self.input.msg_len;
        let take = if self.input.direct > 0 {
            let n = core::mem::take(&mut self.input.direct);
            if let Some(key) = frame.mask {
                apply_mask(key, frame.done, &mut self.input.msg[from..from + n]);
            }
            n
        } else {
            let take = (self.input.end - self.input.pos).min(frame.len - frame.done);
            let start = self.input.pos;
            let limit = growth_limit(&frame, from, self.core.config.max_message_size);
            let Input { buf, msg, .. } = &mut self.input;
            ensure_room(msg, from + take, limit);
            let (src, dst) = (&buf[start..start + take], &mut msg[from..from + take]);
            match frame.mask {
                Some(key) => copy_masked(key, frame.done, src, dst),
                None => dst.copy_from_slice(src),
            }
            self.input.pos = start + take;
            take
        };
        let piece = &self.input.msg[from..from + take];
        if kind == MessageKind::Text && self.core.rx_utf8.feed(piece).is_err() {
            return Err(self.core.fail(ProtocolError::InvalidUtf8));
        }
        self.input.msg_len = from + take;
        frame.done += take;
        let (frame_done, message_done) = self.piece_done(frame, kind)?;
        if message_done {
            let end = self.input.msg_len;
            return Ok(Progress::Ready(match kind {
                MessageKind::Text => Ready::Text {
                    src: Src::Msg,
                    start: 0,
                    end,
                    validated: true,
                },
                MessageKind::Binary => Ready::Binary {
                    src: Src::Msg,
                    start: 0,
                    end,
                },
            }));
        }
        Ok(if frame_done {
            Progress::Next
        } else {
            Progress::More
        })
    }

    /// Streaming delivery: each piece of payload is unmasked in place and delivered
    /// from the receive buffer as it arrives, so a message of any size passes through
    /// a fixed buffer.
    fn streamed_payload(&mut self, mut frame: RxFrame) -> Result<Progress, Error> {
        let kind = self.message_kind(&frame);
        let take = (self.input.end - self.input.pos).min(frame.len - frame.done);
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
        let (frame_done, message_done) = self.piece_done(frame, kind)?;
        if take == 0 && !frame_done {
            return Ok(Progress::More);
        }
        let Some(message) = self.core.rx_message.as_mut() else {
            // `open_frame` records the message of every data frame.
            return Ok(Progress::More);
        };
        let first = !message.started;
        message.started = true;
        if message_done {
            self.core.rx_message = None;
        }
        if take == 0 && !first && !message_done {
            return Ok(Progress::Next); // an empty frame in the middle of a message
        }
        Ok(Progress::Ready(Ready::Fragment {
            src: Src::Read,
            kind,
            start,
            end,
            first,
            fin: message_done,
        }))
    }

    /// A compressed message's payload (permessage-deflate): unmasked in the receive
    /// buffer, inflated into the message buffer (whole messages) or a fixed chunk of
    /// it (streaming), with the sync-flush tail fed at the message's end instead of
    /// being appended to it. The message size limit applies to the inflated bytes, as
    /// they are inflated; text is validated as it inflates.
    fn inflated_payload(&mut self, mut frame: RxFrame) -> Result<Progress, Error> {
        let kind = self.message_kind(&frame);
        let streaming = self.core.config.delivery == Delivery::Streaming;
        let max = self.core.config.max_message_size;
        let pos = self.input.pos;
        let take = (self.input.end - pos).min(frame.len - frame.done);
        if let Some(key) = frame.mask {
            if frame.unmasked < frame.done + take {
                let from = pos + (frame.unmasked - frame.done);
                apply_mask(key, frame.unmasked, &mut self.input.buf[from..pos + take]);
            }
        }
        frame.unmasked = frame.unmasked.max(frame.done + take);
        let payload_in = frame.done + take == frame.len;
        let Some(message) = self.core.rx_message else {
            return Ok(Progress::More); // `open_frame` records every data message
        };
        let Connection { input, core } = self;
        let Some(deflate) = core.deflate.as_deref_mut() else {
            return Err(core.fail(ProtocolError::ReservedBits));
        };
        let Some(inflater) = deflate.inflater() else {
            return Err(core.fail(ProtocolError::InvalidCompressedData));
        };
        let mut src = &input.buf[pos..pos + take];
        let mut tail = usize::from(message.tail);
        let out_start = if streaming { 0 } else { input.msg_len };
        let mut out_end = out_start;
        let mut failed = None;
        // Inflate until the input (and, at the message's end, the tail) is used up and
        // the inflater has nothing more to give; a streamed piece stops at a full chunk.
        let drained = loop {
            if out_end == input.msg.len() {
                if streaming && out_end > 0 {
                    break false;
                }
                let room = if streaming {
                    STREAM_CHUNK
                } else {
                    out_end + MIN_INFLATE_ROOM
                };
                ensure_room(
                    &mut input.msg,
                    room,
                    if streaming { STREAM_CHUNK } else { max + 1 },
                );
            }
            let feeding_tail = src.is_empty() && payload_in && frame.fin && tail < TAIL.len();
            let piece = if feeding_tail { &TAIL[tail..] } else { src };
            let room = input.msg.len() - out_end;
            let (used, wrote) = match inflater.inflate(piece, &mut input.msg[out_end..]) {
                Ok(r) => r,
                Err(_) => {
                    failed = Some(ProtocolError::InvalidCompressedData);
                    break true;
                }
            };
            let new = &input.msg[out_end..out_end + wrote];
            if kind == MessageKind::Text && core.rx_utf8.feed(new).is_err() {
                failed = Some(ProtocolError::InvalidUtf8);
                break true;
            }
            out_end += wrote;
            if feeding_tail {
                tail += used;
            } else {
                src = &src[used..];
            }
            let inflated = message.len + (out_end - out_start) as u64;
            if inflated > max as u64 {
                failed = Some(ProtocolError::MessageTooLarge { len: inflated, max });
                break true;
            }
            let fed = src.is_empty() && (!(payload_in && frame.fin) || tail == TAIL.len());
            if fed && wrote < room {
                break true; // everything fed, nothing more to come out
            }
            if used == 0 && wrote == 0 {
                break false; // no progress: wait for more input
            }
        };
        if let Some(e) = failed {
            return Err(core.fail(e));
        }
        if let Some(d) = core.deflate.as_deref_mut() {
            d.inflated(&input.msg[out_start..out_end]);
        }
        let consumed = take - src.len();
        frame.done += consumed;
        input.pos = pos + consumed;
        let wrote = out_end - out_start;
        if !streaming {
            input.msg_len = out_end;
        }
        let message_done = drained && payload_in && frame.fin && tail == TAIL.len();
        if message_done && kind == MessageKind::Text && core.rx_utf8.finish().is_err() {
            return Err(core.fail(ProtocolError::InvalidUtf8));
        }
        let frame_done = frame.done == frame.len && (!frame.fin || message_done);
        core.rx_frame = if frame_done { None } else { Some(frame) };
        let Some(m) = core.rx_message.as_mut() else {
            return Ok(Progress::More);
        };
        m.len += wrote as u64;
        m.tail = tail as u8;
        let first = !m.started;
        if message_done {
            core.rx_message = None;
            deflate_done(core);
            if !streaming {
                let end = input.msg_len;
                return Ok(Progress::Ready(match kind {
                    MessageKind::Text => Ready::Text {
                        src: Src::Msg,
                        start: 0,
                        end,
                        validated: true,
                    },
                    MessageKind::Binary => Ready::Binary {
                        src: Src::Msg,
                        start: 0,
                        end,
                    },
                }));
            }
        }
        if streaming && (wrote > 0 || message_done) {
            if let Some(m) = core.rx_message.as_mut() {
                m.started = true;
            }
            input.msg_len = wrote;
            return Ok(Progress::Ready(Ready::Fragment {
                src: Src::Msg,
                kind,
                start: 0,
                end: wrote,
                first,
                fin: message_done,
            }));
        }
        Ok(if frame_done {
            Progress::Next
        } else {
            Progress::More
        })
    }

    /// After a piece of a data frame: is the frame done, is the message? A finished
    /// text message must end on a whole character. Keeps the frame if it goes on and
    /// forgets the message if it ended.
    #[inline]
    fn piece_done(&mut self, frame: RxFrame, kind: MessageKind) -> Result<(bool, bool), Error> {
        let frame_done = frame.done == frame.len;
        let message_done = frame_done && frame.fin;
        if message_done && kind == MessageKind::Text && self.core.rx_utf8.finish().is_err() {
            return Err(self.core.fail(ProtocolError::InvalidUtf8));
        }
        self.core.rx_frame = if frame_done { None } else { Some(frame) };
        if message_done && self.core.config.delivery == Delivery::Message {
            self.core.rx_message = None;
        }
        Ok((frame_done, message_done))
    }

    /// Empties the assembly buffer for a new message, releasing it if it grew past
    /// what is worth keeping between messages.
    fn reset_message_buffer(input: &mut Input, keep: usize) {
        input.msg_len = 0;
        input.direct = 0;
        if input.msg.len() > keep {
            input.msg = Vec::new();
        }
    }
}

/// Makes `msg` (kept initialized to its length) at least `need` long. It grows by
/// doubling (so a message arriving in many pieces is copied O(1) times per byte), but
/// never beyond `limit` ([`growth_limit`]); once doubling comes within two thirds of
/// the limit it goes straight there, so a message near its limit is not copied into a
/// buffer just short of it first. Callers ask for `need` only up to what has arrived
/// (or, for a direct read, as much again as has arrived), so the buffer stays a small
/// multiple of the bytes received (at most 6x, 2x in the steady doubling); a
/// reallocation briefly holds the old buffer too.
#[inline]
pub(super) fn ensure_room(msg: &mut Vec<u8>, need: usize, limit: usize) {
    if need > msg.len() {
        let doubled = msg.len().saturating_mul(2);
        let grown = if doubled >= limit / 3 * 2 {
            limit
        } else {
            doubled
        };
        let target = grown.max(need);
        msg.reserve_exact(target - msg.len());
        msg.resize(target, 0);
    }
}

/// The most the message buffer may grow to while `frame`'s payload arrives at
/// `msg[from..]`: the end of the message if this frame ends it (its length is known
/// then), else the message size limit. Either way a declared length only caps the
/// growth; it never causes it.
#[inline]
pub(super) fn growth_limit(frame: &RxFrame, from: usize, max_message: usize) -> usize {
    if frame.fin {
        (from + (frame.len - frame.done)).min(max_message)
    } else {
        max_message
    }
}

impl Core {
    /// Validates a new frame header against RFC 6455 §5 and the limits, and sets up
    /// the receive state for its payload.
    fn open_frame(&mut self, h: &FrameHeader, read_capacity: usize) -> Result<RxFrame, Error> {
        // RSV1 marks a compressed message (permessage-deflate): only on the first frame
        // of a data message, and only if the extension was agreed (RFC 7692 §6.1).
        let compressed =
            h.rsv1 && self.deflate.is_some() && matches!(h.opcode, OpCode::Text | OpCode::Binary);
        if h.rsv2 || h.rsv3 || (h.rsv1 && !compressed) {
            return Err(self.fail(ProtocolError::ReservedBits));
        }
        if self.config.strict_masking {
            match (self.role, h.mask.is_some()) {
                (Role::Server, false) => return Err(self.fail(ProtocolError::UnmaskedFrame)),
                (Role::Client, true) => return Err(self.fail(ProtocolError::MaskedFrame)),
                _ => {}
            }
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
                unmasked: 0,
            });
        }
        // A compressed frame may be a little larger than what it inflates to (an
        // incompressible message grows a few percent): its limit is the larger of the
        // frame and the message limits, and what it inflates to is held to the message
        // limit as it inflates.
        let compressed_message = compressed
            || (h.opcode == OpCode::Continuation && self.rx_message.is_some_and(|m| m.compressed));
        let max_frame = if compressed_message {
            self.config.max_frame_size.max(self.config.max_message_size)
        } else {
            self.config.max_frame_size
        };
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
                // A compressed message's limit applies to what it inflates to.
                m.len += if m.compressed { 0 } else { len64 };
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
                if len64 > max_message && !compressed {
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
                    len: if compressed { 0 } else { len64 },
                    started: false,
                    compressed,
                    tail: 0,
                });
                self.rx_utf8.reset();
                in_place = self.config.delivery == Delivery::Message
                    && h.fin
                    && !compressed
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
            unmasked: 0,
        })
    }

    /// Handles a complete, unmasked control frame whose payload starts at `start` in the
    /// receive buffer.
    fn control_frame(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        start: usize,
    ) -> Result<Ready, Error> {
        let end = start + payload.len();
        match opcode {
            OpCode::Ping => {
                if self.config.auto_pong && !self.close_sent {
                    if self.out.len() < PONG_COALESCE_AT {
                        // Answer in order, behind what is already queued.
                        self.pending_pong = None;
                        self.write_frame(OpCode::Pong, true, payload);
                    } else {
                        // The peer is not reading: keep only the latest answer.
                        let mut copy = [0u8; MAX_CONTROL_PAYLOAD];
                        copy[..payload.len()].copy_from_slice(payload);
                        self.pending_pong = Some((copy, payload.len() as u8));
                    }
                }
                Ok(Ready::Ping { start, end })
            }
            OpCode::Pong => Ok(Ready::Pong { start, end }),
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
                Ok(Ready::Close {
                    code,
                    start: reason_start,
                    end,
                })
            }
        }
    }
}
