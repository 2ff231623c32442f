//! A chat room for browsers, an axum app on hybi-tokio: open `http://ADDR/` in several
//! tabs. The page (hybi-mio's chat example's `index.html`) is at `/`; `/chat`
//! broadcasts every text message to everyone connected, with join and leave notices;
//! `/echo` echoes. Any other path is 404, upgrades included. permessage-deflate is
//! on (browsers offer it), with no compression context kept between messages, so an
//! idle member costs no compression state.
//!
//! Usage: `cargo run --release -p hybi-tokio --features axum --example tokio-axum-chat
//! -- [ADDR] [--tls-cert FILE --tls-key FILE]` (default 127.0.0.1:9001, http:// and
//! ws://). With `--tls-cert` (a PEM certificate chain) and `--tls-key` (its PEM private
//! key) the page and the WebSockets are served over TLS instead, `https://` and `wss://`.
//!
//! The protocol (the one of hybi-mio's chat): clients send plain text; the server sends
//! JSON objects: `{"type":"welcome","you":"guest-3","online":2}`,
//! `{"type":"join"|"leave","who":"guest-4","online":3}`,
//! `{"type":"message","who":"guest-3","text":"hi"}`. A message over 64 KiB closes
//! its sender's connection with 1009 (the engine's message limit on `/chat`), a binary
//! one with 1003.
//!
//! **A slow member stalls no one.** Each member has a bounded queue of [`QUEUE`]
//! messages, which its own task writes to its socket; a broadcast only puts the
//! message in each queue (`try_send`), never waiting. A member whose queue is full
//! (its browser or its network does not keep up) is dropped from the room at once: no
//! more messages are queued for it, and once its task has written those already
//! queued it closes the connection with 1013 (try again later) and the others see it
//! leave. Its memory is bounded by the queue (at most 256 messages of 64 KiB).
//!

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{Html, Response};
use axum::routing::get;
use hybi_tokio::axum::WebSocketUpgrade;
use hybi_tokio::hybi::deflate::DeflateConfig;
use hybi_tokio::rustls::ServerConfig;
use hybi_tokio::tokio_rustls::{TlsAcceptor, server::TlsStream};
use hybi_tokio::{CloseCode, Config, Message, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The page, served at `/`.
const PAGE: &str = include_str!("../../hybi-mio/examples/mio-chat/index.html");

/// The longest message `/chat` takes, in bytes; a longer one closes the connection
/// with 1009.
const MAX_MESSAGE: usize = 64 << 10;

/// The messages waiting for one member, at most: a member this far behind is dropped.
const QUEUE: usize = 256;

/// Everyone in the chat, and the numbering of guests.
#[derive(Clone, Default)]
struct Room(Arc<Members>);

#[derive(Default)]
struct Members {
    /// Each member's queue, by its number.
    queues: Mutex<HashMap<u64, mpsc::Sender<Arc<str>>>>,
    guests: AtomicU64,
}

impl Room {
    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::Sender<Arc<str>>>> {
        self.0.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new member: its number, its queue, and how many are online with it. The
    /// others hear of it in the same step, so every count arrives in order.
    fn join(&self) -> (u64, mpsc::Receiver<Arc<str>>, usize) {
        let n = self.0.guests.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut queues = self.queues();
        queues.insert(n, tx);
        let online = queues.len();
        broadcast(&mut queues, notice("join", &guest(n), online), Some(n));
        (n, rx, online)
    }

    /// Takes member `n` out of the room (if still in it) and tells the others.
    fn leave(&self, n: u64) {
        let mut queues = self.queues();
        queues.remove(&n);
        let online = queues.len();
        broadcast(&mut queues, notice("leave", &guest(n), online), None);
    }

    /// Puts `message` in the queue of every member but `except` (see [`broadcast`]).
    fn broadcast(&self, message: String, except: Option<u64>) {
        broadcast(&mut self.queues(), message, except);
    }
}

/// Puts `message` in the queue of every member but `except`, without waiting: a
/// member whose queue is full is dropped from the room (its task, once it has written
/// what its queue holds, sees the queue end, closes its connection and announces
/// that it left).
fn broadcast(
    queues: &mut HashMap<u64, mpsc::Sender<Arc<str>>>,
    message: String,
    except: Option<u64>,
) {
    let message: Arc<str> = message.into();
    queues.retain(|&n, queue| {
        let full = Some(n) != except
            && matches!(
                queue.try_send(Arc::clone(&message)),
                Err(mpsc::error::TrySendError::Full(_))
            );
        !full
    });
}

/// Member `n`'s name.
fn guest(n: u64) -> String {
    format!("guest-{n}")
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A join or leave notice.
fn notice(kind: &str, who: &str, online: usize) -> String {
    format!(
        r#"{{"type":"{kind}","who":{},"online":{online}}}"#,
        json_string(who)
    )
}

/// One member's connection, from its welcome to its leave notice: what it sends is
/// broadcast, what its queue holds is written to it.
async fn member<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocket<S>, room: Room) {
    let (n, mut queue, online) = room.join();
    let name = guest(n);
    let welcome = format!(
        r#"{{"type":"welcome","you":{},"online":{online}}}"#,
        json_string(&name)
    );
    if ws.send_text(&welcome).await.is_ok() {
        // Until the closing handshake starts: then only reading, to its end.
        let mut open = true;
        loop {
            tokio::select! {
                received = ws.recv() => match received {
                    Ok(Message::Text(text)) => {
                        let message = format!(
                            r#"{{"type":"message","who":{},"text":{}}}"#,
                            json_string(&name),
                            json_string(&text)
                        );
                        room.broadcast(message, None);
                    }
                    Ok(Message::Binary(_)) if open => {
                        open = false;
                        let _ = ws.close(CloseCode::UNSUPPORTED_DATA, "text only").await;
                    }
                    // The engine has answered it.
                    Ok(Message::Close(_)) => open = false,
                    Ok(_) => {} // pings (answered), pongs
                    // The end: after the closing handshake, or a failure (a message
                    // over the limit: the engine has closed with 1009).
                    Err(_) => break,
                },
                queued = queue.recv(), if open => match queued {
                    Some(message) => {
                        if ws.send_text(&message).await.is_err() {
                            break;
                        }
                    }
                    // Dropped from the room: too far behind.
                    None => {
                        open = false;
                        let _ = ws.close(CloseCode::TRY_AGAIN_LATER, "too slow").await;
                    }
                },
            }
        }
    }
    room.leave(n);
}

/// The engine's settings for a route: permessage-deflate on, without context takeover.
fn config() -> Config {
    let deflate = DeflateConfig::default().without_context_takeover();
    hybi_tokio::default_config().with_deflate(Some(deflate))
}

async fn chat(ws: WebSocketUpgrade, State(room): State<Room>) -> Response {
    let config = config().with_max_message_size(MAX_MESSAGE);
    ws.config(config).on_upgrade(move |ws| member(ws, room))
}

/// `/echo`: every message back as it came, up to the default limit (64 MiB).
async fn echo(ws: WebSocketUpgrade) -> Response {
    ws.config(config()).on_upgrade(|mut ws| async move {
        while let Ok(message) = ws.recv().await {
            if message.is_data() && ws.send(message).await.is_err() {
                break;
            }
        }
    })
}

/// TLS connections for `axum::serve`: the TCP accept loop runs on a task of its own
/// and each TLS handshake on one more (within 10 s), so a slow client delays no one;
/// the finished ones come through a channel.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (done, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, say: try again shortly.
                        eprintln!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let (acceptor, done) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    let handshake = acceptor.accept(stream);
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), handshake).await
                    {
                        let _ = done.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop never ends.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The server config of `--tls-cert` and `--tls-key`; exits with status 2 if they
/// cannot be used.
fn tls_config(cert: &str, key: &str) -> Arc<ServerConfig> {
    use hybi_tokio::rustls::pki_types::pem::PemObject;
    use hybi_tokio::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let fail = |what: String| -> ! {
        eprintln!("{what}");
        std::process::exit(2);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| fail(format!("--tls-cert {cert}: {e}")));
    let key =
        PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| fail(format!("--tls-key {key}: {e}")));
    let provider = Arc::new(hybi_tokio::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .unwrap_or_else(|e| fail(format!("--tls-cert/--tls-key: {e}")));
    Arc::new(config)
}

/// ADDR, and the TLS config if `--tls-cert` and `--tls-key` are given.
fn args() -> (String, Option<Arc<ServerConfig>>) {
    let usage = |why: &str| -> ! {
        eprintln!("{why} (usage: tokio-axum-chat [ADDR] [--tls-cert FILE --tls-key FILE])");
        std::process::exit(2);
    };
    let mut addr = "127.0.0.1:9001".to_owned();
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tls-cert" => {
                cert = Some(
                    args.next()
                        .unwrap_or_else(|| usage("--tls-cert needs a file")),
                )
            }
            "--tls-key" => {
                key = Some(
                    args.next()
                        .unwrap_or_else(|| usage("--tls-key needs a file")),
                )
            }
            other if other.starts_with('-') => usage(&format!("unknown argument {other}")),
            other => addr = other.to_owned(),
        }
    }
    match (cert, key) {
        (None, None) => (addr, None),
        (Some(cert), Some(key)) => (addr, Some(tls_config(&cert, &key))),
        _ => usage("--tls-cert and --tls-key go together"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let (addr, tls) = args();
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/chat", get(chat))
        .route("/echo", get(echo))
        .with_state(Room::default());
    let listener = TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("chat on {scheme}://{local}/ (WebSockets at /chat and /echo)");
    match tls {
        Some(tls) => axum::serve(TlsListener::new(listener, tls)?, app).await,
        None => axum::serve(listener, app).await,
    }
}
