//! wss:// on the event loop with certificates made here (rcgen): echoes between a
//! hybi-mio server and hybi-mio and hybi-std clients (and a hybi-mio client against a
//! hybi-std server), 1 MiB messages both ways, many connections at once, and the bad
//! input a TLS port or a TLS client meets: plain HTTP, TLS against a plain port,
//! garbage and truncated handshakes, a handshake that stalls, wrong-name and
//! untrusted certificates. Each ends in a typed error (client) or a dropped connection
//! with a log line (server), and the server keeps serving.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use hybi_mio::rustls::crypto::ring;
use hybi_mio::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use hybi_mio::rustls::{self, CertificateError, ClientConfig, RootCertStore, ServerConfig};
use hybi_mio::{ClientOptions, CloseCode, ConnectError, Context, Handler, Server, TlsError};
use hybi_std::Message;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

// ---------------------------------------------------------------------------------
// Certificates and configs

/// A test certificate authority.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca {
            issuer: Issuer::new(params, key),
            der,
        }
    }

    /// A server config with a certificate for `names` signed by this CA.
    fn server_config(&self, names: &[&str]) -> Arc<ServerConfig> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "hybi test server");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Arc::new(
            ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.der().clone()], key)
                .unwrap(),
        )
    }

    /// A client config that trusts only this CA.
    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        Arc::new(
            ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// A CA and a server config for `localhost` and 127.0.0.1 signed by it.
fn pki() -> (Ca, Arc<ServerConfig>) {
    let ca = Ca::new("hybi test CA");
    let config = ca.server_config(&["localhost", "127.0.0.1"]);
    (ca, config)
}

// ---------------------------------------------------------------------------------
// Servers, clients and the log

struct Echo;
impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send_binary(data);
    }
}

/// A hybi-mio TLS echo server at `/echo` (one worker) that gives up on a handshake
/// after `timeout`.
fn tls_server(config: Arc<ServerConfig>, timeout: Duration) -> Server {
    Server::builder()
        .workers(1)
        .tls(config)
        .handshake_timeout(timeout)
        .route("/echo", |_| Echo)
        .page("/", "text/plain", b"hello over https\n".to_vec())
        .bind("127.0.0.1:0")
        .unwrap()
}

fn wss(addr: SocketAddr, host: &str) -> String {
    format!("wss://{host}:{}/echo", addr.port())
}

/// What a client connection's handler heard.
#[derive(Debug)]
enum Heard {
    Open,
    Text(String),
    Binary(Vec<u8>),
    Closed(CloseCode, String),
    Failed(ConnectError),
}

/// Sends `messages` one at a time (text for `Ok`, binary for `Err`): the first once
/// open, each next one when the echo of the last came back; then closes. Reports
/// everything to the channel.
struct Client {
    tx: mpsc::Sender<Heard>,
    messages: Vec<Result<String, Vec<u8>>>,
    echoes: usize,
}

impl Handler for Client {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = self.tx.send(Heard::Open);
        self.next(ctx);
    }
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = self.tx.send(Heard::Text(text.to_owned()));
        self.echoed(ctx);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = self.tx.send(Heard::Binary(data.to_vec()));
        self.echoed(ctx);
    }
    fn on_close(&mut self, _: &mut Context<'_>, code: CloseCode, reason: &str) {
        let _ = self.tx.send(Heard::Closed(code, reason.to_owned()));
    }
    fn on_connect_error(&mut self, _: &mut Context<'_>, error: ConnectError) {
        let _ = self.tx.send(Heard::Failed(error));
    }
}

impl Client {
    fn echoed(&mut self, ctx: &mut Context<'_>) {
        self.echoes += 1;
        self.next(ctx);
    }

    fn next(&mut self, ctx: &mut Context<'_>) {
        let _ = match self.messages.get(self.echoes) {
            Some(Ok(text)) => ctx.send_text(text),
            Some(Err(data)) => ctx.send_binary(data),
            None => ctx.close(CloseCode::NORMAL, "done"),
        };
    }
}

/// Runs one hybi-mio client connection to `url` with `config` that sends `messages`
/// and closes; returns what it heard, up to its end.
fn run_client(
    url: &str,
    config: Arc<ClientConfig>,
    messages: Vec<Result<String, Vec<u8>>>,
) -> Vec<Heard> {
    let event_loop = Server::builder().workers(1).start().unwrap();
    let (tx, rx) = mpsc::channel();
    let options = ClientOptions::new(url)
        .tls_config(config)
        .handshake_timeout(Duration::from_secs(5));
    let client = Client {
        tx,
        messages,
        echoes: 0,
    };
    event_loop.connect_with(options, client).unwrap();
    let mut heard = Vec::new();
    loop {
        let h = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the client hung");
        let end = matches!(h, Heard::Closed(..) | Heard::Failed(_));
        heard.push(h);
        if end {
            break;
        }
    }
    event_loop.shutdown(Duration::from_millis(100));
    heard
}

/// The error a hybi-mio client connection to `url` with `config` fails with.
fn connect_error(url: &str, config: Arc<ClientConfig>) -> ConnectError {
    let started = Instant::now();
    let mut heard = run_client(url, config, vec![Ok("hi".into())]);
    assert!(started.elapsed() < Duration::from_secs(6));
    match heard.pop() {
        Some(Heard::Failed(e)) if heard.is_empty() => e,
        other => panic!("expected a connect error, got {other:?} after {heard:?}"),
    }
}

fn certificate_error(e: &ConnectError) -> &CertificateError {
    match e {
        ConnectError::Tls(tls) => tls.certificate().unwrap_or_else(|| panic!("{tls:?}")),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

/// Every log record, by message.
struct Recorder;
static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());
impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        RECORDS.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }
    fn flush(&self) {}
}

fn install_logger() {
    let _ = log::set_logger(&Recorder);
    log::set_max_level(log::LevelFilter::Info);
}

/// Waits up to 3 s for a log line that contains every one of `words`.
fn wait_for_log(words: &[&str]) -> String {
    install_logger();
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let found = RECORDS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|l| words.iter().all(|w| l.contains(w)))
            .cloned();
        if let Some(line) = found {
            return line;
        }
        assert!(Instant::now() < until, "no log line with {words:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads until the peer ends the connection (0 or an error), within `limit`;
/// returns what arrived.
fn read_to_end_within(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let until = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the server kept the connection open");
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return got, // a reset: dropped all the same
        }
    }
}

/// The server still serves a good client.
fn assert_still_serves(addr: SocketAddr, ca: &Ca) {
    let (mut ws, _) = hybi_std::ClientBuilder::new(&wss(addr, "localhost"))
        .tls_config(ca.client_config())
        .connect()
        .unwrap();
    ws.send_text("still there").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("still there".into()));
}

/// A real ClientHello for `localhost`, as a client would send it.
fn client_hello(ca: &Ca) -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(ca.client_config(), name).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    hello
}

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Round trips

#[test]
fn a_mio_client_and_a_mio_server_echo_over_wss_and_close_cleanly() {
    let (ca, config) = pki();
    let server = tls_server(config, Duration::from_secs(5));
    let addr = server.local_addr();
    let messages = vec![Ok("hello over tls".to_owned()), Err(vec![0, 1, 2, 255])];
    let heard = run_client(&wss(addr, "localhost"), ca.client_config(), messages);
    assert!(matches!(heard[0], Heard::Open), "{heard:?}");
    assert!(matches!(&heard[1], Heard::Text(t) if t == "hello over tls"));
    assert!(matches!(&heard[2], Heard::Binary(b) if b == &[0, 1, 2, 255]));
    assert!(
        matches!(&heard[3], Heard::Closed(code, _) if *code == CloseCode::NORMAL),
        "{heard:?}"
    );
    // By IP address too: the certificate names 127.0.0.1.
    let heard = run_client(&wss(addr, "127.0.0.1"), ca.client_config(), vec![]);
    assert!(matches!(heard[0], Heard::Open), "{heard:?}");
    server.shutdown(Duration::from_millis(100));
}

#[test]
fn a_hybi_std_client_echoes_over_wss_with_a_mio_server_and_gets_its_pages() {
    let (ca, config) = pki();
    let server = tls_server(config, Duration::from_secs(5));
    let addr = server.local_addr();
    let (mut ws, _) = hybi_std::ClientBuilder::new(&wss(addr, "localhost"))
        .tls_config(ca.client_config())
        .connect()
        .unwrap();
    ws.send_text("from std").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("from std".into()));
    let big = pseudo_random(1 << 20, 7);
    ws.send_binary(&big).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(big));
    ws.close(CloseCode::NORMAL, "bye").unwrap();
    // Pages are served over https.
    let tcp = TcpStream::connect(addr).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(ca.client_config(), name).unwrap();
    let mut https = rustls::StreamOwned::new(conn, tcp);
    https
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut page = Vec::new();
    let _ = https.read_to_end(&mut page);
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.ends_with("hello over https\n"), "{page}");
    server.shutdown(Duration::from_millis(100));
}

#[test]
fn a_mio_client_echoes_over_wss_with_a_hybi_std_server() {
    struct StdEcho;
    impl hybi_std::Handler for StdEcho {
        fn on_text(&mut self, peer: &hybi_std::Peer, text: &str) {
            let _ = peer.send_text(text);
        }
        fn on_binary(&mut self, peer: &hybi_std::Peer, data: &[u8]) {
            let _ = peer.send_binary(data);
        }
    }
    let (ca, config) = pki();
    let server = hybi_std::Server::builder()
        .route("/echo", |_| StdEcho)
        .tls(config)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap();
    let big = pseudo_random(1 << 20, 3);
    let messages = vec![Ok("to std".to_owned()), Err(big.clone())];
    let heard = run_client(
        &wss(server.local_addr(), "localhost"),
        ca.client_config(),
        messages,
    );
    assert!(matches!(heard[0], Heard::Open), "{heard:?}");
    assert!(matches!(&heard[1], Heard::Text(t) if t == "to std"));
    assert!(matches!(&heard[2], Heard::Binary(b) if *b == big));
    assert!(matches!(&heard[3], Heard::Closed(code, _) if *code == CloseCode::NORMAL));
}

#[test]
fn one_mib_messages_go_both_ways_between_mio_ends() {
    let (ca, config) = pki();
    let server = tls_server(config, Duration::from_secs(5));
    let addr = server.local_addr();
    let big = pseudo_random(1 << 20, 11);
    let text: String = "tls ".repeat(1 << 18);
    let messages = vec![Err(big.clone()), Ok(text.clone()), Err(big.clone())];
    let heard = run_client(&wss(addr, "localhost"), ca.client_config(), messages);
    assert_eq!(heard.len(), 5, "{heard:?}");
    assert!(matches!(&heard[1], Heard::Binary(b) if *b == big));
    assert!(matches!(&heard[2], Heard::Text(t) if *t == text));
    assert!(matches!(&heard[3], Heard::Binary(b) if *b == big));
    assert!(matches!(&heard[4], Heard::Closed(code, _) if *code == CloseCode::NORMAL));
    server.shutdown(Duration::from_millis(100));
}

#[test]
fn many_wss_connections_at_once_all_echo() {
    let (ca, config) = pki();
    let server = tls_server(config, Duration::from_secs(10));
    let addr = server.local_addr();
    let event_loop = Server::builder().workers(2).start().unwrap();
    let (tx, rx) = mpsc::channel();
    const N: usize = 200;
    for i in 0..N {
        let options = ClientOptions::new(&wss(addr, "localhost")).tls_config(ca.client_config());
        let client = Client {
            tx: tx.clone(),
            messages: vec![
                Ok(format!("message {i}")),
                Err(pseudo_random(10_000, i as u32)),
            ],
            echoes: 0,
        };
        event_loop.connect_with(options, client).unwrap();
    }
    let (mut texts, mut binaries, mut closed) = (0, 0, 0);
    while closed < N {
        match rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a client hung")
        {
            Heard::Open => {}
            Heard::Text(t) => {
                assert!(t.starts_with("message "));
                texts += 1;
            }
            Heard::Binary(b) => {
                assert_eq!(b.len(), 10_000);
                binaries += 1;
            }
            Heard::Closed(code, reason) => {
                assert_eq!(code, CloseCode::NORMAL, "{reason}");
                closed += 1;
            }
            Heard::Failed(e) => panic!("{e}"),
        }
    }
    assert_eq!((texts, binaries), (N, N));
    event_loop.shutdown(Duration::from_millis(100));
    server.shutdown(Duration::from_millis(100));
}

// ---------------------------------------------------------------------------------
// Bad input at the server

#[test]
fn a_plain_http_client_on_the_tls_port_is_answered_400_and_dropped() {
    install_logger();
    let (ca, config) = pki();
    let server = tls_server(config, Duration::from_secs(5));
    let addr = server.local_addr();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let answer = read_to_end_within(&mut tcp, Duration::from_secs(3));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("wss://"), "{answer}");
    wait_for_log(&["TLS handshake failed", "plain HTTP"]);
    assert_still_serves(addr, &ca);
    server.shutdown(Duration::from_millis(100));
}

#[test]
fn a_garbage_handshake_is_dropped_at_once_with_a_log_line() {
    install_logger();
    let (ca, config) = pki();
    let server = tls_server(config, Duration::from_secs(10));
    let addr = server.local_addr();
    let mut tcp = TcpStream::connect(addr).unwrap();
    // A handshake record header, then bytes that are no ClientHello.
    let mut garbage = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    garbage.extend(pseudo_random(64, 5));
    tcp.write_all(&garbage).unwrap();
    let started = Instant::now();
    let answer = read_to_end_within(&mut tcp, Duration::from_secs(3));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not dropped at once"
    );
    // At most an alert (a TLS record of type 21), never plaintext.
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    wait_for_log(&["TLS handshake failed"]);
    assert_still_serves(addr, &ca);
    server.shutdown(Duration::from_millis(100));
}

#[test]
fn a_truncated_handshake_is_dropped_when_the_client_leaves() {
    install_logger();
    let (ca, config) = pki();
    let server = tls_server(config, Duration::from_secs(10));
    let addr = server.local_addr();
    let hello = client_hello(&ca);
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(&hello[..hello.len() / 2]).unwrap();
    tcp.shutdown(std::net::Shutdown::Write).unwrap();
    let answer = read_to_end_within(&mut tcp, Duration::from_secs(3));
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    wait_for_log(&["TLS handshake failed"]);
    assert_still_serves(addr, &ca);
    server.shutdown(Duration::from_millis(100));
}

#[test]
fn a_tls_client_that_stalls_mid_handshake_is_dropped_at_the_handshake_timeout() {
    install_logger();
    let (ca, config) = pki();
    let server = tls_server(config, Duration::from_millis(500));
    let addr = server.local_addr();
    let hello = client_hello(&ca);
    // Half a ClientHello, and a whole one followed by silence (the server's flight
    // goes unanswered).
    for sent in [&hello[..hello.len() / 2], &hello[..]] {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.write_all(sent).unwrap();
        let started = Instant::now();
        read_to_end_within(&mut tcp, Duration::from_secs(3));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(400),
            "dropped early: {waited:?}"
        );
        assert!(
            waited < Duration::from_millis(2500),
            "dropped late: {waited:?}"
        );
    }
    wait_for_log(&["TLS handshake failed", "timed out"]);
    assert_still_serves(addr, &ca);
    server.shutdown(Duration::from_millis(100));
}

// ---------------------------------------------------------------------------------
// Bad input at the client

#[test]
fn a_tls_client_on_a_plain_port_says_the_server_is_not_tls() {
    let (ca, _) = pki();
    let plain = Server::builder()
        .workers(1)
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = plain.local_addr();
    let e = connect_error(&wss(addr, "localhost"), ca.client_config());
    assert!(matches!(e, ConnectError::Tls(TlsError::NotTls)), "{e:?}");
    assert!(e.to_string().contains("plain HTTP"), "{e}");
    plain.shutdown(Duration::from_millis(100));
}

#[test]
fn a_certificate_for_another_name_is_refused_with_a_typed_error() {
    install_logger();
    let ca = Ca::new("hybi test CA");
    let server = tls_server(ca.server_config(&["example.test"]), Duration::from_secs(5));
    let addr = server.local_addr();
    let e = connect_error(&wss(addr, "localhost"), ca.client_config());
    assert!(
        matches!(
            certificate_error(&e),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ),
        "{e:?}"
    );
    assert!(e.to_string().starts_with("TLS handshake failed: "), "{e}");
    // The server heard our alert and logged it.
    wait_for_log(&["TLS handshake failed", "alert"]);
    server.shutdown(Duration::from_millis(100));
}

#[test]
fn a_certificate_from_an_untrusted_issuer_is_refused_with_a_typed_error() {
    let (_, config) = pki();
    let stranger = Ca::new("someone else");
    let server = tls_server(config, Duration::from_secs(5));
    let addr = server.local_addr();
    let e = connect_error(&wss(addr, "localhost"), stranger.client_config());
    assert!(
        matches!(certificate_error(&e), CertificateError::UnknownIssuer),
        "{e:?}"
    );
    server.shutdown(Duration::from_millis(100));
}

/// A server that answers every connection with `answer` and closes.
fn answering_server(answer: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut tcp in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = tcp.read(&mut buf);
            let _ = tcp.write_all(answer);
        }
    });
    addr
}

#[test]
fn a_garbage_or_truncated_server_handshake_is_a_typed_client_error() {
    let (ca, _) = pki();
    // A handshake record header and garbage.
    let addr = answering_server(&[0x16, 0x03, 0x03, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00]);
    let e = connect_error(&wss(addr, "localhost"), ca.client_config());
    assert!(matches!(e, ConnectError::Tls(TlsError::Rustls(_))), "{e:?}");
    // Half a record, then the end.
    let addr = answering_server(&[0x16, 0x03, 0x03, 0x00, 0x40, 0x02]);
    let e = connect_error(&wss(addr, "localhost"), ca.client_config());
    assert!(matches!(e, ConnectError::Closed), "{e:?}");
}

#[test]
fn a_client_gives_up_on_a_silent_tls_server_at_the_handshake_timeout() {
    let (ca, _) = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_secs(2));
        drop(tcp);
    });
    let event_loop = Server::builder().workers(1).start().unwrap();
    let (tx, rx) = mpsc::channel();
    let options = ClientOptions::new(&wss(addr, "localhost"))
        .tls_config(ca.client_config())
        .handshake_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let client = Client {
        tx,
        messages: vec![],
        echoes: 0,
    };
    event_loop.connect_with(options, client).unwrap();
    let heard = rx.recv_timeout(Duration::from_secs(3)).unwrap();
    assert!(
        matches!(heard, Heard::Failed(ConnectError::Timeout)),
        "{heard:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    event_loop.shutdown(Duration::from_millis(100));
    holder.join().unwrap();
}

#[test]
fn a_ws_url_stays_plain_even_with_a_tls_config() {
    let (ca, _) = pki();
    let plain = Server::builder()
        .workers(1)
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap();
    let url = format!("ws://{}/echo", plain.local_addr());
    let heard = run_client(&url, ca.client_config(), vec![Ok("plain".into())]);
    assert!(
        matches!(&heard[1], Heard::Text(t) if t == "plain"),
        "{heard:?}"
    );
    plain.shutdown(Duration::from_millis(100));
}

#[test]
fn a_refused_wss_connect_fails_at_once_with_the_connect_error() {
    let (ca, _) = pki();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("wss://localhost:{port}/echo");
    let started = Instant::now();
    let e = connect_error(&url, ca.client_config());
    assert!(
        matches!(&e, ConnectError::Connect(io) if io.kind() == std::io::ErrorKind::ConnectionRefused),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_client_in_its_tls_handshake_when_its_loop_stops_hears_stopped() {
    let (ca, _) = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let event_loop = Server::builder().workers(1).start().unwrap();
    let (tx, rx) = mpsc::channel();
    let options = ClientOptions::new(&wss(addr, "localhost")).tls_config(ca.client_config());
    let client = Client {
        tx,
        messages: vec![],
        echoes: 0,
    };
    event_loop.connect_with(options, client).unwrap();
    // The ClientHello arrives, and is never answered.
    let (mut tcp, _) = listener.accept().unwrap();
    let mut hello = [0u8; 5];
    tcp.read_exact(&mut hello).unwrap();
    assert_eq!(hello[0], 0x16, "a TLS handshake record");
    event_loop.shutdown(Duration::from_millis(100));
    let heard = rx.recv_timeout(Duration::from_secs(3)).unwrap();
    assert!(
        matches!(heard, Heard::Failed(ConnectError::Stopped)),
        "{heard:?}"
    );
}
