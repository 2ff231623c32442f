//! The server side of the interoperability contract in `.ci/peers` (the one the Python
//! `websockets` and Node `ws` servers there implement, and hybi-std's `peer-server`),
//! on the mio event loop.
//!
//! Usage: `cargo run --release -p hybi-mio --example mio-peer-server [ADDR]`
//! (default 127.0.0.1:9010).
//!
//! `PEERS_DEFLATE=1` in the environment turns permessage-deflate on (the suite's
//! deflate mode): every message is sent compressed (threshold 0). `0` or unset: off.
//! Any other value is an error (exit 2).
//!
//! `PEERS_TLS=1` is the suite's TLS mode: the server accepts TLS only (`wss://`), with
//! the certificate chain in the PEM file `PEERS_TLS_CERT` and the private key in
//! `PEERS_TLS_KEY` (needs the `tls` feature, on by default). `0` or unset: plain TCP.
//! Any other value, or a file that cannot be used, is an error (exit 2).
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

/// The suite's TLS mode from `PEERS_TLS`: `1` is TLS with the certificate and key of
/// `PEERS_TLS_CERT` and `PEERS_TLS_KEY`, `0` or unset is plain TCP. A bad value or file
/// ends the program.
#[cfg(feature = "tls")]
fn tls_mode() -> Option<Arc<hybi_mio::rustls::ServerConfig>> {
    use hybi_mio::rustls::pki_types::pem::PemObject;
    use hybi_mio::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    if !peers_tls() {
        return None;
    }
    let file = |var: &str| {
        std::env::var_os(var).unwrap_or_else(|| {
            eprintln!("peer-server: PEERS_TLS=1 needs {var}");
            std::process::exit(2);
        })
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("peer-server: {what}: {e}");
        std::process::exit(2);
    };
    let (cert, key) = (file("PEERS_TLS_CERT"), file("PEERS_TLS_KEY"));
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| fail("PEERS_TLS_CERT", &e));
    let key = PrivateKeyDer::from_pem_file(&key).unwrap_or_else(|e| fail("PEERS_TLS_KEY", &e));
    let provider = Arc::new(hybi_mio::rustls::crypto::ring::default_provider());
    let config = hybi_mio::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .unwrap_or_else(|e| fail("TLS config", &e));
    Some(Arc::new(config))
}

/// `PEERS_TLS`: `1` is the TLS mode, `0` or unset plain; anything else ends the
/// program.
fn peers_tls() -> bool {
    match std::env::var_os("PEERS_TLS") {
        Some(v) if v == "1" => true,
        Some(v) if v == "0" || v.is_empty() => false,
        None => false,
        Some(v) => {
            eprintln!("peer-server: PEERS_TLS must be 1 or 0, not {v:?}");
            std::process::exit(2);
        }
    }
}

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
    let builder = Server::builder();
    #[cfg(feature = "tls")]
    let builder = match tls_mode() {
        Some(tls) => builder.tls(tls),
        None => builder,
    };
    #[cfg(not(feature = "tls"))]
    if peers_tls() {
        eprintln!("peer-server: PEERS_TLS=1 needs hybi-mio's tls feature");
        std::process::exit(2);
    }
    let scheme = if peers_tls() { "wss" } else { "ws" };
    let server = builder
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
    eprintln!(
        "peer-server (hybi-mio) on {scheme}://{addr}, permessage-deflate {}",
        if deflate.is_some() { "on" } else { "off" }
    );
    server.run()
}
