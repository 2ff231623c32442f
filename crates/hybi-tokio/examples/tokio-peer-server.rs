//! The server side of the interoperability contract in `.ci/peers` (the one the
//! Python `websockets` and Node `ws` servers there and hybi-std's `peer-server`
//! implement), on hybi-tokio: one current_thread runtime, one task per connection,
//! the route chosen by path in `accept_with`'s decision.
//!
//! Usage: `cargo run --release -p hybi-tokio --example tokio-peer-server [ADDR]`
//! (default 127.0.0.1:9010).
//!
//! `PEERS_DEFLATE=1` in the environment turns permessage-deflate on (the suite's
//! deflate mode): offers are negotiated under `DeflateConfig::default()` with a
//! threshold of 0, so every message is sent compressed. `0` or unset: off, offers are
//! declined. Default limits either way. Any other value is an error (exit 2).
//!
//! `PEERS_TLS=1` is the suite's TLS mode: the server accepts TLS only (`wss://`,
//! `Acceptor::accept_tls_with`), with the certificate chain in the PEM file
//! `PEERS_TLS_CERT` and the private key in `PEERS_TLS_KEY`.
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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hybi_tokio::hybi::deflate::DeflateConfig;
use hybi_tokio::rustls::ServerConfig;
use hybi_tokio::{Acceptor, CloseCode, Decision, Error, Message, UpgradeRequest, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// The payload of the ping `/ping` sends.
const SERVER_PING: &str = "server ping κόσμε";

/// What a connection does, from its path.
enum Route {
    /// `/echo`, `/subprotocol`.
    Echo,
    /// `/forbidden`: refused before it is one.
    Forbidden,
    /// `/ping`.
    PingOnFirst,
    /// `/close`.
    CloseOnFirst,
    /// `/report-close?id=ID`.
    ReportClose(String),
    /// `/last-close?id=ID`.
    LastClose(String),
}

/// The route of a request and the answer to its upgrade.
fn route(req: &UpgradeRequest) -> (Route, Decision) {
    let id = || {
        let query = req.query().unwrap_or("");
        let id = query.split('&').find_map(|kv| kv.strip_prefix("id="));
        id.unwrap_or("").to_owned()
    };
    match req.path() {
        "/forbidden" => (Route::Forbidden, Decision::reject(403, "forbidden\n")),
        "/subprotocol" if req.protocols().iter().any(|p| p == "chat.v2") => {
            (Route::Echo, Decision::accept().with_protocol("chat.v2"))
        }
        "/ping" => (Route::PingOnFirst, Decision::accept()),
        "/close" => (Route::CloseOnFirst, Decision::accept()),
        "/report-close" => (Route::ReportClose(id()), Decision::accept()),
        "/last-close" => (Route::LastClose(id()), Decision::accept()),
        _ => (Route::Echo, Decision::accept()),
    }
}

/// The close frames seen on `/report-close`, by the id in the query.
#[derive(Default)]
struct Seen {
    closes: Mutex<HashMap<String, (u16, String)>>,
    changed: Notify,
}

impl Seen {
    fn record(&self, id: &str, code: CloseCode, reason: &str) {
        let mut closes = self.closes.lock().unwrap_or_else(|p| p.into_inner());
        closes.insert(id.to_owned(), (code.as_u16(), reason.to_owned()));
        self.changed.notify_waiters();
    }

    fn get(&self, id: &str) -> Option<(u16, String)> {
        let closes = self.closes.lock().unwrap_or_else(|p| p.into_inner());
        closes.get(id).cloned()
    }

    /// What `/report-close?id=ID` saw, once it has (`None` after `timeout`).
    async fn wait(&self, id: &str, timeout: Duration) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the look, so a record in between still wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(seen) = self.get(id) {
                return Some(seen);
            }
            tokio::time::timeout_at(deadline, changed).await.ok()?;
        }
    }
}

/// Serves one connection on its route, until the connection ends.
async fn serve<S>(mut ws: WebSocket<S>, route: Route, seen: Arc<Seen>) -> hybi_tokio::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Route::LastClose(id) = &route {
        let report = match seen.wait(id, Duration::from_secs(5)).await {
            Some((code, reason)) => format!("{code} {reason}"),
            None => "none".to_owned(),
        };
        ws.send_text(&report).await?;
        ws.close(CloseCode::NORMAL, "").await?;
    }
    let mut first = true;
    loop {
        match ws.recv().await? {
            message if message.is_data() => {
                match &route {
                    Route::Echo | Route::ReportClose(_) => ws.send(message).await?,
                    Route::PingOnFirst if first => ws.ping(SERVER_PING.as_bytes()).await?,
                    Route::CloseOnFirst if first => {
                        ws.close(CloseCode(4002), "server bye").await?;
                    }
                    _ => {}
                }
                first = false;
            }
            Message::Pong(payload) if matches!(route, Route::PingOnFirst) => {
                let text = format!("pong: {}", String::from_utf8_lossy(&payload));
                ws.send_text(&text).await?;
            }
            // The engine has already answered it, echoing the code.
            Message::Close(info) => {
                if let Route::ReportClose(id) = &route {
                    seen.record(id, info.code, &info.reason);
                }
            }
            _ => {} // pings are answered by the engine
        }
    }
}

/// Runs the opening handshake (over TLS when `tls` is set) and then the connection.
async fn connection(
    tcp: TcpStream,
    acceptor: Arc<Acceptor>,
    tls: Option<Arc<ServerConfig>>,
    seen: Arc<Seen>,
) -> hybi_tokio::Result<()> {
    let mut chosen = Route::Forbidden;
    let decide = |req: &UpgradeRequest| {
        let (route, decision) = route(req);
        chosen = route;
        decision
    };
    match tls {
        Some(tls) => {
            let ws = acceptor.accept_tls_with(tcp, tls, decide).await?;
            serve(ws, chosen, seen).await
        }
        None => {
            let ws = acceptor.accept_with(tcp, decide).await?;
            serve(ws, chosen, seen).await
        }
    }
}

/// A switch of the suite's from the environment: `1` on, `0` or unset off; anything
/// else ends the program.
fn env_switch(var: &str) -> bool {
    match std::env::var(var).as_deref() {
        Ok("1") => true,
        Ok("0" | "") | Err(std::env::VarError::NotPresent) => false,
        Ok(other) => fail(var, &format!("must be 1 or 0, not {other:?}")),
        Err(e) => fail(var, &e),
    }
}

fn fail(what: &str, e: &dyn std::fmt::Display) -> ! {
    eprintln!("tokio-peer-server: {what}: {e}");
    std::process::exit(2);
}

/// The TLS mode's server config: the chain in `PEERS_TLS_CERT`, the key in
/// `PEERS_TLS_KEY` (PEM files).
fn tls_config() -> Arc<ServerConfig> {
    use hybi_tokio::rustls::pki_types::pem::PemObject;
    use hybi_tokio::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let file = |var| std::env::var_os(var).unwrap_or_else(|| fail(var, &"not set (PEERS_TLS=1)"));
    let chain = CertificateDer::pem_file_iter(file("PEERS_TLS_CERT"))
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| fail("PEERS_TLS_CERT", &e));
    let key = PrivateKeyDer::from_pem_file(file("PEERS_TLS_KEY"))
        .unwrap_or_else(|e| fail("PEERS_TLS_KEY", &e));
    let provider = Arc::new(hybi_tokio::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .unwrap_or_else(|e| fail("TLS config", &e));
    Arc::new(config)
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9010".into());
    let deflate = env_switch("PEERS_DEFLATE").then(|| DeflateConfig::default().with_threshold(0));
    let tls = env_switch("PEERS_TLS").then(tls_config);
    let config = hybi_tokio::default_config().with_deflate(deflate);
    let acceptor = Arc::new(Acceptor::new().config(config));
    let seen = Arc::new(Seen::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!(
            "tokio-peer-server (hybi-tokio) on {}://{}, permessage-deflate {}",
            if tls.is_some() { "wss" } else { "ws" },
            listener.local_addr()?,
            if deflate.is_some() { "on" } else { "off" }
        );
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: try again shortly.
                    eprintln!("tokio-peer-server: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tls, seen) = (Arc::clone(&acceptor), tls.clone(), Arc::clone(&seen));
            tokio::spawn(async move {
                // Failures are the peers' (the hostile tests' bad handshakes and
                // frames): the engine has answered them; nothing to do here.
                match connection(tcp, acceptor, tls, seen).await {
                    Ok(()) | Err(Error::ConnectionClosed) => {}
                    Err(e) => log_failure(&e),
                }
            });
        }
    })
}

/// A connection's end other than a clean close, on stderr with `PEERS_VERBOSE=1`.
fn log_failure(e: &Error) {
    if std::env::var_os("PEERS_VERBOSE").is_some_and(|v| v == "1") {
        eprintln!("tokio-peer-server: connection: {e}");
    }
}
