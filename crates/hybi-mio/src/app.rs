//! What every worker of a server shares: the routes, pages and settings a
//! [`ServerBuilder`](crate::ServerBuilder) collects, and the [`SlowPeer`] policy.

use std::sync::Arc;
use std::time::Duration;

use hybi::Config;
use hybi::handshake::{Limits, UpgradeRequest};
use hybi_std::adapter::{Pages, Routes};

use crate::handler::Handler;

/// What to do with a connection whose queued output passes the high-water mark (a peer
/// that reads slower than it is sent to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlowPeer {
    /// Stop reading from it (so it cannot make us queue more replies), tell the
    /// handler ([`Handler::on_backpressure`]), and resume below half the mark. Sends
    /// to it beyond twice the mark fail with
    /// [`SendFailure::Backpressure`](crate::SendFailure::Backpressure).
    #[default]
    Pause,
    /// Drop the connection (the handler's `on_close` gets 1006).
    Drop,
}

/// Makes the handler of a connection from its upgrade request.
pub(crate) type Factory = Box<dyn Fn(&UpgradeRequest) -> Box<dyn Handler> + Send + Sync>;

/// Routes, pages and settings, shared by the workers.
pub(crate) struct App {
    /// Paths to handler factories, the fallback and the upgrade hook.
    pub(crate) routes: Routes<Factory>,
    /// Plain HTTP pages: path → (content type, body).
    pub(crate) pages: Pages,
    pub(crate) config: Config,
    pub(crate) limits: Limits,
    pub(crate) handshake_timeout: Duration,
    pub(crate) high_water: usize,
    pub(crate) slow_peer: SlowPeer,
    /// Every connection runs over TLS with this config.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for App {
    /// No routes (every path gets 404), engine settings
    /// [`default_config`](crate::default_config), a 10 s handshake timeout, a 1 MiB
    /// high-water mark with [`SlowPeer::Pause`].
    fn default() -> App {
        App {
            routes: Routes::default(),
            pages: Pages::default(),
            config: crate::default_config(),
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            high_water: 1 << 20,
            slow_peer: SlowPeer::Pause,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl App {
    /// Sends that would queue beyond this fail with `Backpressure`.
    pub(crate) fn send_limit(&self) -> usize {
        self.high_water.saturating_mul(2)
    }
}
