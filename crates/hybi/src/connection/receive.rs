//! The receive path: buffering, frame headers, payloads, events.

use alloc::vec::Vec;

use super::timers::Timer;
use super::{Connection, Core, Input, MIN_READ_BUFFER, OWNED_THRESHOLD, Outbox};
use crate::close::{CloseCode, MAX_REASON_LEN, parse_close_payload};
use crate::config::Delivery;
use crate::connection::Role;
use crate::error::{Error, ProtocolError};
use crate::event::{CloseFrame, Event, Fragment, MessageKind};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Parsed};
use crate::mask::apply_mask;

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
            Src::Msg => &self.msg[start..end],
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
    /// [`Config::read_buffer_size`](crate::Config::read_buffer_size) bytes. The slice is empty only if the caller
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

    /// Hands back the receive buffer when it holds no unprocessed bytes, so an adapter
    /// with many idle connections can pool buffers instead of keeping one per
    /// connection. The assembly buffer of fragmented messages is released too unless a
    /// message is being assembled. The next [`read_buf`](Self::read_buf) allocates
    /// again, unless a buffer is given with [`give_read_buffer`](Self::give_read_buffer).
    pub fn take_read_buffer(&mut self) -> Option<Vec<u8>> {
        let input = &mut self.input;
        if input.pos != input.end || input.buf.is_empty() {
            return None;
        }
        if self.core.rx_message.is_none() || self.core.config.delivery == Delivery::Streaming {
            input.msg = Vec::new();
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
            Some(ready) => self.materialize(ready).map(Some),
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

    /// Turns positions found by [`step`](Self::step) into an event borrowing the
    /// receive buffers, next to the outbox borrowing the rest.
    fn materialize(&mut self, ready: Ready) -> Result<(Event<'_>, Outbox<'_>), Error> {
        let Connection { input, core } = self;
        let input: &Input = input;
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
        Ok((event, Outbox { core }))
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

impl Core {
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
}
