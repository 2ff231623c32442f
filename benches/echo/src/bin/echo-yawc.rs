//! yawc echo server with permessage-deflate on, on a `current_thread` tokio runtime
//! (one core, like the others): hyper answers the upgrade
//! (`WebSocket::upgrade_with_options`, the crate's server path, as its `echo_server`
//! example does), then a task per connection forwards its text and binary messages
//! back (`StreamExt::forward`, which flushes when no more input is ready, as the
//! tokio-tungstenite server does). Compression as hybi's `DeflateConfig::default()`:
//! level 1 (`with_low_latency_compression`), context takeover both ways, 15-bit
//! windows (set: yawc would otherwise answer hybi's bare `client_max_window_bits`
//! offer with 9 bits), flate2 on zlib-rs (yawc's `zlib` feature). `--no-deflate` turns
//! compression off.
//!
//! Usage: `echo-yawc [ADDR] [--no-deflate]` (default 127.0.0.1:9002).

use futures_util::{StreamExt, future};
use http_body_util::Empty;
use hybi_echo_bench::{listen_addr, serve_tokio};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use yawc::{OpCode, Options, WebSocket};

async fn upgrade(
    mut req: Request<Incoming>,
    deflate: bool,
) -> yawc::Result<Response<Empty<Bytes>>> {
    let options = if deflate {
        // yawc answers a bare `client_max_window_bits` offer (hybi's) with its minimum,
        // 9 bits, unless told the window it wants: 15 bits, as hybi.
        Options::default()
            .with_low_latency_compression()
            .with_client_max_window_bits(15)
            .with_server_max_window_bits(15)
    } else {
        Options::default()
    };
    let (response, fut) = WebSocket::upgrade_with_options(&mut req, options)?;
    tokio::spawn(async move {
        let Ok(ws) = fut.await else {
            return;
        };
        let (write, read) = ws.split();
        let _ = read
            .filter(|f| future::ready(matches!(f.opcode(), OpCode::Text | OpCode::Binary)))
            .map(Ok)
            .forward(write)
            .await;
    });
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let deflate = !std::env::args().any(|a| a == "--no-deflate");
    let name = if deflate { "yawc (deflate)" } else { "yawc" };
    serve_tokio(name, listen_addr(), move |stream| async move {
        let _ = http1::Builder::new()
            .serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| upgrade(req, deflate)),
            )
            .with_upgrades()
            .await;
    })
}
