//! tokio-tungstenite echo server on a `current_thread` tokio runtime (one core, like
//! the others): a task per connection forwarding its text and binary messages back
//! (`StreamExt::forward`, which flushes when no more input is ready: the crate's own
//! echo example), on any path. Default limits.
//!
//! Usage: `echo-tokio-tungstenite [ADDR]` (default 127.0.0.1:9002).

use futures_util::{StreamExt, TryStreamExt, future};
use hybi_echo_bench::listen_addr;
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = listen_addr();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        eprintln!("tokio-tungstenite echo on {addr}");
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let (write, read) = ws.split();
                let _ = read
                    .try_filter(|m| future::ready(m.is_text() || m.is_binary()))
                    .forward(write)
                    .await;
            });
        }
    })
}
