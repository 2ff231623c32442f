//! tokio-websockets echo server on a `current_thread` tokio runtime (one core, like
//! the others), as the crate's own echo example does it: a task per connection
//! (`tokio::task::unconstrained`) sending each text and binary message back, on any
//! path. Default limits; outgoing frames are not split (`frame_size(usize::MAX)`, as
//! in that example).
//!
//! Usage: `echo-tokio-websockets [ADDR]` (default 127.0.0.1:9002).

use futures_util::{SinkExt, StreamExt};
use hybi_echo_bench::{listen_addr, serve_tokio};
use tokio_websockets::{Config, ServerBuilder};

fn main() -> std::io::Result<()> {
    serve_tokio("tokio-websockets", listen_addr(), |stream| {
        tokio::task::unconstrained(async move {
            let accepted = ServerBuilder::new()
                .config(Config::default().frame_size(usize::MAX))
                .accept(stream)
                .await;
            let Ok((_request, mut ws)) = accepted else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                    return;
                }
            }
        })
    })
}
