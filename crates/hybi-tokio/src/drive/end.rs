//! How a connection's transport ends once the engine says [`Next::Close`]: our
//! sending side is shut, then a server (which closes first) reads and drops what the
//! peer still sends, so that closing with unread input does not reset the connection
//! and lose the close frame on its way.
//!
//! [`Next::Close`]: hybi::Next::Close

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hybi::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Driver;

/// How long a server waits for the peer's end of input after its close frame before
/// dropping the transport (closing with unread input would reset the connection).
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// Where the transport is once the engine said [`Next::Close`](hybi::Next::Close).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum End {
    #[default]
    Open,
    ShuttingDown,
    Draining,
    Done,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    /// Shuts our sending side, then (a server, which closes first) reads and drops
    /// what the peer still sends until its end of input or [`DRAIN_TIMEOUT`].
    pub(super) fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.end == End::ShuttingDown {
            self.state.end = match ready!(Pin::new(&mut self.stream).poll_shutdown(cx)) {
                Ok(()) => End::Draining,
                Err(_) => End::Done,
            };
            self.state.timer.clear();
            self.state
                .timer
                .fired(Some(Instant::now() + DRAIN_TIMEOUT), cx);
        }
        while self.state.end == End::Draining {
            let mut scratch = [0u8; 1024];
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
                Poll::Pending if !self.state.timer.fired(None, cx) => return Poll::Pending,
                _ => self.state.end = End::Done,
            }
        }
        self.state.timer.clear();
        Poll::Ready(())
    }
}
