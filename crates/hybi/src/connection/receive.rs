//! The receive path's buffers (the receive buffer, read straight into by the
//! transport, and the message buffer) and the events built from what the state machine
//! in `deliver.rs` found.

use alloc::vec::Vec;

use super::deliver::{Ready, Src, ensure_room, growth_limit};
use super::{
    Connection, DIRECT_READ_MIN, FIRST_READ_BUFFER, Input, KEEP_MESSAGE_BUFFER, MIN_READ_BUFFER,
    Outbox,
};
use crate::config::Delivery;
use crate::error::{Error, ProtocolError};
use crate::event::{CloseFrame, Event, Fragment};

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

    pub(super) fn read_capacity(&self) -> usize {
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
    /// committed bytes without draining events: call [`next`](Self::next) until it
    /// returns `Wait` first.
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
            || self.core.rx_message.is_some_and(|m| m.compressed)
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
    /// to hold it. Drain [`next`](Self::next) between calls to keep memory
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
    /// [`next`](Self::next) reports [`Error::UnexpectedEof`] once the bytes
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
    pub(super) fn message_buffer_keep(&self) -> usize {
        (4 * self.read_capacity()).max(KEEP_MESSAGE_BUFFER)
    }

    /// Bytes received and not yet processed.
    pub fn buffered_input(&self) -> usize {
        self.input.end - self.input.pos
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
                src,
                kind,
                start,
                end,
                first,
                fin,
            } => Event::Fragment(Fragment {
                kind,
                data: input.slice(src, start, end),
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
}
