//! The receive path: buffering, frame headers, payloads, events.

use alloc::vec::Vec;

use super::timers::Timer;
use super::{
    Connection, Core, DIRECT_READ_MIN, FIRST_READ_BUFFER, Input, KEEP_MESSAGE_BUFFER,
    MIN_READ_BUFFER, Outbox, PONG_COALESCE_AT,
};
use crate::close::{CloseCode, MAX_REASON_LEN, parse_close_payload};
use crate::config::Delivery;
use crate::connection::Role;
use crate::error::{Error, ProtocolError};
use crate::event::{CloseFrame, Event, Fragment, MessageKind};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Parsed};
use crate::mask::{apply_mask, copy_masked};

/// The frame whose payload is being received.
#[derive(Clone, Copy, Debug)]
pub(super) struct RxFrame {
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
pub(super) struct RxMessage {
    kind: MessageKind,
    /// Payload bytes announced so far (for the message size limit).
    len: u64,
    /// A piece of it was delivered ([`Delivery::Streaming`]).
    started: bool,
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

impl Input {
    #[inline]
    pub(super) fn slice(&self, src: Src, start: usize, end: usize) -> &[u8] {
        match src {
            Src::Read => &self.buf[start..end],
            Src::Msg => &self.msg[start..end.min(self.msg_len)],
        }
    }
}

impl Connection {
    // ----------------------------------------------------------------- input

    fn read_capacity(&self) -> usize {
        self.core.config.read_buffer_size.max(MIN_READ_BUFFER)
    }

    /// Makes room at the end of the receive buffer: resets it when empty, moves a
    /// partial frame to the front when the free tail is small.
    fn prepare_input(&mut self) {
        let cap = self.read_capacity();
        let input = &mut self.input;
        if self.core.rx_done {
            // Reading is over (close received or the connection failed): what is
            // buffered will never be processed, so the buffer keeps draining the
            // transport instead of filling up.
            input.pos = input.end;
        }
        if input.pos == input.end {
            input.pos = 0;
            input.end = 0;
            // A buffer that `receive` grew is kept up to twice its size, so a
            // caller that hands over large reads does not regrow it every time.
            if input.buf.len() > 2 * cap {
                input.buf.truncate(cap);
                input.buf.shrink_to_fit();
            }
        } else if input.pos > 0 && input.buf.len() - input.end < input.buf.len() / 2 {
            input.buf.copy_within(input.pos..input.end, 0);
            input.end -= input.pos;
            input.pos = 0;
        }
        // Up to `FIRST_READ_BUFFER` at first; the configured size once the buffer
        // filled up (a frame of up to `cap` bytes is kept whole, so it must fit).
        let full = input.end == input.buf.len();
        let want = if input.grow || (full && input.end > 0) {
            cap
        } else {
            cap.min(FIRST_READ_BUFFER)
        };
        input.grow = false;
        if input.buf.len() < want {
            input.buf.resize(want, 0);
        }
    }

    /// Free space at the end of the receive buffer, for the caller to read the
    /// transport into directly; then call [`commit`](Self::commit) with the number of
    /// bytes read.
    ///
    /// The buffer is allocated on first use with
    /// [`Config::read_buffer_size`](crate::Config::read_buffer_size) bytes. The slice is empty only if the caller
    /// committed bytes without draining events: call [`poll_event`](Self::poll_event)
    /// until it returns `Ok(None)` first.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if let Some((from, to)) = self.direct_target() {
            self.input.direct_armed = true;
            return &mut self.input.msg[from..to];
        }
        self.input.direct_armed = false;
        self.prepare_input();
        &mut self.input.buf[self.input.end..]
    }

    /// While the payload of a frame too large for the receive buffer is pending and
    /// nothing else is buffered, the transport can read it straight into the message
    /// buffer (limited to the rest of that frame): the kernel's copy is the only one.
    ///
    /// The room offered is what the buffer already has, or, to grow it, at most as
    /// much again as has arrived of the message: a declared length alone never
    /// allocates (a 14-byte header may announce gigabytes). The first bytes of a large
    /// frame therefore arrive through the receive buffer; then the message buffer
    /// doubles with each read, so a large message still takes a handful of reads.
    fn direct_target(&mut self) -> Option<(usize, usize)> {
        let frame = self.core.rx_frame?;
        let core = &self.core;
        if frame.in_place
            || frame.opcode.is_control()
            || core.rx_done
            || core.config.delivery != Delivery::Message
            || self.input.pos != self.input.end
            || self.input.direct != 0
        {
            return None;
        }
        let remaining = frame.len - frame.done;
        if remaining < DIRECT_READ_MIN {
            return None;
        }
        let from = self.input.msg_len;
        let room = self.input.msg.len() - from;
        let want = remaining.min(room.max(from));
        if want < DIRECT_READ_MIN {
            return None;
        }
        let limit = growth_limit(&frame, from, core.config.max_message_size);
        ensure_room(&mut self.input.msg, from + want, limit);
        Some((from, from + want))
    }

    /// Adds `n` bytes, just written into [`read_buf`](Self::read_buf), to the input.
    ///
    /// # Panics
    /// If `n` is larger than the slice `read_buf` returned.
    pub fn commit(&mut self, n: usize) {
        if self.input.direct_armed {
            self.input.direct_armed = false;
            let room = self.input.msg.len() - self.input.msg_len;
            assert!(n <= room, "commit({n}) beyond the read buffer");
            self.input.direct += n;
        } else {
            let offered = self.input.buf.len() - self.input.end;
            assert!(n <= offered, "commit({n}) beyond the read buffer");
            self.input.end += n;
            // More may be waiting than fitted: offer more room next time.
            self.input.grow = n > 0 && n == offered;
        }
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
        self.input.direct_armed = false;
        if data.is_empty() || self.core.rx_done {
            return;
        }
        self.prepare_input();
        let input = &mut self.input;
        if data.len() > input.buf.len() - input.end && input.pos > 0 {
            // Room at the front first: growing is the last resort.
            input.buf.copy_within(input.pos..input.end, 0);
            input.end -= input.pos;
            input.pos = 0;
        }
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

    /// Hands back the receive buffer when it holds no unprocessed bytes, so an adapter
    /// with many idle connections can pool buffers instead of keeping one per
    /// connection. The assembly buffer of fragmented and large messages is released too
    /// unless a message is being assembled (take it first with
    /// [`take_message_buffer`](Self::take_message_buffer) to pool it). The next [`read_buf`](Self::read_buf) allocates
    /// again, unless a buffer is given with [`give_read_buffer`](Self::give_read_buffer).
    pub fn take_read_buffer(&mut self) -> Option<Vec<u8>> {
        let input = &mut self.input;
        if input.pos != input.end || input.buf.is_empty() {
            return None;
        }
        if self.core.rx_message.is_none() || self.core.config.delivery == Delivery::Streaming {
            input.msg = Vec::new();
            input.msg_len = 0;
        }
        input.pos = 0;
        input.end = 0;
        Some(core::mem::take(&mut input.buf))
    }

    /// Gives the connection a receive buffer (from a pool) to use if it has none;
    /// returns it if the connection still has its own. The buffer is resized to
    /// [`Config::read_buffer_size`](crate::Config::read_buffer_size); its contents do not matter.
    pub fn give_read_buffer(&mut self, mut buf: Vec<u8>) -> Option<Vec<u8>> {
        if !self.input.buf.is_empty() {
            return Some(buf);
        }
        let cap = self.read_capacity();
        if buf.len() != cap {
            buf.resize(cap, 0);
        }
        self.input.buf = buf;
        self.input.pos = 0;
        self.input.end = 0;
        None
    }

    /// Hands back the buffer that large and fragmented messages are assembled in, when
    /// no message is being assembled in it, so an adapter can pool it with the receive
    /// buffer: a connection that receives large messages now and then then reuses a
    /// warm buffer instead of allocating (and zeroing) a new one each time. Returns
    /// `None` if there is none or it is in use.
    pub fn take_message_buffer(&mut self) -> Option<Vec<u8>> {
        let input = &mut self.input;
        let assembling =
            self.core.rx_message.is_some() && self.core.config.delivery == Delivery::Message;
        if input.msg.is_empty() || assembling || input.direct != 0 || input.direct_armed {
            return None;
        }
        input.msg_len = 0;
        Some(core::mem::take(&mut input.msg))
    }

    /// Gives the connection a message assembly buffer (from a pool) if it has none;
    /// returns it if the connection has its own, or if it is larger than the connection
    /// keeps between messages (four receive buffers, at least 2 MiB) or than
    /// [`Config::max_message_size`](crate::Config::max_message_size). Its contents do
    /// not matter.
    pub fn give_message_buffer(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        let keep = self
            .message_buffer_keep()
            .min(self.core.config.max_message_size);
        if !self.input.msg.is_empty() || buf.len() > keep {
            return Some(buf);
        }
        self.input.msg = buf;
        self.input.msg_len = 0;
        None
    }

    /// The largest assembly buffer kept from one message to the next.
    fn message_buffer_keep(&self) -> usize {
        (4 * self.read_capacity()).max(KEEP_MESSAGE_BUFFER)
    }

    /// Bytes received and not yet processed.
    pub fn buffered_input(&self) -> usize {
        self.input.end - self.input.pos
    }

    /// The next event from the bytes received so far.
    ///
    /// Returns `Ok(None)` when more input is needed. An `Err` reports each way the
    /// connection stops (see [`Error`]); the matching close frame, if any, is already
    /// queued. After an error nothing more is delivered, with one exception:
    /// [`Error::IdleTimeout`] starts a normal closing handshake, so the peer's data and
    /// close frame can still follow (or, if it stays silent, [`Error::CloseTimeout`]). Call it until `Ok(None)` after every
    /// [`receive`](Self::receive) or [`commit`](Self::commit).
    pub fn poll_event(&mut self) -> Result<Option<Event<'_>>, Error> {
        Ok(self.poll_event_with_outbox()?.map(|(event, _)| event))
    }

    /// Like [`poll_event`](Self::poll_event), and also hands out the connection's
    /// [`Outbox`], so the caller can send (an echo, a reply) while the event still
    /// borrows the received bytes: no copy of the payload in between.
    pub fn poll_event_with_outbox(&mut self) -> Result<Option<(Event<'_>, Outbox<'_>)>, Error> {
        if let Some(e) = self.core.pending_error.take() {
            return Err(e);
        }
        match self.step()? {
            Some(ready) => {
                let ready = self.check(ready)?;
                Ok(Some(self.materialize(ready)))
            }
            None => {
                let core = &mut self.core;
                if core.eof && !core.close_received && !core.failed {
                    core.abandon();
                    core.note_cause(Error::UnexpectedEof);
                    return Err(Error::UnexpectedEof);
                }
                Ok(None)
            }
        }
    }

    /// The next event found in the input, checked ([`check`](Self::check)); `None`
    /// when more input is needed or the connection failed (the failure is recorded).
    pub(super) fn next_ready(&mut self) -> Option<Ready> {
        match self.step() {
            Ok(Some(ready)) => self.check(ready).ok(),
            Ok(None) | Err(_) => None,
        }
    }

    /// Validates what `step` left for the event to check: a whole message in one frame
    /// is validated as UTF-8 only here, in one pass, when it is delivered. After this,
    /// every `Ready::Text` is valid UTF-8 (`validated`), which
    /// [`materialize`](Self::materialize) relies on.
    fn check(&mut self, ready: Ready) -> Result<Ready, Error> {
        match ready {
            Ready::Text {
                src,
                start,
                end,
                validated: false,
            } => {
                if crate::utf8::to_str(self.input.slice(src, start, end)).is_none() {
                    return Err(self.core.fail(ProtocolError::InvalidUtf8));
                }
                Ok(Ready::Text {
                    src,
                    start,
                    end,
                    validated: true,
                })
            }
            other => Ok(other),
        }
    }

    /// Turns positions found by [`step`](Self::step) and [`check`](Self::check) into an
    /// event borrowing the receive buffers, next to the outbox borrowing the rest.
    pub(super) fn materialize(&mut self, ready: Ready) -> (Event<'_>, Outbox<'_>) {
        let Connection { input, core } = self;
        let input: &Input = input;
        let event = match ready {
            Ready::Text {
                src, start, end, ..
            } => {
                let bytes = input.slice(src, start, end);
                // SAFETY: `check` turned every text message into a validated one: its
                // bytes either went, all of them and in order, through `rx_utf8`, whose
                // `finish` succeeded (a message that arrived in pieces), or were just
                // checked whole by `utf8::to_str` (a message in one frame).
                #[allow(unsafe_code)]
                let text = unsafe { crate::utf8::validated_str(bytes) };
                Event::Text(text)
            }
            Ready::Binary { src, start, end } => Event::Binary(input.slice(src, start, end)),
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
        (event, Outbox { core })
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
                if let Some(ready) = self.whole_message_frame(&header, header_len) {
                    return Ok(Some(ready));
                }
                let frame = self.core.start_frame(&header, self.read_capacity())?;
                self.input.pos += header_len;
                if header.opcode != OpCode::Continuation
                    && !header.opcode.is_control()
                    && !frame.in_place
                {
                    let keep = self.message_buffer_keep();
                    Connection::reset_message_buffer(&mut self.input, keep);
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
                        validated: frame.validated,
                    },
                    MessageKind::Binary => Ready::Binary {
                        src: Src::Read,
                        start,
                        end,
                    },
                }));
            }

            if self.core.config.delivery == Delivery::Message {
                // Assembled into the message buffer as it arrives: bytes the transport
                // read straight into it, or bytes copied (and unmasked) from the
                // receive buffer in one pass.
                let from = self.input.msg_len;
                let take = if self.input.direct > 0 {
                    let n = core::mem::take(&mut self.input.direct);
                    if let Some(key) = frame.mask {
                        apply_mask(key, frame.done, &mut self.input.msg[from..from + n]);
                    }
                    n
                } else {
                    let take = avail.min(frame.len - frame.done);
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
                let frame_done = frame.done == frame.len;
                let message_done = frame_done && frame.fin;
                if message_done && kind == MessageKind::Text && self.core.rx_utf8.finish().is_err()
                {
                    return Err(self.core.fail(ProtocolError::InvalidUtf8));
                }
                self.core.rx_frame = if frame_done { None } else { Some(frame) };
                if message_done {
                    self.core.rx_message = None;
                    let end = self.input.msg_len;
                    return Ok(Some(match kind {
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
                if !frame_done {
                    return Ok(None);
                }
                continue;
            }

            // Streaming: each piece is unmasked in place and delivered from the
            // receive buffer as it arrives.
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
    }

    /// The common case, in one step: a whole text or binary message in one frame whose
    /// payload is already buffered, valid for our role and within the limits. It is
    /// unmasked in place and delivered without touching the general state machine
    /// (text is validated whole when the event is built). Anything else returns
    /// `None` and takes the general path, which applies every rule.
    #[inline]
    fn whole_message_frame(&mut self, h: &FrameHeader, header_len: usize) -> Option<Ready> {
        let core = &self.core;
        let kind = match h.opcode {
            OpCode::Text => MessageKind::Text,
            OpCode::Binary => MessageKind::Binary,
            _ => return None,
        };
        let masked_right = match core.role {
            Role::Server => h.mask.is_some(),
            Role::Client => h.mask.is_none(),
        };
        let len = h.payload_len;
        if !h.fin
            || h.has_rsv()
            || core.rx_message.is_some()
            || core.config.delivery != Delivery::Message
            || (!masked_right && core.config.strict_masking)
            || len > core.config.max_frame_size as u64
            || len > core.config.max_message_size as u64
        {
            return None;
        }
        let start = self.input.pos + header_len;
        let end = start.checked_add(len as usize)?;
        if end > self.input.end {
            return None;
        }
        if let Some(key) = h.mask {
            apply_mask(key, 0, &mut self.input.buf[start..end]);
        }
        self.input.pos = end;
        Some(match kind {
            MessageKind::Text => Ready::Text {
                src: Src::Read,
                start,
                end,
                validated: false,
            },
            MessageKind::Binary => Ready::Binary {
                src: Src::Read,
                start,
                end,
            },
        })
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
fn ensure_room(msg: &mut Vec<u8>, need: usize, limit: usize) {
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
fn growth_limit(frame: &RxFrame, from: usize, max_message: usize) -> usize {
    if frame.fin {
        (from + (frame.len - frame.done)).min(max_message)
    } else {
        max_message
    }
}

impl Core {
    /// Validates a new frame header against RFC 6455 §5 and the limits, and sets up
    /// the receive state for its payload.
    fn start_frame(&mut self, h: &FrameHeader, read_capacity: usize) -> Result<RxFrame, Error> {
        if h.has_rsv() {
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
}
