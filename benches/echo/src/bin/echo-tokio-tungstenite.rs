//! tokio-tungstenite echo server on a `current_thread` tokio runtime (one core, like
//! the others): a task per connection forwarding its text and binary messages back
//! (`StreamExt::forward`, which flushes when no more input is ready: the crate's own
//! echo example), on any path. Default limits.
//!
//! Usage: `echo-tokio-tungstenite [ADDR]` (default 127.0.0.1:9002).

use futures_util::{StreamExt, TryStreamExt, future};
use hybi_echo_bench::{listen_addr, serve_tokio};

fn main() -> std::io::Result<()> {
    serve_tokio("tokio-tungstenite", listen_addr(), |stream| async move {
        let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        let (write, read) = ws.split();
        let _ = read
            .try_filter(|m| future::ready(m.is_text() || m.is_binary()))
            .forward(write)
            .await;
    })
}
