//! The server side of the interoperability contract in `.ci/peers` (the same contract
//! the Python `websockets` and Node `ws` servers there implement), built on hybi-std's
//! thread-per-connection [`Server`].
//!
//! Usage: `cargo run --release -p hybi-std --example std-peer-server [ADDR]`
//! (default 127.0.0.1:9010).
//!
//! `PEERS_DEFLATE=1` in the environment turns permessage-deflate on (the suite's
//! deflate mode): offers are negotiated under `DeflateConfig::default()` with a
//! threshold of 0, so every message is sent compressed, and the frame limit is raised
//! to the message limit (64 MiB), since 16 MiB of random bytes compress to a frame a
//! little over the default 16 MiB. `0` or unset: off, offers are declined, default
//! limits. Any other value is an error (exit 2).
//!
//! `PEERS_TLS=1` is the suite's TLS mode: the server accepts TLS only (`wss://`), with
//! the certificate chain in the PEM file `PEERS_TLS_CERT` and the private key in
//! `PEERS_TLS_KEY` (needs the `tls` feature).
//!
//! | path | behaviour |
//! |---|---|
//! | `/echo` | echoes every text and binary message as is |
//! | `/subprotocol` | accepts with `chat.v2` if offered (else no subprotocol), echoes |
//! | `/forbidden` | rejects the upgrade with HTTP 403 |
//! | `/ping` | on the first message, pings with "server ping κόσμε"; answers the pong with the text `"pong: <its payload>"` |
//! | `/close` | on the first message, closes with 4002 "server bye" |
//! | `/report-close?id=ID` | echoes; remembers the close code and reason the client sent under `ID` (the close answer echoes the code) |
//! | `/last-close?id=ID` | sends `"<code> <reason>"` seen on `/report-close?id=ID` as one text message (waits up to 5 s for it), then closes with 1000 |

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hybi_std::hybi::deflate::DeflateConfig;
use hybi_std::{CloseCode, Decision, Handler, Peer, Server, UpgradeRequest};

/// The payload of the ping `/ping` sends.
const SERVER_PING: &str = "server ping κόσμε";

/// The close frames seen on `/report-close`, by the id in the query.
#[derive(Default)]
struct Seen {
    closes: Mutex<HashMap<String, (u16, String)>>,
    changed: Condvar,
}

impl Seen {
    fn record(&self, id: &str, code: u16, reason: &str) {
        let mut closes = self.closes.lock().unwrap_or_else(|p| p.into_inner());
        closes.insert(id.to_owned(), (code, reason.to_owned()));
        self.changed.notify_all();
    }

    fn wait(&self, id: &str, timeout: Duration) -> Option<(u16, String)> {
        let deadline = Instant::now() + timeout;
        let mut closes = self.closes.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(seen) = closes.get(id) {
                return Some(seen.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            closes = self
                .changed
                .wait_timeout(closes, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// The value of `id` in the request's query (empty if absent).
fn query_id(req: &UpgradeRequest) -> String {
    req.query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("id="))
        .unwrap_or("")
        .to_owned()
}

/// `/echo`, `/subprotocol`.
struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, peer: &Peer, text: &str) {
        let _ = peer.send_text(text);
    }
    fn on_binary(&mut self, peer: &Peer, data: &[u8]) {
        let _ = peer.send_binary(data);
    }
}

/// `/close`: closes with 4002 "server bye" on the first message.
struct CloseOnFirst {
    closed: bool,
}

impl CloseOnFirst {
    fn bye(&mut self, peer: &Peer) {
        if !self.closed {
            self.closed = true;
            if let Err(e) = peer.close(CloseCode(4002), "server bye") {
                eprintln!("peer-server: /close: close failed: {e}");
            }
        }
    }
}

impl Handler for CloseOnFirst {
    fn on_text(&mut self, peer: &Peer, _: &str) {
        self.bye(peer);
    }
    fn on_binary(&mut self, peer: &Peer, _: &[u8]) {
        self.bye(peer);
    }
}

/// `/ping`: pings on the first message and reports the pong's payload as text.
struct PingOnFirst {
    pinged: bool,
}

impl PingOnFirst {
    fn ping(&mut self, peer: &Peer) {
        if !self.pinged {
            self.pinged = true;
            let _ = peer.ping(SERVER_PING.as_bytes());
        }
    }
}

impl Handler for PingOnFirst {
    fn on_text(&mut self, peer: &Peer, _: &str) {
        self.ping(peer);
    }
    fn on_binary(&mut self, peer: &Peer, _: &[u8]) {
        self.ping(peer);
    }
    fn on_pong(&mut self, peer: &Peer, payload: &[u8]) {
        let _ = peer.send_text(&format!("pong: {}", String::from_utf8_lossy(payload)));
    }
}

/// `/report-close?id=ID`: echoes, and records the client's close code and reason.
struct ReportClose {
    id: String,
    seen: Arc<Seen>,
}

impl Handler for ReportClose {
    fn on_text(&mut self, peer: &Peer, text: &str) {
        let _ = peer.send_text(text);
    }
    fn on_binary(&mut self, peer: &Peer, data: &[u8]) {
        let _ = peer.send_binary(data);
    }
    fn on_close(&mut self, _: &Peer, code: CloseCode, reason: &str) {
        self.seen.record(&self.id, code.as_u16(), reason);
    }
}

/// `/last-close?id=ID`: reports what `/report-close?id=ID` saw.
struct LastClose {
    id: String,
    seen: Arc<Seen>,
}

impl Handler for LastClose {
    fn on_open(&mut self, peer: &Peer) {
        let report = match self.seen.wait(&self.id, Duration::from_secs(5)) {
            Some((code, reason)) => format!("{code} {reason}"),
            None => "none".to_owned(),
        };
        let _ = peer.send_text(&report);
        let _ = peer.close(CloseCode::NORMAL, "");
    }
}

/// The suite's mode from `PEERS_DEFLATE`: `1` is permessage-deflate on (every message
/// compressed: threshold 0), `0` or unset is off. Anything else ends the program.
fn deflate_mode() -> Option<DeflateConfig> {
    match std::env::var_os("PEERS_DEFLATE") {
        Some(v) if v == "1" => Some(DeflateConfig::default().with_threshold(0)),
        Some(v) if v == "0" || v.is_empty() => None,
        None => None,
        Some(v) => {
            eprintln!("peer-server: PEERS_DEFLATE must be 1 or 0, not {v:?}");
            std::process::exit(2);
        }
    }
}

/// `/forbidden` never gets past the upgrade hook.
struct Never;

impl Handler for Never {}

/// The suite's TLS mode from `PEERS_TLS`: `1` is TLS with the certificate and key of
/// `PEERS_TLS_CERT` and `PEERS_TLS_KEY`, `0` or unset is plain TCP. A bad value or file
/// ends the program.
#[cfg(feature = "tls")]
fn tls_mode() -> Option<Arc<hybi_std::rustls::ServerConfig>> {
    use hybi_std::rustls::pki_types::pem::PemObject;
    use hybi_std::rustls::pki_types::{CertificateDer, PrivateKeyDer};

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
    let provider = Arc::new(hybi_std::rustls::crypto::ring::default_provider());
    let config = hybi_std::rustls::ServerConfig::builder_with_provider(provider)
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
    let seen = Arc::new(Seen::default());
    let (seen_report, seen_last) = (Arc::clone(&seen), Arc::clone(&seen));
    let deflate = deflate_mode();
    let config = hybi_std::default_config().with_deflate(deflate);
    let builder = Server::builder();
    #[cfg(feature = "tls")]
    let builder = match tls_mode() {
        Some(tls) => builder.tls(tls),
        None => builder,
    };
    #[cfg(not(feature = "tls"))]
    if peers_tls() {
        eprintln!("peer-server: PEERS_TLS=1 needs hybi-std's tls feature");
        std::process::exit(2);
    }
    let scheme = if peers_tls() { "wss" } else { "ws" };
    let server = builder
        .config(config)
        .route("/echo", |_| Echo)
        .route("/subprotocol", |_| Echo)
        .route("/forbidden", |_| Never)
        .route("/ping", |_| PingOnFirst { pinged: false })
        .route("/close", |_| CloseOnFirst { closed: false })
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
        "peer-server (hybi-std) on {scheme}://{}, permessage-deflate {}",
        server.local_addr(),
        if deflate.is_some() { "on" } else { "off" }
    );
    server.run()
}
