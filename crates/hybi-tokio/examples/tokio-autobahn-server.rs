//! Echo server for the Autobahn|Testsuite `fuzzingclient` on hybi-tokio (one
//! current_thread runtime): every text and binary message is echoed, on any path,
//! with permessage-deflate accepted when offered.
//!
//! Usage: `cargo run --release -p hybi-tokio --example tokio-autobahn-server [ADDR]`
//! (default 127.0.0.1:9004).

use hybi_tokio::hybi::deflate::DeflateConfig;
use hybi_tokio::{Acceptor, Message};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9004".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("autobahn echo server (hybi-tokio) on {addr}");
        let config = hybi_tokio::default_config().with_deflate(Some(DeflateConfig::default()));
        let acceptor = std::sync::Arc::new(Acceptor::new().config(config));
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = std::sync::Arc::clone(&acceptor);
            tokio::spawn(async move {
                let Ok(mut ws) = acceptor.accept(tcp).await else {
                    return;
                };
                // Echo until the connection ends; a failed send shows up as the
                // reason on the next read.
                loop {
                    let _ = match ws.recv().await {
                        Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                            ws.send(message).await
                        }
                        Ok(_) => Ok(()),
                        Err(_) => return,
                    };
                }
            });
        }
    })
}
