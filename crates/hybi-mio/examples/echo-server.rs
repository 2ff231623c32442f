//! Echo server on the mio event loop: every text and binary message comes back.
//!
//! Usage: `cargo run --release -p hybi-mio --example echo-server [ADDR] [--workers N]
//! [--deflate]` (default 127.0.0.1:9002, one worker per core). Serves any path.
//! `--deflate` accepts permessage-deflate offers (`DeflateConfig::default()`: level 1,
//! context takeover).

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
    let mut addr = "127.0.0.1:9002".to_owned();
    let mut workers = None;
    let mut deflate = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => {
                let n = args.next().and_then(|n| n.parse().ok());
                let Some(n) = n else {
                    eprintln!("--workers needs a number");
                    std::process::exit(2);
                };
                workers = Some(n);
            }
            "--deflate" => deflate = true,
            other => addr = other.to_owned(),
        }
    }
    let mut builder = Server::builder().fallback(|_| Echo);
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    if deflate {
        let config = hybi_mio::hybi::deflate::DeflateConfig::default();
        builder = builder.config(hybi_mio::default_config().with_deflate(Some(config)));
    }
    let server = builder.bind(&addr)?;
    eprintln!("echo server (hybi-mio) on ws://{addr}/");
    server.join();
    Ok(())
}
