//! fastwebsockets echo server on a `current_thread` tokio runtime (one core, like the
//! others): hyper answers the upgrade (`fastwebsockets::upgrade`, the crate's server
//! path), then a task per connection reads whole messages (`FragmentCollector`) and
//! writes each text and binary one back, on any path: the crate's own echo example.
//! Default limits (64 MiB messages), auto-pong and auto-close on.
//!
//! Usage: `echo-fastwebsockets [ADDR]` (default 127.0.0.1:9002).

use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
use http_body_util::Empty;
use hybi_echo_bench::{listen_addr, serve_tokio};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}

async fn upgrade(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        let _ = echo(fut).await;
    });
    Ok(response)
}

fn main() -> std::io::Result<()> {
    serve_tokio("fastwebsockets", listen_addr(), |stream| async move {
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service_fn(upgrade))
            .with_upgrades()
            .await;
    })
}
