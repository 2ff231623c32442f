//! Echo server: every text and binary message comes back.
//!
//! Usage: `cargo run -p hybi-std --example std-echo-server [ADDR]` (default 127.0.0.1:9002).
//! Serves `/` and `/echo`.

use hybi_std::{Handler, Message, Peer, Server};

struct Echo;

impl Handler for Echo {
    // Owned messages go back without a copy (borrowed ones would be copied into
    // the output queue).
    fn on_message(&mut self, peer: &Peer, message: Message) {
        let _ = match message {
            Message::Text(text) => peer.send_text_owned(text),
            Message::Binary(data) => peer.send_binary_owned(data),
            _ => Ok(()),
        };
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
    eprintln!("echo server on ws://{}/ and /echo", server.local_addr());
    server.run()
}
