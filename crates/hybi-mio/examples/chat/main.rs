//! A chat room for browsers on the mio event loop: open `http://ADDR/` in several
//! tabs. `/chat` broadcasts every text message to everyone connected, with join and
//! leave notices; `/echo` echoes.
//!
//! Usage: `cargo run --release -p hybi-mio --example chat [ADDR]` (default
//! 127.0.0.1:9001).

mod room;

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
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let chat = room::Chat::default();
    // Browsers offer permessage-deflate on every connection: accept it, keeping no
    // compression context, so an idle member costs no compression state.
    let deflate = hybi_mio::hybi::deflate::DeflateConfig::default().without_context_takeover();
    let server = Server::builder()
        .config(hybi_mio::default_config().with_deflate(Some(deflate)))
        .page("/", "text/html; charset=utf-8", room::PAGE.as_bytes())
        .route("/chat", move |_| chat.member())
        .route("/echo", |_| Echo)
        .bind(&addr)?;
    eprintln!("chat on http://{addr}/ (WebSockets at /chat and /echo)");
    server.join();
    Ok(())
}
