//! The send path: encoding frames into the output queue, and [`Outbox`].

use alloc::string::String;
use alloc::vec::Vec;

use super::timers::Timer;
use super::{Connection, Core, OWNED_THRESHOLD};
use crate::close::{CloseCode, MAX_REASON_LEN};
use crate::connection::Role;
use crate::error::SendError;
use crate::event::MessageKind;
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use crate::mask::apply_mask;
use crate::utf8::Utf8Validator;

impl Connection {
    // ---------------------------------------------------------------- output

    /// Bytes queued and not yet written: what a caller applies backpressure on.
    pub fn buffered_output(&self) -> usize {
        self.core.buffered_output()
    }

    /// Position in the output stream just after everything queued so far. Once
    /// [`output_written`](Self::output_written) reaches the value read right after a
    /// send, that message has been handed to the transport: a send-completion signal.
    pub fn output_queued(&self) -> u64 {
        self.core.out.queued_total()
    }

    /// Hands back the output buffer when everything queued has been written, for an
    /// adapter to pool (see [`take_read_buffer`](Self::take_read_buffer)). Its length
    /// is not zero: the connection keeps the buffer initialized and writes frames into
    /// it in place, so it holds bytes already written. Clear it before using it for
    /// anything but [`give_output_buffer`](Self::give_output_buffer).
    pub fn take_output_buffer(&mut self) -> Option<Vec<u8>> {
        if self.core.pending_pong.is_some() {
            return None;
        }
        self.core.out.take_buf()
    }

    /// Gives the connection an output buffer (from a pool) to use if it has none;
    /// returns it if the connection still has its own. Whatever the buffer holds is
    /// never sent: it is room that frames overwrite.
    pub fn give_output_buffer(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        self.core.out.give_buf(buf)
    }

    /// Total bytes written so far (consumed from what `next` or `transmit` handed out).
    pub fn output_written(&self) -> u64 {
        self.core.out.written_total()
    }

    /// The sending half of the connection, borrowed on its own: what
    /// [`next`](Self::next) hands out next to an
    /// event so a handler can answer while the event still borrows the input.
    pub fn outbox(&mut self) -> Outbox<'_> {
        Outbox {
            core: &mut self.core,
        }
    }

    /// Queues a whole text message. See [`Outbox::send_text`].
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.outbox().send_text(text)
    }

    /// Queues a whole binary message. See [`Outbox::send_binary`].
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.outbox().send_binary(data)
    }

    /// Queues a whole text message taken by value. See [`Outbox::send_text_owned`].
    pub fn send_text_owned(&mut self, text: String) -> Result<(), SendError> {
        self.outbox().send_text_owned(text)
    }

    /// Queues a whole binary message taken by value. See [`Outbox::send_binary_owned`].
    pub fn send_binary_owned(&mut self, data: Vec<u8>) -> Result<(), SendError> {
        self.outbox().send_binary_owned(data)
    }

    /// Queues one fragment of a message. See [`Outbox::send_fragment`].
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        self.outbox().send_fragment(kind, data, fin)
    }

    /// True while a message sent with [`send_fragment`](Self::send_fragment) is unfinished.
    pub fn is_sending_fragments(&self) -> bool {
        self.core.tx_message.is_some()
    }

    /// Queues a ping. See [`Outbox::send_ping`].
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.outbox().send_ping(payload)
    }

    /// Queues a pong. See [`Outbox::send_pong`].
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.outbox().send_pong(payload)
    }

    /// Starts the closing handshake. See [`Outbox::close`].
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.outbox().close(code, reason)
    }
}

/// The sending half of a [`Connection`], borrowed separately from its received data.
///
/// [`Connection::next`] returns one next to each event ([`Next::Event`](crate::Next::Event)),
/// so an echo copies the received payload straight from the receive buffer into the
/// output queue, with no copy in between:
///
/// ```
/// use hybi::{Config, Connection, Event, Next};
/// let mut client = Connection::client(Config::default(), |b: &mut [u8]| b.fill(1));
/// let mut server = Connection::server(Config::default());
/// client.send_binary(b"echo me").unwrap();
/// let output = client.transmit().unwrap();
/// server.receive(output.bytes());
/// while let Next::Event(event, mut out) = server.next() {
///     if let Event::Binary(data) = event {
///         out.send_binary(data).unwrap();
///     }
/// }
/// assert_eq!(server.transmit().unwrap().bytes(), b"\x82\x07echo me");
/// ```
pub struct Outbox<'a> {
    pub(super) core: &'a mut Core,
}

impl Outbox<'_> {
    /// Queues a whole text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.core.check_data_send()?;
        self.core.write_message(OpCode::Text, text.as_bytes());
        Ok(())
    }

    /// Queues a whole binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.core.check_data_send()?;
        self.core.write_message(OpCode::Binary, data);
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
        let core = &mut *self.core;
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
        let compressed = match core.tx_message {
            None => core.start_fragments(data.len(), fin),
            Some(_) => core.deflate.as_deref().is_some_and(|d| d.tx_fragments),
        };
        let first = core.tx_message.is_none();
        if !compressed || !core.write_compressed(opcode, fin, first, data) {
            core.write_frame(opcode, fin, data);
        }
        core.tx_message = if fin { None } else { Some(kind) };
        Ok(())
    }

    /// Queues a ping (payload at most 125 bytes).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.core.check_control_send(payload)?;
        self.core.write_frame(OpCode::Ping, true, payload);
        Ok(())
    }

    /// Queues a pong (payload at most 125 bytes): an answer when
    /// [`Config::auto_pong`](crate::Config::auto_pong) is off, or an unsolicited heartbeat.
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.core.check_control_send(payload)?;
        self.core.write_frame(OpCode::Pong, true, payload);
        Ok(())
    }

    /// Starts the closing handshake: queues a close frame with `code` and `reason`
    /// (at most 123 bytes of UTF-8). No data may be sent afterwards; received data keeps
    /// being delivered until the peer's close frame, which must arrive within
    /// [`Config::close_timeout`](crate::Config::close_timeout).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let core = &mut *self.core;
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

    /// Bytes queued and not yet written (see [`Connection::buffered_output`]).
    pub fn buffered_output(&self) -> usize {
        self.core.buffered_output()
    }

    /// Position in the output stream after everything queued so far (see
    /// [`Connection::output_queued`]).
    pub fn output_queued(&self) -> u64 {
        self.core.out.queued_total()
    }

    /// The permessage-deflate parameters in force, if the extension was agreed.
    pub fn deflate(&self) -> Option<&crate::deflate::Agreement> {
        self.core.deflate.as_deref().map(|d| &d.agreement)
    }

    /// True until a close frame is sent or received, or the connection fails.
    pub fn can_send(&self) -> bool {
        !self.core.close_sent && !self.core.failed
    }
}

impl Core {
    pub(super) fn buffered_output(&self) -> usize {
        self.out.len()
            + self.pending_pong.map_or(0, |(_, n)| {
                usize::from(n) + if self.role == Role::Client { 6 } else { 2 }
            })
    }

    pub(super) fn check_data_send(&self) -> Result<(), SendError> {
        if self.close_sent || self.failed {
            Err(SendError::Closed)
        } else if self.tx_message.is_some() {
            Err(SendError::MessageInProgress)
        } else {
            Ok(())
        }
    }

    pub(super) fn check_control_send(&self, payload: &[u8]) -> Result<(), SendError> {
        if self.close_sent || self.failed {
            Err(SendError::Closed)
        } else if payload.len() > MAX_CONTROL_PAYLOAD {
            Err(SendError::ControlPayloadTooLong(payload.len()))
        } else {
            Ok(())
        }
    }

    pub(super) fn mask_key(&mut self) -> Option<[u8; 4]> {
        match self.role {
            Role::Server => None,
            Role::Client => Some(self.rng.as_mut().map_or([0; 4], |rng| rng.mask_key())),
        }
    }

    /// Encodes one frame into the output buffer (masking it in the client role).
    #[inline]
    pub(super) fn write_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        self.write_frame_rsv(opcode, fin, false, payload);
    }

    /// [`write_frame`](Self::write_frame) with RSV1 (a compressed message's first frame).
    pub(super) fn write_frame_rsv(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv1: bool,
        payload: &[u8],
    ) {
        if self.pending_pong.is_some() && opcode != OpCode::Pong {
            // The answer to an earlier ping goes before anything queued after it.
            self.flush_pong();
        }
        let mask = self.mask_key();
        let header = FrameHeader {
            fin,
            rsv1,
            mask,
            ..FrameHeader::new(opcode, payload.len() as u64)
        };
        let (word, header_len) = header.encode_word();
        self.out.push_frame(word, header_len, payload, mask);
    }

    /// Queues a whole data message whose payload the caller gave up.
    pub(super) fn write_owned(&mut self, opcode: OpCode, mut payload: Vec<u8>) {
        if self.pending_pong.is_some() {
            self.flush_pong();
        }
        let compress = self
            .deflate
            .as_deref()
            .is_some_and(|d| payload.len() >= d.config.threshold);
        if payload.len() < OWNED_THRESHOLD || compress {
            self.write_message(opcode, &payload);
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
        self.out.push_bytes(&head[..header_len]);
        self.out.push_owned(payload);
    }

    /// Encodes the pending pong, if any, behind what is queued.
    pub(super) fn flush_pong(&mut self) {
        if let Some((payload, len)) = self.pending_pong.take() {
            self.write_frame(OpCode::Pong, true, &payload[..usize::from(len)]);
        }
    }

    /// Queues our close frame and starts waiting for the peer's.
    pub(super) fn send_close(&mut self, code: Option<CloseCode>, reason: &str) {
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
}
