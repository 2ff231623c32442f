//! permessage-deflate (RFC 7692): compressed messages, negotiated in the opening
//! handshake.
//!
//! - [`negotiate`]: parsing offers and answers, choosing parameters;
//! - [`DeflateConfig`]: what a side offers or accepts, and how it compresses;
//! - [`Deflater`] and [`Inflater`]: the compressor and decompressor a connection uses
//!   (hybi's own compressor at level 1, zlib-rs otherwise and for inflating), which
//!   an adapter can also own and lend to connections, one per worker: they hold no
//!   connection's context between messages (except zlib-rs compressing with context
//!   takeover at levels other than 1).
//!
//! The connection applies the extension: RSV1 on a message's first frame, the
//! `00 00 ff ff` tail removed on send and supplied on receive (without copying the
//! message), control frames never compressed, the message size limit applied to the
//! inflated size as it inflates.

pub(crate) mod codec;
pub mod negotiate;
pub(crate) mod quick;

pub use codec::{Deflater, Inflater};
pub use negotiate::{Agreement, NegotiationError, Offer};

/// permessage-deflate settings, for either role. The four RFC 7692 parameters keep
/// their meaning: a server *grants* what they say in its answer (and may add them), a
/// client *asks* for them in its offer.
///
/// ```
/// use hybi::deflate::DeflateConfig;
/// // Compress messages of 256 bytes or more; keep no context between messages, so an
/// // idle connection holds no compression state at all.
/// let lean = DeflateConfig::default().with_threshold(256).without_context_takeover();
/// assert!(lean.server_no_context_takeover && lean.client_no_context_takeover);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The largest window (8-15 bits) the server compresses with.
    pub server_max_window_bits: u8,
    /// The largest window (8-15 bits) the client compresses with.
    pub client_max_window_bits: u8,
    /// Compression level, 0 (store) to 9 (smallest). Default: 1, the fastest that
    /// still compresses well, done by hybi's own compressor, which keeps a
    /// connection's context with context takeover in about a window's bytes (other
    /// levels use zlib-rs, whose context is a few hundred KiB per connection).
    pub level: u8,
    /// Messages shorter than this are sent uncompressed. Default: 128 bytes.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> DeflateConfig {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 1,
            threshold: 128,
        }
    }
}

impl DeflateConfig {
    /// Sets [`threshold`](Self::threshold).
    pub fn with_threshold(mut self, bytes: usize) -> DeflateConfig {
        self.threshold = bytes;
        self
    }

    /// Sets [`level`](Self::level) (clamped to 0-9).
    pub fn with_level(mut self, level: u8) -> DeflateConfig {
        self.level = level.min(9);
        self
    }

    /// Both sides reset their compressor after every message: compression state lives
    /// only while a message is compressed or inflated, so it can be shared by all the
    /// connections of a thread ([`Connection::take_deflater`](crate::Connection::take_deflater)).
    pub fn without_context_takeover(mut self) -> DeflateConfig {
        self.server_no_context_takeover = true;
        self.client_no_context_takeover = true;
        self
    }

    /// Sets both windows' largest size (clamped to 8-15 bits): smaller windows cost
    /// less memory per connection with context takeover, and compress a little less.
    pub fn with_max_window_bits(mut self, bits: u8) -> DeflateConfig {
        let bits = bits.clamp(8, 15);
        self.server_max_window_bits = bits;
        self.client_max_window_bits = bits;
        self
    }
}
