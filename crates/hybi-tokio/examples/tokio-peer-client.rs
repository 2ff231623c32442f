//! The client side of the interoperability contract in `.ci/peers`: runs the shared
//! scenario list (the one the Python `websockets` and Node `ws` clients there and
//! hybi-std's `peer-client` run) against a server implementing the contract, on
//! hybi-tokio.
//!
//! Usage: `cargo run --release -p hybi-tokio --example tokio-peer-client [BASE_URL [SCENARIO,...]]`
//! (default ws://127.0.0.1:9011, every scenario).
//!
//! Prints one line per scenario, `RESULT <scenario> PASS (<ms> ms)` or `RESULT
//! <scenario> FAIL <why> (<ms> ms)`, and exits with 1 if any failed.
//!
//! Each scenario runs on a current_thread runtime of its own, on a thread of its own,
//! so that one that never returns (a send spinning in the engine, say) is reported
//! after 30 s while the others go on; `concurrent_20` runs its connections as 20 tasks
//! of that runtime.
//!
//! `PEERS_DEFLATE=1` in the environment is the suite's deflate mode: every connection
//! offers permessage-deflate (`DeflateConfig::default()` with a threshold of 0, so
//! every message is sent compressed once it is agreed), and `deflate_negotiated`
//! asserts the server agreed. `0` or unset: nothing is offered, except on
//! `deflate_negotiated`'s connection, where the server (compression off) must
//! decline. Default limits either way. Any other value is an error (exit 2).
//!
//! `PEERS_TLS=1` is the suite's TLS mode: the base URL is a `wss://` one, and the
//! server's certificate is checked against the CA certificate in the PEM file
//! `PEERS_TLS_CA` (`ClientBuilder::tls_config`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hybi_tokio::hybi::deflate::DeflateConfig;
use hybi_tokio::rustls::ClientConfig;
use hybi_tokio::{
    ClientBuilder, CloseCode, CloseInfo, Error, MaybeTlsStream, Message, MessageKind, Response,
    WebSocket,
};

type Ws = WebSocket<MaybeTlsStream>;

type Outcome = Result<(), String>;

/// A scenario's run against a base URL.
type Run = Pin<Box<dyn Future<Output = Outcome>>>;

/// A scenario: its name and what runs it.
type Scenario = (&'static str, fn(String) -> Run);

/// Every scenario, in the order the other clients run them too.
const SCENARIOS: &[Scenario] = &[
    ("deflate_negotiated", |b| Box::pin(deflate_negotiated(b))),
    ("text_utf8", |b| Box::pin(text_utf8(b))),
    ("text_empty", |b| Box::pin(text_empty(b))),
    ("text_1MiB_utf8", |b| Box::pin(text_big(b))),
    ("binary_0", |b| Box::pin(binary(b, 0))),
    ("binary_125", |b| Box::pin(binary(b, 125))),
    ("binary_126", |b| Box::pin(binary(b, 126))),
    ("binary_65535", |b| Box::pin(binary(b, 65535))),
    ("binary_65536", |b| Box::pin(binary(b, 65536))),
    ("binary_16MiB", |b| Box::pin(binary(b, 16 << 20))),
    ("burst_1000", |b| Box::pin(burst(b))),
    ("fragmented_text", |b| Box::pin(fragmented_text(b))),
    ("fragmented_binary", |b| Box::pin(fragmented_binary(b))),
    ("fragmented_with_ping", |b| {
        Box::pin(fragmented_with_ping(b))
    }),
    ("ping_pong", |b| Box::pin(ping_pong(b))),
    ("server_ping", |b| Box::pin(server_ping(b))),
    ("close_from_client", |b| Box::pin(close_from_client(b))),
    ("close_reason_utf8_123B", |b| Box::pin(close_reason_utf8(b))),
    ("close_from_server", |b| Box::pin(close_from_server(b))),
    ("subprotocol", |b| Box::pin(subprotocol(b))),
    ("subprotocol_none", |b| Box::pin(subprotocol_none(b))),
    ("forbidden_403", |b| Box::pin(forbidden(b))),
    ("concurrent_20", |b| Box::pin(concurrent(b))),
];

const UTF8_TEXT: &str = "Hello, κόσμε! 🚀 👩‍💻 ∑ — ok";

/// A scenario may take this long, as long as one read may wait.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest wait for one message.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The suite's settings, read once from the environment.
struct Mode {
    /// What every connection offers (`PEERS_DEFLATE`).
    deflate: Option<DeflateConfig>,
    /// The client config trusting `PEERS_TLS_CA` (`PEERS_TLS`).
    tls: Option<Arc<ClientConfig>>,
}

static MODE: OnceLock<Mode> = OnceLock::new();

fn mode() -> &'static Mode {
    MODE.get_or_init(|| Mode {
        deflate: env_switch("PEERS_DEFLATE").then(deflate_offer),
        tls: env_switch("PEERS_TLS").then(tls_config),
    })
}

/// The offer of the deflate mode: the defaults, every message compressed.
fn deflate_offer() -> DeflateConfig {
    DeflateConfig::default().with_threshold(0)
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
    eprintln!("tokio-peer-client: {what}: {e}");
    std::process::exit(2);
}

/// The TLS mode's client config: the CA certificate(s) in `PEERS_TLS_CA` are the only
/// roots.
fn tls_config() -> Arc<ClientConfig> {
    use hybi_tokio::rustls::RootCertStore;
    use hybi_tokio::rustls::pki_types::CertificateDer;
    use hybi_tokio::rustls::pki_types::pem::PemObject;

    let ca = std::env::var_os("PEERS_TLS_CA")
        .unwrap_or_else(|| fail("PEERS_TLS_CA", &"not set (PEERS_TLS=1)"));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).unwrap_or_else(|e| fail("PEERS_TLS_CA", &e)) {
        let cert = cert.unwrap_or_else(|e| fail("PEERS_TLS_CA", &e));
        roots.add(cert).unwrap_or_else(|e| fail("PEERS_TLS_CA", &e));
    }
    let provider = Arc::new(hybi_tokio::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail("TLS config", &e))
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn main() {
    mode();
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9011".into());
    let base = base.trim_end_matches('/').to_owned();
    let only: Option<Vec<String>> = args
        .next()
        .map(|list| list.split(',').map(str::to_owned).collect());
    let mut failed = 0;
    for (name, run) in SCENARIOS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        let started = Instant::now();
        let outcome = run_limited(*run, &base);
        let ms = started.elapsed().as_millis();
        match outcome {
            Ok(()) => println!("RESULT {name} PASS ({ms} ms)"),
            Err(why) => {
                failed += 1;
                println!("RESULT {name} FAIL {why} ({ms} ms)");
            }
        }
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// Runs a scenario on a current_thread runtime on a thread of its own, for at most
/// [`SCENARIO_TIMEOUT`]: one that never returns is left running until the program
/// exits.
fn run_limited(run: fn(String) -> Run, base: &str) -> Outcome {
    let (tx, rx) = std::sync::mpsc::channel();
    let base = base.to_owned();
    std::thread::spawn(move || {
        let outcome = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(run(base)),
            Err(e) => Err(format!("runtime: {e}")),
        };
        let _ = tx.send(outcome);
    });
    match rx.recv_timeout(SCENARIO_TIMEOUT) {
        Ok(outcome) => outcome,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "timed out after {} s (the scenario's thread is still running)",
            SCENARIO_TIMEOUT.as_secs()
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err("the scenario panicked".to_owned())
        }
    }
}

fn builder(url: &str) -> ClientBuilder {
    builder_offering(url, mode().deflate)
}

fn builder_offering(url: &str, deflate: Option<DeflateConfig>) -> ClientBuilder {
    let config = hybi_tokio::default_config().with_deflate(deflate);
    let builder = ClientBuilder::new(url);
    let builder = match &mode().tls {
        Some(tls) => builder.tls_config(Arc::clone(tls)),
        None => builder,
    };
    builder
        .config(config)
        .connect_timeout(Duration::from_secs(5))
        .handshake_timeout(Duration::from_secs(10))
}

async fn open(base: &str, path: &str) -> Result<(Ws, Response), String> {
    builder(&format!("{base}{path}"))
        .connect()
        .await
        .map_err(|e| format!("connect {path}: {e}"))
}

/// The next message, within [`READ_TIMEOUT`].
async fn read(ws: &mut Ws) -> hybi_tokio::Result<Message> {
    match tokio::time::timeout(READ_TIMEOUT, ws.recv()).await {
        Ok(result) => result,
        Err(_) => Err(Error::Io(std::io::ErrorKind::TimedOut.into())),
    }
}

/// The next data message (pings and pongs skipped).
async fn next_data(ws: &mut Ws) -> Result<Message, String> {
    loop {
        match read(ws).await {
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(m) => return Ok(m),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// Closes with `code` and `reason` and returns the server's close answer (messages
/// before it are skipped).
async fn close_and_wait(ws: &mut Ws, code: CloseCode, reason: &str) -> Result<CloseInfo, String> {
    ws.close(code, reason)
        .await
        .map_err(|e| format!("close: {e}"))?;
    loop {
        match read(ws).await {
            Ok(Message::Close(info)) => return Ok(info),
            Ok(_) => {}
            Err(e) => return Err(format!("waiting for the close answer: {e}")),
        }
    }
}

/// Closes with 1000 and expects the server's close answer and then the end of TCP.
async fn finish(mut ws: Ws) -> Outcome {
    let theirs = close_and_wait(&mut ws, CloseCode::NORMAL, "done").await?;
    if theirs.code != CloseCode::NORMAL {
        return Err(format!(
            "close answer {} {:?}, expected 1000",
            theirs.code, theirs.reason
        ));
    }
    expect_transport_closed(&mut ws).await
}

/// After the closing handshake, the next read reports the end of the connection.
async fn expect_transport_closed(ws: &mut Ws) -> Outcome {
    match read(ws).await {
        Err(Error::ConnectionClosed) => Ok(()),
        other => Err(format!(
            "after the closing handshake: {other:?}, expected ConnectionClosed"
        )),
    }
}

async fn send(ws: &mut Ws, message: Message) -> Outcome {
    ws.send(message).await.map_err(|e| format!("send: {e}"))
}

async fn expect_text(ws: &mut Ws, want: &str) -> Outcome {
    match next_data(ws).await? {
        Message::Text(t) if t == want => Ok(()),
        Message::Text(t) => Err(format!("echo {t:?}, expected {want:?}")),
        other => Err(format!("echo {}, expected text", describe(&other))),
    }
}

async fn expect_binary(ws: &mut Ws, want: &[u8]) -> Outcome {
    match next_data(ws).await? {
        Message::Binary(b) if b == want => Ok(()),
        Message::Binary(b) => Err(format!(
            "echo of {} bytes differs from the {} sent (first difference at {:?})",
            b.len(),
            want.len(),
            b.iter().zip(want).position(|(x, y)| x != y)
        )),
        other => Err(format!("echo {}, expected binary", describe(&other))),
    }
}

/// Sends `text` and expects it back.
async fn echo_text(ws: &mut Ws, text: &str) -> Outcome {
    send(ws, Message::Text(text.to_owned())).await?;
    expect_text(ws, text).await
}

/// Sends `data` and expects it back.
async fn echo_binary(ws: &mut Ws, data: &[u8]) -> Outcome {
    send(ws, Message::Binary(data.to_vec())).await?;
    expect_binary(ws, data).await
}

/// Sends one message in fragments of `kind`, the pieces `cuts` make of `data`.
async fn send_fragments(ws: &mut Ws, kind: MessageKind, data: &[u8], cuts: &[usize]) -> Outcome {
    for (i, w) in cuts.windows(2).enumerate() {
        let fin = i == cuts.len() - 2;
        ws.send_fragment(kind, &data[w[0]..w[1]], fin)
            .await
            .map_err(|e| format!("send fragment {i}: {e}"))?;
    }
    Ok(())
}

fn describe(m: &Message) -> String {
    match m {
        Message::Text(t) => format!("text of {} bytes", t.len()),
        Message::Binary(b) => format!("binary of {} bytes", b.len()),
        Message::Close(c) => format!("close {} {:?}", c.code, c.reason),
        other => format!("{other:?}"),
    }
}

/// Pseudo-random bytes (xorshift64*, seeded from the clock): content the server
/// cannot guess, compared byte for byte.
fn random_bytes(len: usize) -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A unique id for the close report.
fn unique_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("hybi-tokio-{}-{nanos}", std::process::id())
}

/// 64 KiB of text that compresses well: 2048 lines of 32 bytes, each with its number,
/// Greek and an emoji.
fn compressible_text() -> String {
    (0..2048)
        .map(|i| format!("{i:04x}:κόσμε🚀 compressible"))
        .collect()
}

/// 1 MiB, mostly zeros: 16 random bytes at the start of every 4 KiB.
fn mostly_zeros() -> Vec<u8> {
    let mut data = vec![0u8; 1 << 20];
    let noise = random_bytes(data.len() / 4096 * 16);
    for (block, bytes) in data.chunks_mut(4096).zip(noise.chunks(16)) {
        block[..16].copy_from_slice(bytes);
    }
    data
}

/// Deflate mode: `/echo` agreed permessage-deflate (the response and the connection
/// say so), and compressible messages echo exactly, then an empty message and a
/// message with an empty last fragment, each followed by another. Plain mode: offered
/// all the same, the server declines it, and the same messages echo uncompressed.
async fn deflate_negotiated(base: String) -> Outcome {
    let on = mode().deflate.is_some();
    let (mut ws, response) = builder_offering(&format!("{base}/echo"), Some(deflate_offer()))
        .connect()
        .await
        .map_err(|e| format!("connect /echo: {e}"))?;
    let answer = response
        .headers()
        .get_str("sec-websocket-extensions")
        .map_or_else(|| "(none)".to_owned(), |v| format!("{v:?}"));
    println!("INFO deflate_negotiated Sec-WebSocket-Extensions: {answer}");
    match (on, response.deflate()) {
        (true, None) => {
            return Err(format!(
                "permessage-deflate offered but not agreed (Sec-WebSocket-Extensions: {answer})"
            ));
        }
        (false, Some(agreed)) => {
            return Err(format!(
                "the server agreed {agreed:?} though it has compression off (plain mode)"
            ));
        }
        _ => {}
    }
    if ws.deflate() != response.deflate() {
        return Err(format!(
            "the connection compresses with {:?}, the response agreed {:?}",
            ws.deflate(),
            response.deflate()
        ));
    }
    let text = compressible_text();
    if text.len() != 64 << 10 {
        return Err(format!("the test text is {} bytes, not 64 KiB", text.len()));
    }
    send(&mut ws, Message::Text(text.clone())).await?;
    match next_data(&mut ws).await? {
        Message::Text(t) if t == text => {}
        other => {
            return Err(format!(
                "echo {}, expected the 64 KiB of text sent",
                describe(&other)
            ));
        }
    }
    echo_binary(&mut ws, &mostly_zeros()).await?;
    // Nothing to compress after a flush: an empty message, and a message whose last
    // fragment is empty, each followed by one more (the stream must stay in step).
    for text in ["", "after an empty message"] {
        echo_text(&mut ws, text).await?;
    }
    let parts = "two fragments, then an empty one";
    send_fragments(
        &mut ws,
        MessageKind::Text,
        parts.as_bytes(),
        &[0, 15, 32, 32],
    )
    .await?;
    expect_text(&mut ws, parts).await?;
    echo_text(&mut ws, "after an empty last fragment").await?;
    finish(ws).await
}

async fn text_utf8(base: String) -> Outcome {
    let (mut ws, _) = open(&base, "/echo").await?;
    for text in [UTF8_TEXT, "plain ascii", "κόσμε", "🎉🎉🎉"] {
        echo_text(&mut ws, text).await?;
    }
    finish(ws).await
}

async fn text_empty(base: String) -> Outcome {
    let (mut ws, _) = open(&base, "/echo").await?;
    echo_text(&mut ws, "").await?;
    finish(ws).await
}

/// About 1 MiB of text, mostly multi-byte characters, so that characters straddle
/// every read and buffer boundary on the way.
async fn text_big(base: String) -> Outcome {
    let (mut ws, _) = open(&base, "/echo").await?;
    let text = "κόσμε🚀a".repeat(70_000);
    send(&mut ws, Message::Text(text.clone())).await?;
    match next_data(&mut ws).await? {
        Message::Text(t) if t == text => {}
        other => {
            return Err(format!(
                "echo {}, expected the {} bytes sent",
                describe(&other),
                text.len()
            ));
        }
    }
    finish(ws).await
}

async fn binary(base: String, len: usize) -> Outcome {
    let (mut ws, _) = open(&base, "/echo").await?;
    echo_binary(&mut ws, &random_bytes(len)).await?;
    finish(ws).await
}

/// 1000 small messages written back to back by one half while the other reads their
/// echoes, in order.
async fn burst(base: String) -> Outcome {
    let (ws, _) = open(&base, "/echo").await?;
    let (mut reader, mut writer) = ws.split();
    let message = |i| format!("message {i} κόσμε");
    let sending = async {
        for i in 0..1000 {
            writer
                .send_text(&message(i))
                .await
                .map_err(|e| format!("send {i}: {e}"))?;
        }
        Ok::<_, String>(())
    };
    let receiving = async {
        for i in 0..1000 {
            let want = message(i);
            match tokio::time::timeout(READ_TIMEOUT, reader.recv()).await {
                Ok(Ok(Message::Text(t))) if t == want => {}
                Ok(Ok(other)) => {
                    return Err(format!(
                        "message {i}: got {}, expected {want:?}",
                        describe(&other)
                    ));
                }
                Ok(Err(e)) => return Err(format!("read {i}: {e}")),
                Err(_) => return Err(format!("read {i}: timed out")),
            }
        }
        Ok(())
    };
    let (sent, received) = tokio::join!(sending, receiving);
    sent?;
    received?;
    let ws = reader
        .reunite(writer)
        .map_err(|_| "the halves do not reunite".to_owned())?;
    finish(ws).await
}

/// A text message in four fragments, split inside multi-byte characters.
async fn fragmented_text(base: String) -> Outcome {
    let (mut ws, _) = open(&base, "/echo").await?;
    let bytes = UTF8_TEXT.as_bytes();
    // 'κ' is bytes 7-8, '🚀' bytes 19-22 and the zero-width joiner 28-30: cut inside each.
    send_fragments(
        &mut ws,
        MessageKind::Text,
        bytes,
        &[0, 8, 22, 30, bytes.len()],
    )
    .await?;
    expect_text(&mut ws, UTF8_TEXT).await?;
    finish(ws).await
}

/// A binary message in five fragments (one of them empty).
async fn fragmented_binary(base: String) -> Outcome {
    let (mut ws, _) = open(&base, "/echo").await?;
    let data = random_bytes(70_000);
    let cuts = [0, 1, 1000, 1000, 66_000, data.len()];
    send_fragments(&mut ws, MessageKind::Binary, &data, &cuts).await?;
    expect_binary(&mut ws, &data).await?;
    finish(ws).await
}

/// A ping between the fragments of a text message: the pong and the whole message
/// come back (control frames may interleave fragments, RFC 6455 §5.4).
async fn fragmented_with_ping(base: String) -> Outcome {
    let (mut ws, _) = open(&base, "/echo").await?;
    let parts = ["first κό", "σμε second", " third"];
    for (i, part) in parts.iter().enumerate() {
        if i == 1 {
            ws.ping(b"between fragments")
                .await
                .map_err(|e| format!("ping: {e}"))?;
        }
        ws.send_fragment(MessageKind::Text, part.as_bytes(), i == parts.len() - 1)
            .await
            .map_err(|e| format!("send fragment {i}: {e}"))?;
    }
    let whole = parts.concat();
    let (mut pong, mut text) = (false, false);
    while !(pong && text) {
        match read(&mut ws).await {
            Ok(Message::Pong(p)) if p == b"between fragments" && !pong => pong = true,
            Ok(Message::Text(t)) if t == whole && !text => text = true,
            Ok(other) => {
                return Err(format!(
                    "got {}, expected the pong and {whole:?}",
                    describe(&other)
                ));
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    finish(ws).await
}

async fn ping_pong(base: String) -> Outcome {
    let (mut ws, _) = open(&base, "/echo").await?;
    let payload = "ping κόσμε 123".as_bytes();
    ws.ping(payload).await.map_err(|e| format!("ping: {e}"))?;
    loop {
        match read(&mut ws).await {
            Ok(Message::Pong(p)) if p == payload => break,
            Ok(Message::Pong(p)) => {
                return Err(format!("pong payload {p:?}, expected {payload:?}"));
            }
            Ok(Message::Ping(_)) => {}
            Ok(other) => return Err(format!("got {}, expected a pong", describe(&other))),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    // The connection still echoes after the ping.
    echo_text(&mut ws, "after ping").await?;
    finish(ws).await
}

/// The server pings us; our automatic pong carries its payload back.
async fn server_ping(base: String) -> Outcome {
    let (mut ws, _) = open(&base, "/ping").await?;
    send(&mut ws, Message::Text("ping me".into())).await?;
    expect_text(&mut ws, "pong: server ping κόσμε").await?;
    finish(ws).await
}

/// We close with 4001 "client bye"; the server answers with the same code, and
/// reports on a new connection that it saw exactly that.
async fn close_from_client(base: String) -> Outcome {
    close_and_report(&base, 4001, "client bye").await
}

/// The longest close reason (123 bytes), in two-byte characters.
async fn close_reason_utf8(base: String) -> Outcome {
    close_and_report(&base, 4003, &format!("{}!", "é".repeat(61))).await
}

async fn close_and_report(base: &str, code: u16, reason: &str) -> Outcome {
    let id = unique_id();
    let (mut ws, _) = open(base, &format!("/report-close?id={id}")).await?;
    echo_text(&mut ws, "hello").await?;
    let theirs = close_and_wait(&mut ws, CloseCode(code), reason).await?;
    if theirs.code != CloseCode(code) {
        return Err(format!(
            "server answered close with {} {:?}, expected the code {code} echoed",
            theirs.code, theirs.reason
        ));
    }
    expect_transport_closed(&mut ws).await?;
    let (mut report, _) = open(base, &format!("/last-close?id={id}")).await?;
    let want = format!("{code} {reason}");
    match next_data(&mut report).await? {
        Message::Text(t) if t == want => Ok(()),
        Message::Text(t) => Err(format!("server saw {t:?}, expected {want:?}")),
        other => Err(format!("/last-close sent {}", describe(&other))),
    }
}

/// The server closes with 4002 "server bye" after our first message.
async fn close_from_server(base: String) -> Outcome {
    let (mut ws, _) = open(&base, "/close").await?;
    send(&mut ws, Message::Text("close please".into())).await?;
    match next_data(&mut ws).await? {
        Message::Close(c) if c.code == CloseCode(4002) && c.reason == "server bye" => {}
        other => {
            return Err(format!(
                "got {}, expected close 4002 \"server bye\"",
                describe(&other)
            ));
        }
    }
    if ws.peer_close().map(|c| c.code) != Some(CloseCode(4002)) {
        return Err(format!("peer_close() = {:?}", ws.peer_close()));
    }
    expect_transport_closed(&mut ws).await
}

async fn subprotocol(base: String) -> Outcome {
    let (mut ws, response) = builder(&format!("{base}/subprotocol"))
        .protocol("nope")
        .protocol("chat.v2")
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if response.protocol() != Some("chat.v2") {
        return Err(format!(
            "subprotocol {:?}, expected \"chat.v2\"",
            response.protocol()
        ));
    }
    echo_text(&mut ws, "v2").await?;
    finish(ws).await
}

async fn subprotocol_none(base: String) -> Outcome {
    let (mut ws, response) = open(&base, "/subprotocol").await?;
    if let Some(p) = response.protocol() {
        return Err(format!("subprotocol {p:?} though none was offered"));
    }
    echo_text(&mut ws, "none").await?;
    finish(ws).await
}

async fn forbidden(base: String) -> Outcome {
    match builder(&format!("{base}/forbidden")).connect().await {
        Ok(_) => Err("the upgrade was accepted".into()),
        Err(Error::Handshake(e)) if e.status() == Some(403) => Ok(()),
        Err(e) => Err(format!("{e}, expected status 403")),
    }
}

/// 20 connections at once, one task each, each echoing 50 messages.
async fn concurrent(base: String) -> Outcome {
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let base = base.clone();
            tokio::spawn(async move {
                let (mut ws, _) = open(&base, "/echo").await?;
                for i in 0..50 {
                    echo_text(&mut ws, &format!("connection {n} message {i}")).await?;
                }
                finish(ws).await
            })
        })
        .collect();
    let mut errors = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(format!("connection {n}: {e}")),
            Err(e) => errors.push(format!("connection {n}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
