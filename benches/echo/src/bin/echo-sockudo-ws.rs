//! sockudo-ws echo server on a `current_thread` tokio runtime (one core, like the
//! others), as the crate's own `simple_echo` example does it: a task per connection,
//! the `Stream` + `Sink` `WebSocketStream::server` sending each text and binary
//! message back (pings are answered by the stream itself), on any path. The
//! handshake is the crate's `handshake::server_handshake` (the example parses the
//! request by hand with the same functions); bytes read past the request go to the
//! stream. Default limits (`Config::default()`: no compression, write coalescing on,
//! the heartbeat on: a ping every 30 s, a 120 s idle timeout). The heartbeat is a
//! tokio timer, armed on the first read, so this runtime also has the timer driver
//! (`serve_tokio_timed`; without it the first read panics).
//!
//! Usage: `echo-sockudo-ws [ADDR]` (default 127.0.0.1:9002).

use futures_util::{SinkExt, StreamExt};
use hybi_echo_bench::{listen_addr, serve_tokio_timed};
use sockudo_ws::handshake::server_handshake;
use sockudo_ws::{Config, Message, Role, WebSocketStream};

fn main() -> std::io::Result<()> {
    serve_tokio_timed("sockudo-ws", listen_addr(), |mut stream| async move {
        let Ok(handshake) = server_handshake(&mut stream).await else {
            return;
        };
        let mut ws = WebSocketStream::from_raw_with_leftover(
            stream,
            Role::Server,
            Config::default(),
            handshake.leftover,
        );
        while let Some(Ok(message)) = ws.next().await {
            let echo = match message {
                Message::Text(_) | Message::Binary(_) => message,
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            if ws.send(echo).await.is_err() {
                return;
            }
        }
    })
}
