//! permessage-deflate on a connection: the agreed parameters, the compressor and
//! inflater (owned, or lent by the driver), compressing sends, and lending the
//! codec back when the agreement lets a side forget its context between messages.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::{Connection, Core, Role};
use crate::deflate::codec::TAIL;
use crate::deflate::quick::{self, Quick};
use crate::deflate::{Agreement, DeflateConfig, Deflater, Inflater};
use crate::frame::OpCode;

/// Compressed output is framed in pieces of at most this much.
const MAX_COMPRESSED_FRAME: usize = 1 << 20;

/// A compressor's output buffer keeps up to this much between messages.
const KEEP_SCRATCH: usize = 64 << 10;

/// The extension's state on one connection.
pub(super) struct DeflateState {
    pub(super) agreement: Agreement,
    pub(super) config: DeflateConfig,
    /// Our compressor forgets each message (we agreed to no context takeover).
    tx_reset: bool,
    /// The peer's compressor forgets each message: so does our inflater.
    pub(super) rx_reset: bool,
    /// The window our compressor may use.
    tx_bits: u8,
    deflater: Option<Box<Deflater>>,
    pub(super) inflater: Option<Box<Inflater>>,
    /// A compressed message is being received: the inflater holds its state.
    pub(super) rx_active: bool,
    /// With the peer's context takeover: the last bytes its messages inflated to,
    /// which its next message may refer back to (kept between `window` and twice
    /// that), so that a lent inflater can be primed with them: the context then costs
    /// the window's bytes instead of an inflater per connection.
    rx_history: Vec<u8>,
    /// The peer's window: how far back its references reach.
    rx_window: usize,
    /// The inflater holds this connection's context (it was not lent away since).
    rx_primed: bool,
    /// The fragmented message being sent is compressed.
    pub(super) tx_fragments: bool,
    /// With our context takeover at level 1: hybi's own compressor keeps our context
    /// as the last window of bytes we compressed (`tx_history`, kept between the
    /// window and an eighth more) and a match table of the connection's own, so the
    /// compressor itself holds nothing and can be lent like one without context.
    tx_context: Option<Box<TxContext>>,
}

/// Our compression context, with context takeover (see `DeflateState::tx_context`).
struct TxContext {
    history: Vec<u8>,
    table: Quick,
}

/// How far the context buffers grow past the window before the oldest bytes are
/// dropped: an eighth (moving a window's bytes once every eighth of one).
fn context_limit(window: usize) -> usize {
    window + window / 8
}

impl DeflateState {
    pub(super) fn new(role: Role, agreement: Agreement, config: DeflateConfig) -> DeflateState {
        let (tx_reset, rx_reset, tx_bits, rx_bits) = match role {
            Role::Server => (
                agreement.server_no_context_takeover,
                agreement.client_no_context_takeover,
                agreement.server_max_window_bits,
                agreement.client_max_window_bits,
            ),
            Role::Client => (
                agreement.client_no_context_takeover,
                agreement.server_no_context_takeover,
                agreement.client_max_window_bits,
                agreement.server_max_window_bits,
            ),
        };
        DeflateState {
            agreement,
            config,
            tx_reset,
            rx_reset,
            tx_bits,
            deflater: None,
            inflater: None,
            rx_active: false,
            rx_history: Vec::new(),
            rx_window: 1 << rx_bits.clamp(8, 15),
            rx_primed: false,
            tx_fragments: false,
            tx_context: (!tx_reset && config.level == 1).then(|| {
                // A table of a 32nd of the window's entries: 4 KiB at 15 bits.
                let table_bits = u32::from(tx_bits.clamp(8, 15)).saturating_sub(5).max(9);
                Box::new(TxContext {
                    history: Vec::new(),
                    table: Quick::new(table_bits),
                })
            }),
        }
    }

    /// True if the compressor holds no context of this connection's (none is kept,
    /// or hybi's own compressor keeps it here) and no fragmented message is being
    /// compressed by it: it can be lent to other connections.
    fn deflater_free(&self) -> bool {
        self.tx_context.is_some() || (self.tx_reset && !self.tx_fragments)
    }

    /// The inflater, made on first use if none was lent; at a message's start, one
    /// that was lent is primed with the peer's context (or reset, without takeover).
    /// `None` if priming failed (never with a valid history).
    pub(super) fn inflater(&mut self) -> Option<&mut Inflater> {
        let inflater = self
            .inflater
            .get_or_insert_with(|| Box::new(Inflater::new()));
        if !self.rx_active && !self.rx_primed {
            let keep = self.rx_history.len().min(self.rx_window);
            let history = if self.rx_reset {
                &[][..]
            } else {
                &self.rx_history[self.rx_history.len() - keep..]
            };
            if !inflater.prime(history) {
                return None;
            }
            self.rx_primed = true;
        }
        self.rx_active = true;
        Some(inflater)
    }

    /// Bytes the current message inflated to: with the peer's context takeover, they
    /// join the history its later messages may refer to.
    pub(super) fn inflated(&mut self, bytes: &[u8]) {
        if self.rx_reset || bytes.is_empty() {
            return;
        }
        let window = self.rx_window;
        let limit = context_limit(window);
        if self.rx_history.capacity() < limit {
            self.rx_history.reserve_exact(limit - self.rx_history.len());
        }
        let bytes = &bytes[bytes.len().saturating_sub(window)..];
        if self.rx_history.len() + bytes.len() > limit {
            // Keep what the next message may still reach: the last window, counting
            // the new bytes.
            let keep = window - bytes.len();
            let from = self.rx_history.len() - keep.min(self.rx_history.len());
            self.rx_history.copy_within(from.., 0);
            self.rx_history.truncate(self.rx_history.len() - from);
        }
        self.rx_history.extend_from_slice(bytes);
    }

    /// A compressed message has been received whole.
    pub(super) fn message_inflated(&mut self) {
        self.rx_active = false;
        if let Some(inflater) = self.inflater.as_mut() {
            // A peer that ended its stream with a final block starts a new one next.
            if inflater.ended() {
                self.rx_history.clear();
            }
            if self.rx_reset || inflater.ended() {
                inflater.reset();
            }
        }
    }
}

impl Connection {
    /// Turns permessage-deflate on with the parameters the handshake agreed and the
    /// local settings (level, threshold). The handshake does this itself
    /// ([`ServerAccepted::into_connection`](crate::handshake::ServerAccepted::into_connection),
    /// [`ClientAccepted::into_connection`](crate::handshake::ClientAccepted::into_connection));
    /// call it when another stack negotiated the extension.
    pub fn enable_deflate(&mut self, agreement: Agreement, config: DeflateConfig) {
        self.core.deflate = Some(Box::new(DeflateState::new(
            self.core.role,
            agreement,
            config,
        )));
    }

    /// The permessage-deflate parameters in force, if the extension was agreed.
    pub fn deflate(&self) -> Option<&Agreement> {
        self.core.deflate.as_deref().map(|d| &d.agreement)
    }

    /// Hands back the compressor when it holds nothing the connection needs (hybi's own
    /// compressor at level 1, whose context with context takeover the connection
    /// keeps; or no context takeover and no fragmented message being sent), so a driver
    /// can keep one per thread for all its connections instead of one per connection.
    /// The connection makes a new one if it needs one and none is lent
    /// ([`give_deflater`](Self::give_deflater)).
    pub fn take_deflater(&mut self) -> Option<Box<Deflater>> {
        let d = self.core.deflate.as_deref_mut()?;
        if !d.deflater_free() {
            return None;
        }
        d.deflater.take()
    }

    /// Lends the connection a compressor; returns it if the connection has its own,
    /// does not use one, or this one's window is larger than agreed (or its level
    /// differs).
    pub fn give_deflater(&mut self, deflater: Box<Deflater>) -> Option<Box<Deflater>> {
        match self.core.deflate.as_deref_mut() {
            Some(d)
                if d.deflater.is_none()
                    && (d.tx_reset || d.tx_context.is_some())
                    && deflater.fits(d.config.level, d.tx_bits) =>
            {
                d.deflater = Some(deflater);
                None
            }
            _ => Some(deflater),
        }
    }

    /// Hands back the inflater when no compressed message is half received, so a
    /// driver can keep a few per thread for all its connections. With the peer's
    /// context takeover the connection keeps that context as the last window of bytes
    /// the peer's messages inflated to, and primes the next inflater it gets with
    /// them: an idle connection then holds that window (at most twice 2^bits bytes)
    /// instead of an inflater.
    pub fn take_inflater(&mut self) -> Option<Box<Inflater>> {
        let d = self.core.deflate.as_deref_mut()?;
        if d.rx_active {
            return None;
        }
        d.rx_primed = false;
        d.inflater.take()
    }

    /// Lends the connection an inflater; returns it if the connection has its own or
    /// does not use one. Whatever its state, the connection primes it before use.
    pub fn give_inflater(&mut self, inflater: Box<Inflater>) -> Option<Box<Inflater>> {
        match self.core.deflate.as_deref_mut() {
            Some(d) if d.inflater.is_none() => {
                d.inflater = Some(inflater);
                d.rx_primed = false;
                None
            }
            _ => Some(inflater),
        }
    }
}

impl Core {
    /// Queues a whole data message: compressed (RSV1) when the extension is on and the
    /// message is at least the threshold long, else as it is.
    pub(super) fn write_message(&mut self, opcode: OpCode, payload: &[u8]) {
        let compress = self
            .deflate
            .as_deref()
            .is_some_and(|d| payload.len() >= d.config.threshold);
        if !compress || !self.write_compressed(opcode, true, true, payload) {
            self.write_frame(opcode, true, payload);
        }
    }

    /// True if a fragmented message starting with `first` (of a message of `kind`)
    /// is sent compressed.
    pub(super) fn start_fragments(&mut self, first_len: usize, fin: bool) -> bool {
        let Some(d) = self.deflate.as_deref_mut() else {
            return false;
        };
        // A message in one fragment follows the threshold; a longer one is compressed.
        d.tx_fragments = !fin || first_len >= d.config.threshold;
        d.tx_fragments
    }

    /// Compresses `payload` into one frame (`first`: the message's first frame, with
    /// RSV1; `fin`: its last, whose sync-flush tail is removed). Returns false, having
    /// queued nothing, if the payload is better sent as it is: only when the compressor
    /// forgets the message anyway (no context takeover), since with context takeover
    /// the peer's inflater must see every byte our compressor saw.
    pub(super) fn write_compressed(
        &mut self,
        opcode: OpCode,
        fin: bool,
        first: bool,
        payload: &[u8],
    ) -> bool {
        let Some(d) = self.deflate.as_deref_mut() else {
            return false;
        };
        let (level, bits) = (d.config.level, d.tx_bits);
        // Taken out while its output is framed (framing borrows the connection); its
        // output buffer travels with it, so a lent compressor leaves nothing behind.
        let mut deflater = d
            .deflater
            .take()
            .unwrap_or_else(|| Box::new(Deflater::new(level, bits)));
        let compressed = if let Some(cx) = d.tx_context.as_deref_mut() {
            Some(cx.compress(payload, bits, &mut deflater.out))
        } else if first && fin && d.tx_reset {
            deflater.compress_alone(payload, bits)
        } else {
            deflater.compress(payload)
        };
        let ok = compressed.is_some();
        let mut len = compressed.unwrap_or(0);
        if fin && deflater.out[..len].ends_with(&TAIL) {
            len -= TAIL.len();
        }
        if ok && fin && len == 0 {
            // The receiver appends 00 00 ff ff to what we send: alone, those bytes
            // are not a deflate block (they lack a block header), so an empty end of
            // a compressed message is the single byte 0x00, which completes them
            // into an empty stored block (RFC 7692 §7.2.3.6).
            if deflater.out.is_empty() {
                deflater.out.push(0);
            }
            deflater.out[0] = 0;
            len = 1;
        }
        if fin {
            d.tx_fragments = false;
            if d.tx_reset {
                deflater.reset();
            }
        }
        let whole = first && fin;
        let worse = len >= payload.len();
        if !ok || (whole && worse && d.tx_reset) {
            d.deflater = Some(deflater);
            return false;
        }
        // A large message goes out in frames of at most 1 MiB: compressing can grow
        // incompressible data (by about 6% at level 1), and one frame larger than the
        // message itself could exceed the peer's frame limit.
        let mut at = 0;
        let mut op = opcode;
        while len - at > MAX_COMPRESSED_FRAME {
            let piece = &deflater.out[at..at + MAX_COMPRESSED_FRAME];
            self.write_frame_rsv(op, false, first && at == 0, piece);
            at += MAX_COMPRESSED_FRAME;
            op = OpCode::Continuation;
        }
        self.write_frame_rsv(op, fin, first && at == 0, &deflater.out[at..len]);
        deflater.trim_output(KEEP_SCRATCH);
        if let Some(d) = self.deflate.as_deref_mut() {
            d.deflater = Some(deflater);
        }
        true
    }
}

impl TxContext {
    /// Compresses `payload` after the bytes compressed before it (which it may refer
    /// back to) into `out`; returns the length, ending with the sync flush's tail.
    fn compress(&mut self, payload: &[u8], bits: u8, out: &mut Vec<u8>) -> usize {
        // Positions are counted in `u32`: a payload of 512 MiB or more goes in pieces,
        // each ending with a sync flush.
        const PIECE: usize = quick::MAX_INPUT / 2;
        if payload.len() < PIECE {
            self.compress_piece(payload, bits, out);
        } else {
            out.clear();
            let mut piece_out = Vec::new();
            for piece in payload.chunks(PIECE) {
                self.compress_piece(piece, bits, &mut piece_out);
                out.extend_from_slice(&piece_out);
            }
        }
        out.len()
    }

    fn compress_piece(&mut self, piece: &[u8], bits: u8, out: &mut Vec<u8>) {
        let window = 1usize << bits.clamp(8, 15);
        let limit = context_limit(window);
        let history = &mut self.history;
        let want = (history.len() + piece.len()).max(limit);
        if history.capacity() < want {
            history.reserve_exact(want - history.len());
        }
        let from = history.len();
        history.extend_from_slice(piece);
        self.table.compress_from(history, from, bits, out);
        if history.len() > limit {
            // Keep the last window: what the next message may refer back to.
            let drop = history.len() - window;
            history.copy_within(drop.., 0);
            history.truncate(window);
            self.table.drop_front(drop);
            if history.capacity() > limit {
                // After a message longer than the window.
                history.shrink_to(limit);
            }
        }
    }
}
