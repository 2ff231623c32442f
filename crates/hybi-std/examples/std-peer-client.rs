//! The client side of the interoperability contract in `.ci/peers`: runs the shared
//! scenario list (the same one the Python `websockets` and Node `ws` clients there
//! run) against a server implementing the contract, built on hybi-std's client.
//!
//! Usage: `cargo run --release -p hybi-std --example std-peer-client [BASE_URL [SCENARIO,...]]`
//! (default ws://127.0.0.1:9011, every scenario).
//!
//! Prints one line per scenario, `RESULT <scenario> PASS` or `RESULT <scenario> FAIL
//! <why>`, and exits with 1 if any failed.
//!
//! `PEERS_DEFLATE=1` in the environment is the suite's deflate mode: every connection
//! offers permessage-deflate (`DeflateConfig::default()` with a threshold of 0, so
//! every message is sent compressed once it is agreed) and takes frames up to the
//! message limit (64 MiB: a compressed frame of 16 MiB of random bytes is a little
//! larger than that), and `deflate_negotiated` asserts the server agreed. `0` or unset:
//! nothing is offered, except on `deflate_negotiated`'s connection, where the server
//! (compression off) must decline; default limits. Any other value is an error (exit 2).
//!
//! `PEERS_TLS=1` is the suite's TLS mode: the base URL is a `wss://` one, and the
//! server's certificate is checked against the CA certificate in the PEM file
//! `PEERS_TLS_CA` (needs the `tls` feature).

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hybi_std::hybi::deflate::DeflateConfig;
use hybi_std::{
    ClientBuilder, CloseCode, Error, MaybeTls, Message, MessageKind, Response, WebSocket,
};

type Outcome = Result<(), String>;

/// A scenario: its name and what runs it against a base URL.
type Scenario = (&'static str, fn(&str) -> Outcome);

/// Every scenario, in the order the other clients run them too.
const SCENARIOS: &[Scenario] = &[
    ("deflate_negotiated", deflate_negotiated),
    ("text_utf8", text_utf8),
    ("text_empty", text_empty),
    ("text_1MiB_utf8", text_big),
    ("binary_0", |b| binary(b, 0)),
    ("binary_125", |b| binary(b, 125)),
    ("binary_126", |b| binary(b, 126)),
    ("binary_65535", |b| binary(b, 65535)),
    ("binary_65536", |b| binary(b, 65536)),
    ("binary_16MiB", |b| binary(b, 16 << 20)),
    ("burst_1000", burst),
    ("fragmented_text", fragmented_text),
    ("fragmented_binary", fragmented_binary),
    ("fragmented_with_ping", fragmented_with_ping),
    ("ping_pong", ping_pong),
    ("server_ping", server_ping),
    ("close_from_client", close_from_client),
    ("close_reason_utf8_123B", close_reason_utf8),
    ("close_from_server", close_from_server),
    ("subprotocol", subprotocol),
    ("subprotocol_none", subprotocol_none),
    ("forbidden_403", forbidden),
    ("concurrent_20", concurrent),
];

const UTF8_TEXT: &str = "Hello, κόσμε! 🚀 👩‍💻 ∑ — ok";

/// What every connection offers: the suite's mode, read once from `PEERS_DEFLATE`.
static DEFLATE: OnceLock<Option<DeflateConfig>> = OnceLock::new();

/// The offer of the deflate mode: the defaults, every message compressed.
fn deflate_offer() -> DeflateConfig {
    DeflateConfig::default().with_threshold(0)
}

/// `PEERS_DEFLATE`: `1` is the deflate mode, `0` or unset the plain one; anything
/// else ends the program.
fn deflate_mode() -> Option<DeflateConfig> {
    match std::env::var_os("PEERS_DEFLATE") {
        Some(v) if v == "1" => Some(deflate_offer()),
        Some(v) if v == "0" || v.is_empty() => None,
        None => None,
        Some(v) => {
            eprintln!("peer-client: PEERS_DEFLATE must be 1 or 0, not {v:?}");
            std::process::exit(2);
        }
    }
}

fn deflate() -> Option<DeflateConfig> {
    *DEFLATE.get_or_init(deflate_mode)
}

fn main() {
    deflate();
    #[cfg(feature = "tls")]
    TLS.get_or_init(tls_mode);
    #[cfg(not(feature = "tls"))]
    if std::env::var_os("PEERS_TLS").is_some_and(|v| v == "1") {
        eprintln!("peer-client: PEERS_TLS=1 needs hybi-std's tls feature");
        std::process::exit(2);
    }
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

/// A scenario may take this long, as long as one read may wait: every scenario takes
/// a few seconds at most, and one that hangs costs the run no more than this.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a scenario on a thread of its own, so that one that never returns (a send
/// that spins, say) fails after [`SCENARIO_TIMEOUT`] instead of stopping the run. Such
/// a thread is left behind, still running, until the program exits.
fn run_limited(run: fn(&str) -> Outcome, base: &str) -> Outcome {
    let (tx, rx) = std::sync::mpsc::channel();
    let base = base.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(run(&base));
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
    builder_offering(url, deflate())
}

/// The suite's TLS mode from `PEERS_TLS`: `1` trusts the CA in `PEERS_TLS_CA`, `0` or
/// unset is plain. A bad value or file ends the program.
#[cfg(feature = "tls")]
fn tls_mode() -> Option<std::sync::Arc<hybi_std::rustls::ClientConfig>> {
    use hybi_std::rustls::pki_types::CertificateDer;
    use hybi_std::rustls::pki_types::pem::PemObject;

    match std::env::var_os("PEERS_TLS") {
        Some(v) if v == "1" => {}
        Some(v) if v == "0" || v.is_empty() => return None,
        None => return None,
        Some(v) => {
            eprintln!("peer-client: PEERS_TLS must be 1 or 0, not {v:?}");
            std::process::exit(2);
        }
    }
    let fail = |e: &dyn std::fmt::Display| -> ! {
        eprintln!("peer-client: PEERS_TLS_CA: {e}");
        std::process::exit(2);
    };
    let ca = std::env::var_os("PEERS_TLS_CA").unwrap_or_else(|| fail(&"not set"));
    let mut roots = hybi_std::rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).unwrap_or_else(|e| fail(&e)) {
        roots
            .add(cert.unwrap_or_else(|e| fail(&e)))
            .unwrap_or_else(|e| fail(&e));
    }
    let provider = std::sync::Arc::new(hybi_std::rustls::crypto::ring::default_provider());
    let config = hybi_std::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail(&e))
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(std::sync::Arc::new(config))
}

#[cfg(feature = "tls")]
static TLS: OnceLock<Option<std::sync::Arc<hybi_std::rustls::ClientConfig>>> = OnceLock::new();

fn builder_offering(url: &str, deflate: Option<DeflateConfig>) -> ClientBuilder {
    let config = hybi_std::default_config().with_deflate(deflate);
    let builder = ClientBuilder::new(url);
    #[cfg(feature = "tls")]
    let builder = match TLS.get_or_init(tls_mode) {
        Some(tls) => builder.tls_config(std::sync::Arc::clone(tls)),
        None => builder,
    };
    builder
        .config(config)
        .connect_timeout(Duration::from_secs(5))
        .handshake_timeout(Duration::from_secs(10))
        .read_timeout(Some(Duration::from_secs(30)))
}

fn open(base: &str, path: &str) -> Result<(WebSocket<MaybeTls>, Response), String> {
    builder(&format!("{base}{path}"))
        .connect()
        .map_err(|e| format!("connect {path}: {e}"))
}

/// The next data message (pings and pongs skipped).
fn next_data(ws: &mut WebSocket<MaybeTls>) -> Result<Message, String> {
    loop {
        match ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(m) => return Ok(m),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// Closes with 1000 and expects the server's close answer and then the end of TCP.
fn finish(mut ws: WebSocket<MaybeTls>) -> Outcome {
    let theirs = ws
        .close_and_wait(CloseCode::NORMAL, "done")
        .map_err(|e| format!("close: {e}"))?;
    if theirs.code != CloseCode::NORMAL {
        return Err(format!(
            "close answer {} {:?}, expected 1000",
            theirs.code, theirs.reason
        ));
    }
    expect_transport_closed(&mut ws)
}

/// After the closing handshake, the next read reports the end of the connection.
fn expect_transport_closed(ws: &mut WebSocket<MaybeTls>) -> Outcome {
    match ws.read() {
        Err(Error::ConnectionClosed) => Ok(()),
        other => Err(format!(
            "after the closing handshake: {other:?}, expected ConnectionClosed"
        )),
    }
}

fn expect_text(ws: &mut WebSocket<MaybeTls>, want: &str) -> Outcome {
    match next_data(ws)? {
        Message::Text(t) if t == want => Ok(()),
        Message::Text(t) => Err(format!("echo {t:?}, expected {want:?}")),
        other => Err(format!("echo {}, expected text", describe(&other))),
    }
}

fn expect_binary(ws: &mut WebSocket<MaybeTls>, want: &[u8]) -> Outcome {
    match next_data(ws)? {
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
    format!("hybi-{}-{nanos}", std::process::id())
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
fn deflate_negotiated(base: &str) -> Outcome {
    let on = deflate().is_some();
    let (mut ws, response) = builder_offering(&format!("{base}/echo"), Some(deflate_offer()))
        .connect()
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
    if ws.connection().deflate() != response.deflate() {
        return Err(format!(
            "the connection compresses with {:?}, the response agreed {:?}",
            ws.connection().deflate(),
            response.deflate()
        ));
    }
    let text = compressible_text();
    if text.len() != 64 << 10 {
        return Err(format!("the test text is {} bytes, not 64 KiB", text.len()));
    }
    ws.send_text(&text).map_err(|e| format!("send: {e}"))?;
    match next_data(&mut ws)? {
        Message::Text(t) if t == text => {}
        other => {
            return Err(format!(
                "echo {}, expected the 64 KiB of text sent",
                describe(&other)
            ));
        }
    }
    let data = mostly_zeros();
    ws.send_binary(&data).map_err(|e| format!("send: {e}"))?;
    expect_binary(&mut ws, &data)?;
    // Nothing to compress after a flush: an empty message, and a message whose last
    // fragment is empty, each followed by one more (the stream must stay in step).
    for text in ["", "after an empty message"] {
        ws.send_text(text).map_err(|e| format!("send: {e}"))?;
        expect_text(&mut ws, text)?;
    }
    let parts = ["two fragments, ", "then an empty one", ""];
    for (i, part) in parts.iter().enumerate() {
        ws.send_fragment(MessageKind::Text, part.as_bytes(), i == parts.len() - 1)
            .map_err(|e| format!("send fragment {i}: {e}"))?;
    }
    expect_text(&mut ws, &parts.concat())?;
    ws.send_text("after an empty last fragment")
        .map_err(|e| format!("send: {e}"))?;
    expect_text(&mut ws, "after an empty last fragment")?;
    finish(ws)
}

fn text_utf8(base: &str) -> Outcome {
    let (mut ws, _) = open(base, "/echo")?;
    for text in [UTF8_TEXT, "plain ascii", "κόσμε", "🎉🎉🎉"] {
        ws.send_text(text).map_err(|e| format!("send: {e}"))?;
        expect_text(&mut ws, text)?;
    }
    finish(ws)
}

fn text_empty(base: &str) -> Outcome {
    let (mut ws, _) = open(base, "/echo")?;
    ws.send_text("").map_err(|e| format!("send: {e}"))?;
    expect_text(&mut ws, "")?;
    finish(ws)
}

/// About 1 MiB of text, mostly multi-byte characters, so that characters straddle
/// every read and buffer boundary on the way.
fn big_text() -> String {
    "κόσμε🚀a".repeat(70_000)
}

fn text_big(base: &str) -> Outcome {
    let (mut ws, _) = open(base, "/echo")?;
    let text = big_text();
    ws.send_text(&text).map_err(|e| format!("send: {e}"))?;
    match next_data(&mut ws)? {
        Message::Text(t) if t == text => {}
        other => {
            return Err(format!(
                "echo {}, expected the {} bytes sent",
                describe(&other),
                text.len()
            ));
        }
    }
    finish(ws)
}

fn binary(base: &str, len: usize) -> Outcome {
    let (mut ws, _) = open(base, "/echo")?;
    let data = random_bytes(len);
    ws.send_binary(&data).map_err(|e| format!("send: {e}"))?;
    expect_binary(&mut ws, &data)?;
    finish(ws)
}

/// 1000 small messages written back to back, echoed in order.
fn burst(base: &str) -> Outcome {
    let (ws, _) = open(base, "/echo")?;
    let (mut reader, writer) = ws.split().map_err(|e| format!("split: {e}"))?;
    let sender = std::thread::spawn(move || -> Outcome {
        for i in 0..1000 {
            writer
                .send_text(&format!("message {i} κόσμε"))
                .map_err(|e| format!("send {i}: {e}"))?;
        }
        Ok(())
    });
    for i in 0..1000 {
        let want = format!("message {i} κόσμε");
        match reader.read() {
            Ok(Message::Text(t)) if t == want => {}
            Ok(other) => {
                return Err(format!(
                    "message {i}: got {}, expected {want:?}",
                    describe(&other)
                ));
            }
            Err(e) => return Err(format!("read {i}: {e}")),
        }
    }
    sender.join().map_err(|_| "sender panicked".to_owned())??;
    let writer = reader.writer();
    writer
        .close(CloseCode::NORMAL, "done")
        .map_err(|e| format!("close: {e}"))?;
    loop {
        match reader.read() {
            Ok(Message::Close(c)) if c.code == CloseCode::NORMAL => break,
            Ok(Message::Close(c)) => return Err(format!("close answer {} {:?}", c.code, c.reason)),
            Ok(_) => {}
            Err(e) => return Err(format!("waiting for the close answer: {e}")),
        }
    }
    match reader.read() {
        Err(Error::ConnectionClosed) => Ok(()),
        other => Err(format!("after the closing handshake: {other:?}")),
    }
}

/// A text message in four fragments, split inside multi-byte characters.
fn fragmented_text(base: &str) -> Outcome {
    let (mut ws, _) = open(base, "/echo")?;
    let bytes = UTF8_TEXT.as_bytes();
    // 'κ' is bytes 7-8, '🚀' bytes 19-22 and the zero-width joiner 28-30: cut inside each.
    let cuts = [0, 8, 22, 30, bytes.len()];
    for (i, w) in cuts.windows(2).enumerate() {
        let fin = i == cuts.len() - 2;
        ws.send_fragment(MessageKind::Text, &bytes[w[0]..w[1]], fin)
            .map_err(|e| format!("send fragment {i}: {e}"))?;
    }
    expect_text(&mut ws, UTF8_TEXT)?;
    finish(ws)
}

/// A binary message in five fragments (one of them empty).
fn fragmented_binary(base: &str) -> Outcome {
    let (mut ws, _) = open(base, "/echo")?;
    let data = random_bytes(70_000);
    let cuts = [0, 1, 1000, 1000, 66_000, data.len()];
    for (i, w) in cuts.windows(2).enumerate() {
        let fin = i == cuts.len() - 2;
        ws.send_fragment(MessageKind::Binary, &data[w[0]..w[1]], fin)
            .map_err(|e| format!("send fragment {i}: {e}"))?;
    }
    expect_binary(&mut ws, &data)?;
    finish(ws)
}

/// Pings between the fragments of a text message: the pong and the whole message come
/// back (control frames may interleave fragments, RFC 6455 §5.4).
fn fragmented_with_ping(base: &str) -> Outcome {
    let (mut ws, _) = open(base, "/echo")?;
    let parts = ["first κό", "σμε second", " third"];
    let send = |ws: &mut WebSocket<MaybeTls>, i: usize| {
        ws.send_fragment(MessageKind::Text, parts[i].as_bytes(), i == parts.len() - 1)
            .map_err(|e| format!("send fragment {i}: {e}"))
    };
    send(&mut ws, 0)?;
    ws.ping(b"between fragments")
        .map_err(|e| format!("ping: {e}"))?;
    send(&mut ws, 1)?;
    send(&mut ws, 2)?;
    let whole = parts.concat();
    let (mut pong, mut text) = (false, false);
    while !(pong && text) {
        match ws.read() {
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
    finish(ws)
}

fn ping_pong(base: &str) -> Outcome {
    let (mut ws, _) = open(base, "/echo")?;
    let payload = "ping κόσμε 123".as_bytes();
    ws.ping(payload).map_err(|e| format!("ping: {e}"))?;
    loop {
        match ws.read() {
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
    ws.send_text("after ping")
        .map_err(|e| format!("send: {e}"))?;
    expect_text(&mut ws, "after ping")?;
    finish(ws)
}

/// The server pings us; our automatic pong carries its payload back.
fn server_ping(base: &str) -> Outcome {
    let (mut ws, _) = open(base, "/ping")?;
    ws.send_text("ping me").map_err(|e| format!("send: {e}"))?;
    expect_text(&mut ws, "pong: server ping κόσμε")?;
    finish(ws)
}

/// We close with 4001 "client bye"; the server answers with the same code, and
/// reports on a new connection that it saw exactly that.
fn close_from_client(base: &str) -> Outcome {
    close_and_report(base, 4001, "client bye")
}

/// The longest close reason (123 bytes), in two-byte characters.
fn close_reason_utf8(base: &str) -> Outcome {
    close_and_report(base, 4003, &format!("{}!", "é".repeat(61)))
}

fn close_and_report(base: &str, code: u16, reason: &str) -> Outcome {
    let id = unique_id();
    let (mut ws, _) = open(base, &format!("/report-close?id={id}"))?;
    ws.send_text("hello").map_err(|e| format!("send: {e}"))?;
    expect_text(&mut ws, "hello")?;
    let theirs = ws
        .close_and_wait(CloseCode(code), reason)
        .map_err(|e| format!("close: {e}"))?;
    if theirs.code != CloseCode(code) {
        return Err(format!(
            "server answered close with {} {:?}, expected the code {code} echoed",
            theirs.code, theirs.reason
        ));
    }
    expect_transport_closed(&mut ws)?;
    let (mut report, _) = open(base, &format!("/last-close?id={id}"))?;
    let want = format!("{code} {reason}");
    match next_data(&mut report)? {
        Message::Text(t) if t == want => Ok(()),
        Message::Text(t) => Err(format!("server saw {t:?}, expected {want:?}")),
        other => Err(format!("/last-close sent {}", describe(&other))),
    }
}

/// The server closes with 4002 "server bye" after our first message.
fn close_from_server(base: &str) -> Outcome {
    let (mut ws, _) = open(base, "/close")?;
    ws.send_text("close please")
        .map_err(|e| format!("send: {e}"))?;
    match next_data(&mut ws)? {
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
    expect_transport_closed(&mut ws)
}

fn subprotocol(base: &str) -> Outcome {
    let (mut ws, response) = builder(&format!("{base}/subprotocol"))
        .protocol("nope")
        .protocol("chat.v2")
        .connect()
        .map_err(|e| format!("connect: {e}"))?;
    if response.protocol() != Some("chat.v2") {
        return Err(format!(
            "subprotocol {:?}, expected \"chat.v2\"",
            response.protocol()
        ));
    }
    ws.send_text("v2").map_err(|e| format!("send: {e}"))?;
    expect_text(&mut ws, "v2")?;
    finish(ws)
}

fn subprotocol_none(base: &str) -> Outcome {
    let (mut ws, response) = open(base, "/subprotocol")?;
    if let Some(p) = response.protocol() {
        return Err(format!("subprotocol {p:?} though none was offered"));
    }
    ws.send_text("none").map_err(|e| format!("send: {e}"))?;
    expect_text(&mut ws, "none")?;
    finish(ws)
}

/// 20 connections at once, each echoing 50 messages.
fn concurrent(base: &str) -> Outcome {
    let workers: Vec<_> = (0..20)
        .map(|n| {
            let base = base.to_owned();
            std::thread::spawn(move || -> Outcome {
                let (mut ws, _) = open(&base, "/echo")?;
                for i in 0..50 {
                    let msg = format!("connection {n} message {i}");
                    ws.send_text(&msg).map_err(|e| format!("send: {e}"))?;
                    expect_text(&mut ws, &msg)?;
                }
                finish(ws)
            })
        })
        .collect();
    let mut errors = Vec::new();
    for (n, w) in workers.into_iter().enumerate() {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(format!("connection {n}: {e}")),
            Err(_) => errors.push(format!("connection {n}: panicked")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn forbidden(base: &str) -> Outcome {
    match builder(&format!("{base}/forbidden")).connect() {
        Ok(_) => Err("the upgrade was accepted".into()),
        Err(Error::Handshake(e)) if e.status() == Some(403) => Ok(()),
        Err(e) => Err(format!("{e}, expected status 403")),
    }
}
