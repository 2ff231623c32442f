//! Echo server: every text and binary message comes back.
//!
//! Usage: `cargo run -p hybi-std --example echo-server [ADDR]` (default 127.0.0.1:9002).
//! Serves `/` and `/echo`.

use hybi_std::{Handler, Peer, Server};

struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, peer: &Peer, text: &str) {
        let _ = peer.send_text(text);
    }
    fn on_binary(&mut self, peer: &Peer, data: &[u8]) {
        let _ = peer.send_binary(data);
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let server = Server::builder()
        .route("/", |_| Echo)
        .route("/echo", |_| Echo)
        .bind(&addr)?;
    eprintln!("echo server on ws://{}/ and /echo", server.local_addr()?);
    server.run()
}
