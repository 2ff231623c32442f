//! Echo server for the Autobahn|Testsuite `fuzzingclient`: every text and binary
//! message is echoed, on any path, with permessage-deflate accepted when offered.
//!
//! Usage: `cargo run --release -p hybi-std --example std-autobahn-server [ADDR]`
//! (default 127.0.0.1:9002).

use std::net::TcpListener;

use hybi_std::hybi::deflate::DeflateConfig;
use hybi_std::{AcceptBackoff, Acceptor, Message};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("autobahn echo server (hybi-std) on {addr}");
    // An accept that fails for lack of file descriptors fails again at once: the
    // back-off waits between tries (and logs once) instead of spinning a core, and
    // ends the loop on an error that does not pass.
    let mut backoff = AcceptBackoff::new();
    let config = hybi_std::default_config().with_deflate(Some(DeflateConfig::default()));
    let acceptor = std::sync::Arc::new(Acceptor::new().config(config));
    for stream in listener.incoming() {
        let Some(stream) = backoff.check(stream)? else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = std::sync::Arc::clone(&acceptor);
        std::thread::spawn(move || {
            let Ok(mut ws) = acceptor.accept(stream) else {
                return;
            };
            // Echo until the connection ends; a failed send shows up as the reason
            // on the next read.
            loop {
                let _ = match ws.read() {
                    Ok(Message::Text(t)) => ws.send_text(&t),
                    Ok(Message::Binary(b)) => ws.send_binary_owned(b),
                    Ok(_) => Ok(()),
                    Err(_) => return,
                };
            }
        });
    }
    Ok(())
}
