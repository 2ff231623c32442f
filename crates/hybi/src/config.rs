//! Connection settings: limits, ping/pong behaviour, timers and delivery mode.

use core::time::Duration;

/// How received data messages are handed to the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Whole messages: [`Event::Text`](crate::Event::Text) and
    /// [`Event::Binary`](crate::Event::Binary), assembled from their fragments.
    #[default]
    Message,
    /// Pieces as they arrive: [`Event::Fragment`](crate::Event::Fragment), so a message
    /// of any size streams through a bounded buffer.
    Streaming,
}

/// Settings for a [`Connection`](crate::Connection).
///
/// Start from [`Config::default()`] and change what you need, with the fields or the
/// chainable `with_*` methods:
///
/// ```
/// use core::time::Duration;
/// use hybi::{Config, Delivery};
/// let config = Config::default()
///     .with_max_message_size(1 << 20)
///     .with_keepalive(Some(Duration::from_secs(20)))
///     .with_delivery(Delivery::Streaming);
/// assert_eq!(config.max_message_size, 1 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest accepted frame payload. A larger frame fails the connection with 1009
    /// as soon as its header arrives, before anything is allocated for it.
    /// Default: 16 MiB.
    pub max_frame_size: usize,
    /// Largest accepted message (sum of its fragments). A fragment that would exceed it
    /// fails the connection with 1009 as soon as its header arrives. Applies in
    /// streaming mode too. Default: 64 MiB.
    pub max_message_size: usize,
    /// Answer every ping with a pong carrying the same payload, in order with the
    /// rest of the output. When more than 8 KiB of output is waiting to be written (a
    /// peer that pings but does not read), only the latest ping is answered (RFC 6455
    /// §5.5.3 allows it), so a ping flood cannot grow the output. Default: true.
    pub auto_pong: bool,
    /// Send a ping when nothing has been received for this long, and fail the
    /// connection if nothing arrives within [`pong_timeout`](Self::pong_timeout) after
    /// it. Default: off.
    pub keepalive_interval: Option<Duration>,
    /// How long to wait for any frame after a keepalive ping. Default: 10 s.
    pub pong_timeout: Duration,
    /// How long to wait for the peer's close frame after sending ours, and (client)
    /// for the server to close the transport after the closing handshake.
    /// Default: 5 s.
    pub close_timeout: Duration,
    /// Close the connection with 1001 when nothing has been received for this long.
    /// Default: off.
    pub idle_timeout: Option<Duration>,
    /// Whole messages or streamed fragments. Default: [`Delivery::Message`].
    pub delivery: Delivery,
    /// Enforce RFC 6455 §5.1: a server fails the connection on an unmasked frame and a
    /// client on a masked one (1002). When false, both are accepted (masked payloads
    /// are unmasked), for peers that get masking wrong and for benchmark harnesses
    /// that echo frames byte for byte. Keep it on facing the internet. Default: true.
    pub strict_masking: bool,
    /// Size of the receive buffer. Frames whose payload fits are delivered straight from
    /// it, without a copy; larger ones are assembled into a message buffer as they
    /// arrive. Default: 64 KiB. A larger size is reached in steps: the buffer starts
    /// at 64 KiB and grows to this size the first time it fills, so connections that
    /// only see small messages keep 64 KiB.
    pub read_buffer_size: usize,
    /// permessage-deflate (RFC 7692): a client offers it, a server accepts offers,
    /// under these settings; `None` (the default) leaves it off.
    pub deflate: Option<crate::deflate::DeflateConfig>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            auto_pong: true,
            keepalive_interval: None,
            pong_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            idle_timeout: None,
            delivery: Delivery::Message,
            strict_masking: true,
            read_buffer_size: 64 << 10,
            deflate: None,
        }
    }
}

impl Config {
    /// Sets [`deflate`](Self::deflate).
    pub fn with_deflate(mut self, deflate: Option<crate::deflate::DeflateConfig>) -> Config {
        self.deflate = deflate;
        self
    }

    /// Sets [`max_frame_size`](Self::max_frame_size).
    pub fn with_max_frame_size(mut self, bytes: usize) -> Config {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn with_max_message_size(mut self, bytes: usize) -> Config {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`auto_pong`](Self::auto_pong).
    pub fn with_auto_pong(mut self, on: bool) -> Config {
        self.auto_pong = on;
        self
    }

    /// Sets [`keepalive_interval`](Self::keepalive_interval).
    pub fn with_keepalive(mut self, interval: Option<Duration>) -> Config {
        self.keepalive_interval = interval;
        self
    }

    /// Sets [`pong_timeout`](Self::pong_timeout).
    pub fn with_pong_timeout(mut self, timeout: Duration) -> Config {
        self.pong_timeout = timeout;
        self
    }

    /// Sets [`close_timeout`](Self::close_timeout).
    pub fn with_close_timeout(mut self, timeout: Duration) -> Config {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Config {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`delivery`](Self::delivery).
    pub fn with_delivery(mut self, delivery: Delivery) -> Config {
        self.delivery = delivery;
        self
    }

    /// Sets [`strict_masking`](Self::strict_masking).
    pub fn with_strict_masking(mut self, on: bool) -> Config {
        self.strict_masking = on;
        self
    }

    /// Sets [`read_buffer_size`](Self::read_buffer_size) (at least 256 bytes are used).
    pub fn with_read_buffer_size(mut self, bytes: usize) -> Config {
        self.read_buffer_size = bytes;
        self
    }
}
