//! The server side of the interoperability contract in `.ci/peers` (the one the Python
//! `websockets` and Node `ws` servers there implement, and hybi-std's `peer-server`),
//! on the mio event loop.
//!
//! Usage: `cargo run --release -p hybi-mio --example peer-server [ADDR]`
//! (default 127.0.0.1:9010).
//!
//! | path | behaviour |
//! |---|---|
//! | `/echo` | echoes every text and binary message as is |
//! | `/subprotocol` | accepts with `chat.v2` if offered (else no subprotocol), echoes |
//! | `/forbidden` | rejects the upgrade with HTTP 403 |
//! | `/ping` | on the first message, pings with "server ping κόσμε"; answers the pong with the text `"pong: <its payload>"` |
//! | `/close` | on the first message, closes with 4002 "server bye" |
//! | `/report-close?id=ID` | echoes; remembers the close code and reason the client sent under `ID` |
//! | `/last-close?id=ID` | sends `"<code> <reason>"` seen on `/report-close?id=ID` as one text message (as soon as it is known), then closes with 1000 |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hybi_mio::hybi::deflate::DeflateConfig;
use hybi_mio::{CloseCode, Context, Decision, Handler, Sender, Server, UpgradeRequest};

const SERVER_PING: &str = "server ping κόσμε";

/// Close frames seen on `/report-close`, and `/last-close` connections waiting for one.
/// Callbacks never block the loop: a waiting connection is answered through its
/// `Sender` when the close arrives.
#[derive(Default)]
struct Seen {
    closes: HashMap<String, (u16, String)>,
    waiting: HashMap<String, Sender>,
}

type Shared = Arc<Mutex<Seen>>;

fn lock(seen: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

fn query_id(req: &UpgradeRequest) -> String {
    req.query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("id="))
        .unwrap_or("")
        .to_owned()
}

struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send_binary(data);
    }
}

struct CloseOnFirst;

impl Handler for CloseOnFirst {
    fn on_text(&mut self, ctx: &mut Context<'_>, _: &str) {
        let _ = ctx.close(CloseCode(4002), "server bye");
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, _: &[u8]) {
        let _ = ctx.close(CloseCode(4002), "server bye");
    }
}

struct PingOnFirst {
    pinged: bool,
}

impl PingOnFirst {
    fn ping(&mut self, ctx: &mut Context<'_>) {
        if !self.pinged {
            self.pinged = true;
            let _ = ctx.ping(SERVER_PING.as_bytes());
        }
    }
}

impl Handler for PingOnFirst {
    fn on_text(&mut self, ctx: &mut Context<'_>, _: &str) {
        self.ping(ctx);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, _: &[u8]) {
        self.ping(ctx);
    }
    fn on_pong(&mut self, ctx: &mut Context<'_>, payload: &[u8]) {
        let _ = ctx.send_text(&format!("pong: {}", String::from_utf8_lossy(payload)));
    }
}

fn report(sender: &Sender, code: u16, reason: &str) {
    let _ = sender.send_text(&format!("{code} {reason}"));
    let _ = sender.close(CloseCode::NORMAL, "");
}

struct ReportClose {
    id: String,
    seen: Shared,
}

impl Handler for ReportClose {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send_binary(data);
    }
    fn on_close(&mut self, _: &mut Context<'_>, code: CloseCode, reason: &str) {
        let mut seen = lock(&self.seen);
        seen.closes
            .insert(self.id.clone(), (code.as_u16(), reason.to_owned()));
        if let Some(waiter) = seen.waiting.remove(&self.id) {
            report(&waiter, code.as_u16(), reason);
        }
    }
}

struct LastClose {
    id: String,
    seen: Shared,
}

impl Handler for LastClose {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let mut seen = lock(&self.seen);
        match seen.closes.get(&self.id) {
            Some((code, reason)) => {
                let _ = ctx.send_text(&format!("{code} {reason}"));
                let _ = ctx.close(CloseCode::NORMAL, "");
            }
            None => {
                seen.waiting.insert(self.id.clone(), ctx.sender());
            }
        }
    }
}

struct Never;

impl Handler for Never {}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9010".into());
    let seen = Shared::default();
    let (seen_report, seen_last) = (Arc::clone(&seen), Arc::clone(&seen));
    // The peers suite's deflate mode (PEERS_DEFLATE=1): every message compressed.
    let deflate = match std::env::var_os("PEERS_DEFLATE") {
        Some(v) if v == "1" => Some(DeflateConfig::default().with_threshold(0)),
        Some(v) if v == "0" || v.is_empty() => None,
        None => None,
        Some(v) => {
            eprintln!("peer-server: PEERS_DEFLATE must be 1 or 0, not {v:?}");
            std::process::exit(2);
        }
    };
    let server = Server::builder()
        .config(hybi_mio::default_config().with_deflate(deflate))
        .high_water(64 << 20)
        .route("/echo", |_| Echo)
        .route("/subprotocol", |_| Echo)
        .route("/forbidden", |_| Never)
        .route("/ping", |_| PingOnFirst { pinged: false })
        .route("/close", |_| CloseOnFirst)
        .route("/report-close", move |req| ReportClose {
            id: query_id(req),
            seen: Arc::clone(&seen_report),
        })
        .route("/last-close", move |req| LastClose {
            id: query_id(req),
            seen: Arc::clone(&seen_last),
        })
        .should_upgrade(|req| match req.path() {
            "/forbidden" => Decision::reject(403, "forbidden\n"),
            "/subprotocol" if req.protocols().iter().any(|p| p == "chat.v2") => {
                Decision::accept().with_protocol("chat.v2")
            }
            _ => Decision::accept(),
        })
        .bind(&addr)?;
    eprintln!("peer-server (hybi-mio) on ws://{addr}");
    server.join();
    Ok(())
}
