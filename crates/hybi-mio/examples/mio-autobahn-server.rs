//! Echo server for the Autobahn|Testsuite `fuzzingclient`, on the mio event loop:
//! every text and binary message is echoed, on any path.
//!
//! Usage: `cargo run --release -p hybi-mio --example mio-autobahn-server [ADDR]`
//! (default 127.0.0.1:9003).

use hybi_mio::hybi::deflate::DeflateConfig;
use hybi_mio::{Context, Handler, Server};

struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send_binary(data);
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    // Autobahn's 9.* cases send 16 MiB messages; the high-water mark must let an
    // echo of one through.
    // permessage-deflate accepted when offered (cases 12.* and 13.*).
    let config = hybi_mio::default_config().with_deflate(Some(DeflateConfig::default()));
    let server = Server::builder()
        .workers(1)
        .config(config)
        .high_water(64 << 20)
        .fallback(|_| Echo)
        .bind(&addr)?;
    eprintln!("autobahn echo server (hybi-mio) on {addr}");
    server.run()
}
