//! wss:// over loopback with certificates made here (rcgen): round trips through the
//! TLS `Server` and a bare `TlsStream`, split halves over one TLS session, handshake
//! timeouts, and every kind of bad input a TLS port or a TLS client meets: plain HTTP,
//! TLS against a plain port, garbage and truncated handshakes, expired, wrong-name
//! and untrusted certificates. Each ends in a typed error (client) or a dropped
//! connection with a log line (server), within the handshake timeout.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use hybi_std::rustls::crypto::ring;
use hybi_std::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use hybi_std::rustls::{self, CertificateError, ClientConfig, RootCertStore, ServerConfig};
use hybi_std::{
    ClientBuilder, CloseCode, Error, Handler, HandshakeError, Message, Peer, Server, ServerHandle,
    TlsError, TlsStream,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

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

    /// A server certificate for `names`, signed by this CA (`expired`: valid in 2001
    /// only).
    fn issue(&self, names: &[&str], expired: bool) -> (CertificateDer<'static>, KeyPair) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "hybi test server");
        if expired {
            params.not_before = date_time_ymd(2001, 1, 1);
            params.not_after = date_time_ymd(2001, 12, 31);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().clone(), key)
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

fn server_config(cert: CertificateDer<'static>, key: &KeyPair) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Arc::new(
        ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    )
}

/// A CA and a server config for `localhost` and 127.0.0.1 signed by it.
fn pki() -> (Ca, Arc<ServerConfig>) {
    let ca = Ca::new("hybi test CA");
    let (cert, key) = ca.issue(&["localhost", "127.0.0.1"], false);
    let config = server_config(cert, &key);
    (ca, config)
}

// ---------------------------------------------------------------------------------
// Servers, clients and the log

struct Echo;
impl Handler for Echo {
    fn on_text(&mut self, peer: &Peer, text: &str) {
        let _ = peer.send_text(text);
    }
    fn on_binary(&mut self, peer: &Peer, data: &[u8]) {
        let _ = peer.send_binary(data);
    }
}

/// A TLS echo server at `/echo` that gives up on a handshake after `timeout`.
fn tls_echo_server(config: Arc<ServerConfig>, timeout: Duration) -> ServerHandle {
    Server::builder()
        .route("/echo", |_| Echo)
        .tls(config)
        .handshake_timeout(timeout)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap()
}

fn wss(addr: SocketAddr, host: &str, path: &str) -> String {
    format!("wss://{host}:{}{path}", addr.port())
}

/// Connects to the TLS echo server with `config`, expecting the connection to fail.
fn connect_err(addr: SocketAddr, host: &str, config: Arc<ClientConfig>) -> Error {
    match ClientBuilder::new(&wss(addr, host, "/echo"))
        .tls_config(config)
        .handshake_timeout(Duration::from_secs(5))
        .connect()
    {
        Ok(_) => panic!("connected"),
        Err(e) => e,
    }
}

/// The certificate error inside `e`, or a panic saying what `e` is instead.
fn certificate_error(e: &Error) -> &CertificateError {
    match e {
        Error::Tls(tls) => tls.certificate().unwrap_or_else(|| panic!("{tls:?}")),
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

/// Waits up to 2 s for a log line that contains every one of `words`.
fn wait_for_log(words: &[&str]) -> String {
    let _ = log::set_logger(&Recorder);
    log::set_max_level(log::LevelFilter::Info);
    let until = Instant::now() + Duration::from_secs(2);
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

fn install_logger() {
    let _ = log::set_logger(&Recorder);
    log::set_max_level(log::LevelFilter::Info);
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
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return got, // a reset: dropped all the same
        }
    }
}

/// The server still serves a good client (a failed handshake left it working).
fn assert_still_serves(addr: SocketAddr, ca: &Ca) {
    let (mut ws, _) = ClientBuilder::new(&wss(addr, "localhost", "/echo"))
        .tls_config(ca.client_config())
        .connect()
        .unwrap();
    ws.send_text("still there").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("still there".into()));
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
fn text_binary_and_close_round_trip_over_wss() {
    let (ca, config) = pki();
    let server = tls_echo_server(config, Duration::from_secs(5));
    let addr = server.local_addr();
    for host in ["localhost", "127.0.0.1"] {
        let (mut ws, _) = ClientBuilder::new(&wss(addr, host, "/echo"))
            .tls_config(ca.client_config())
            .connect()
            .unwrap();
        assert!(ws.get_ref().is_tls());
        ws.send_text("hello over TLS, κόσμε").unwrap();
        assert_eq!(
            ws.read().unwrap(),
            Message::Text("hello over TLS, κόσμε".into())
        );
        // Many TLS records each way (16 KiB at most per record).
        let big = pseudo_random(300_000, 7);
        ws.send_binary(&big).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Binary(big));
        let theirs = ws.close_and_wait(CloseCode::NORMAL, "bye").unwrap();
        assert_eq!(theirs.code, CloseCode::NORMAL);
        assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    }
}

#[test]
fn a_bare_tls_stream_accepts_and_connects() {
    let (ca, config) = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let tls = TlsStream::accept(tcp, config, Duration::from_secs(5)).unwrap();
        let mut ws = hybi_std::accept(tls).unwrap();
        let got = ws.read().unwrap();
        ws.send(got).unwrap();
        // The client closes; its close is answered.
        assert!(matches!(ws.read().unwrap(), Message::Close(_)));
        assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    });
    let tcp = TcpStream::connect(addr).unwrap();
    let tls =
        TlsStream::connect(tcp, "localhost", ca.client_config(), Duration::from_secs(5)).unwrap();
    assert!(tls.with_connection(|c| c.protocol_version().is_some()));
    let (mut ws, _) = ClientBuilder::new(&wss(addr, "localhost", "/"))
        .connect_with_stream(tls)
        .unwrap();
    ws.send_binary(b"\x00\x01\x02").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(vec![0, 1, 2]));
    let theirs = ws.close_and_wait(CloseCode(4000), "done").unwrap();
    assert_eq!(theirs.code, CloseCode(4000));
    server.join().unwrap();
}

/// The halves of a split TLS connection on two threads: the reader takes a megabyte
/// from a peer that reads nothing, then blocks in a read while the writer sends 64
/// messages: no lock is held across the reader's blocking read (else the sends would
/// wait for a peer that only answers once it has them all).
#[test]
fn split_halves_over_tls_read_and_write_at_once_while_the_peer_does_not_read() {
    let (ca, config) = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let tls = TlsStream::accept(tcp, config, Duration::from_secs(5)).unwrap();
        let mut ws = hybi_std::accept(tls).unwrap();
        for i in 0..32 {
            ws.send_binary(&pseudo_random(32 << 10, i)).unwrap();
        }
        // Reads nothing until told to.
        go_rx.recv().unwrap();
        for i in 0..64 {
            assert_eq!(ws.read().unwrap(), Message::Text(format!("message {i}")));
        }
        ws.send_text("all 64 arrived").unwrap();
        match ws.read().unwrap() {
            Message::Close(info) => assert_eq!(info.code, CloseCode::NORMAL),
            other => panic!("{other:?}"),
        }
    });

    let (ws, _) = ClientBuilder::new(&wss(addr, "localhost", "/"))
        .tls_config(ca.client_config())
        .connect()
        .unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    let (read_tx, read_rx) = mpsc::channel();
    let reading = thread::spawn(move || {
        for i in 0..32 {
            assert_eq!(
                reader.read().unwrap(),
                Message::Binary(pseudo_random(32 << 10, i))
            );
        }
        read_tx.send("a megabyte read").unwrap();
        // Blocks: the peer sends nothing more until it has read our 64 messages.
        let last = reader.read().unwrap();
        read_tx.send("answer read").unwrap();
        assert_eq!(last, Message::Text("all 64 arrived".into()));
        assert!(matches!(reader.read().unwrap(), Message::Close(_)));
    });
    assert_eq!(
        read_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "a megabyte read"
    );
    thread::sleep(Duration::from_millis(100)); // the reader is in its blocking read
    let (sent_tx, sent_rx) = mpsc::channel();
    let w = writer.clone();
    thread::spawn(move || {
        for i in 0..64 {
            w.send_text(&format!("message {i}")).unwrap();
        }
        sent_tx.send(()).unwrap();
    });
    sent_rx
        .recv_timeout(Duration::from_secs(3))
        .expect("the writer was kept waiting while the reader blocked");
    go_tx.send(()).unwrap();
    assert_eq!(
        read_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "answer read"
    );
    writer.close(CloseCode::NORMAL, "").unwrap();
    reading.join().unwrap();
    peer.join().unwrap();
}

// ---------------------------------------------------------------------------------
// Timeouts

#[test]
fn a_client_gives_up_on_a_silent_tls_server_at_the_handshake_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts, reads the ClientHello, answers nothing.
    let silent = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let n = tcp.read(&mut buf).unwrap();
        assert_eq!(buf[0], 0x16, "a TLS handshake record");
        assert!(n > 5);
        let _ = tcp.read(&mut buf);
    });
    let (ca, _) = pki();
    let started = Instant::now();
    let e = ClientBuilder::new(&wss(addr, "localhost", "/"))
        .tls_config(ca.client_config())
        .handshake_timeout(Duration::from_millis(400))
        .connect()
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(e, Error::Handshake(HandshakeError::Timeout)),
        "{e:?}"
    );
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    silent.join().unwrap();
}

#[test]
fn a_tls_server_drops_a_silent_or_truncated_handshake_at_the_handshake_timeout() {
    install_logger();
    let (ca, config) = pki();
    let server = tls_echo_server(config, Duration::from_millis(400));
    let addr = server.local_addr();
    // Nothing at all; then the first 5 bytes of a ClientHello record header and a
    // few of its body.
    let prefixes: [&[u8]; 2] = [b"", b"\x16\x03\x01\x01\x00\x01\x00\x00"];
    for prefix in prefixes {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.write_all(prefix).unwrap();
        let started = Instant::now();
        let got = read_to_end_within(&mut tcp, Duration::from_secs(3));
        let took = started.elapsed();
        assert!(got.is_empty(), "{got:?}");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    wait_for_log(&["TLS handshake failed", "timed out"]);
    assert_still_serves(addr, &ca);
}

// ---------------------------------------------------------------------------------
// Bad input at the server

#[test]
fn a_plain_http_client_on_the_tls_port_is_answered_400_and_dropped() {
    install_logger();
    let (ca, config) = pki();
    let server = tls_echo_server(config, Duration::from_secs(5));
    let addr = server.local_addr();

    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let started = Instant::now();
    let answer = read_to_end_within(&mut tcp, Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(1));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("connect with wss://\n"), "{answer}");
    wait_for_log(&["TLS handshake failed", "plain HTTP"]);

    // hybi's own ws:// client hears the 400 as a refused handshake.
    match hybi_std::connect(&format!("ws://{addr}/echo")) {
        Err(Error::Handshake(e)) => assert_eq!(e.status(), Some(400), "{e}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert_still_serves(addr, &ca);
}

#[test]
fn a_garbage_handshake_is_dropped_at_once_with_an_alert() {
    install_logger();
    let (ca, config) = pki();
    let server = tls_echo_server(config, Duration::from_secs(10));
    let addr = server.local_addr();
    // A handshake record whose body is no handshake message; then bytes that are no
    // TLS record at all (and no HTTP either).
    let garbage: [&[u8]; 2] = [
        b"\x16\x03\x01\x00\x08\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09",
    ];
    for bytes in garbage {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.write_all(bytes).unwrap();
        let started = Instant::now();
        let answer = read_to_end_within(&mut tcp, Duration::from_secs(3));
        // Well before the 10 s handshake timeout.
        assert!(started.elapsed() < Duration::from_secs(2));
        // Nothing, or a TLS alert record.
        assert!(answer.is_empty() || answer[0] == 0x15, "{answer:?}");
    }
    wait_for_log(&["TLS handshake failed"]);
    assert_still_serves(addr, &ca);
}

// ---------------------------------------------------------------------------------
// Bad input at the client

#[test]
fn a_tls_client_on_a_plain_port_says_the_server_is_not_tls() {
    let server = Server::builder()
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap();
    let addr = server.local_addr();
    let (ca, _) = pki();
    let started = Instant::now();
    let e = connect_err(addr, "localhost", ca.client_config());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(e, Error::Tls(TlsError::NotTls)), "{e:?}");
    assert!(e.to_string().contains("plain HTTP"), "{e}");
    // The plain server goes on.
    let (mut ws, _) = hybi_std::connect(&format!("ws://{addr}/echo")).unwrap();
    ws.send_text("plain").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("plain".into()));
}

/// A server that answers the ClientHello with `answer` and then closes.
fn answering_server(answer: &'static [u8]) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = tcp.read(&mut buf);
        tcp.write_all(answer).unwrap();
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        let _ = tcp.read(&mut buf);
    });
    (addr, t)
}

#[test]
fn a_garbage_or_truncated_server_handshake_is_a_clear_client_error() {
    let (ca, _) = pki();
    // A handshake record whose body is no ServerHello.
    let (addr, t) = answering_server(b"\x16\x03\x03\x00\x06\x02\xff\xff\xff\xff\xff");
    let e = connect_err(addr, "localhost", ca.client_config());
    assert!(matches!(e, Error::Tls(TlsError::Rustls(_))), "{e:?}");
    t.join().unwrap();
    // Half a record, then the end of the connection.
    let (addr, t) = answering_server(b"\x16\x03\x03\x00\x40\x02\x00\x00");
    let started = Instant::now();
    let e = connect_err(addr, "localhost", ca.client_config());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(e, Error::Handshake(HandshakeError::UnexpectedEof)),
        "{e:?}"
    );
    t.join().unwrap();
}

#[test]
fn an_expired_certificate_is_refused_and_the_server_logs_it() {
    install_logger();
    let ca = Ca::new("hybi test CA");
    let (cert, key) = ca.issue(&["localhost"], true);
    let server = tls_echo_server(server_config(cert, &key), Duration::from_secs(5));
    let e = connect_err(server.local_addr(), "localhost", ca.client_config());
    let why = certificate_error(&e);
    assert!(
        matches!(
            why,
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "{why:?}"
    );
    assert!(e.to_string().starts_with("TLS handshake failed"), "{e}");
    // The client's alert ends the server's side of the handshake.
    let line = wait_for_log(&["TLS handshake failed", "alert"]);
    assert!(line.contains("CertificateExpired"), "{line}");
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let ca = Ca::new("hybi test CA");
    let (cert, key) = ca.issue(&["other.example"], false);
    let server = tls_echo_server(server_config(cert, &key), Duration::from_secs(5));
    for host in ["localhost", "127.0.0.1"] {
        let e = connect_err(server.local_addr(), host, ca.client_config());
        let why = certificate_error(&e);
        assert!(
            matches!(
                why,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            "{host}: {why:?}"
        );
    }
}

#[test]
fn a_certificate_from_an_untrusted_issuer_is_refused() {
    let (_, config) = pki();
    let server = tls_echo_server(config, Duration::from_secs(5));
    let addr = server.local_addr();
    // Another CA's roots.
    let e = connect_err(addr, "localhost", Ca::new("someone else").client_config());
    assert_eq!(certificate_error(&e), &CertificateError::UnknownIssuer);
    // The default config (webpki roots) does not know the test CA either.
    let e = hybi_std::connect(&wss(addr, "localhost", "/echo")).unwrap_err();
    assert_eq!(certificate_error(&e), &CertificateError::UnknownIssuer);
}

#[test]
fn the_tls_error_is_typed_and_says_what_failed() {
    let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
    let tls = TlsError::Rustls(e);
    assert_eq!(tls.certificate(), Some(&CertificateError::UnknownIssuer));
    assert!(TlsError::NotTls.certificate().is_none());
    let shown = Error::Tls(tls).to_string();
    assert!(shown.starts_with("TLS handshake failed: "), "{shown}");
}

/// A peer that does not read: the write timeout ends a blocked TLS write with an error
/// instead of a hang, and nothing is lost or sent twice: records the socket refused
/// stay queued in the stream, the rest of the frame in the engine, and once the peer
/// reads again `flush` delivers every message whole.
#[test]
fn a_write_to_a_tls_peer_that_does_not_read_times_out_and_loses_nothing() {
    let (ca, config) = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let chunk = vec![7u8; 1 << 20];
    let want = chunk.clone();
    let peer = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let tls = TlsStream::accept(tcp, config, Duration::from_secs(5)).unwrap();
        let mut ws = hybi_std::accept(tls).unwrap();
        // Reads nothing until told to.
        go_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        let mut whole = 0;
        loop {
            match ws.read().unwrap() {
                Message::Binary(b) => {
                    assert!(b == want, "a message of {} bytes arrived damaged", b.len());
                    whole += 1;
                }
                Message::Text(t) => {
                    assert_eq!(t, "after");
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        ws.send_text(&whole.to_string()).unwrap();
        whole
    });
    let (mut ws, _) = ClientBuilder::new(&wss(addr, "localhost", "/"))
        .tls_config(ca.client_config())
        .write_timeout(Some(Duration::from_millis(200)))
        .connect()
        .unwrap();
    let started = Instant::now();
    let mut sent = 0;
    let failed = loop {
        sent += 1; // the one that fails is queued all the same
        if let Err(e) = ws.send_binary(&chunk) {
            break e;
        }
        assert!(
            sent < 256,
            "the socket took 256 MiB from a peer that reads nothing"
        );
    };
    assert!(started.elapsed() < Duration::from_secs(10));
    match failed {
        Error::Io(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e:?}"
        ),
        other => panic!("{other:?}"),
    }
    // Queued behind the rest; the write times out again while the peer still waits.
    assert!(ws.send_text("after").is_err());
    go_tx.send(()).unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while let Err(e) = ws.flush() {
        assert!(Instant::now() < until, "flush kept failing: {e}");
    }
    let count = ws.read().unwrap();
    assert_eq!(count, Message::Text(sent.to_string()));
    assert_eq!(peer.join().unwrap(), sent);
}

/// Joins the room on open, leaves it on close.
struct Member(hybi_std::Room);
impl Handler for Member {
    fn on_open(&mut self, peer: &Peer) {
        self.0.join(peer);
    }
    fn on_close(&mut self, peer: &Peer, _: CloseCode, _: &str) {
        self.0.leave(peer.id());
    }
}

/// Over TLS too, a member that never reads is skipped by a broadcast (the records
/// rustls could not write make it busy) and the others get every message at once.
#[test]
fn a_room_over_tls_skips_a_member_that_never_reads() {
    let (ca, config) = pki();
    let room = hybi_std::Room::new();
    let members = room.clone();
    let server = Server::builder()
        .route("/room", move |_| Member(members.clone()))
        .tls(config)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap();
    let addr = server.local_addr();
    let url = wss(addr, "localhost", "/room");
    let wait_for = |n: usize| {
        let until = Instant::now() + Duration::from_secs(5);
        while room.len() != n {
            assert!(Instant::now() < until, "{} members", room.len());
            thread::sleep(Duration::from_millis(5));
        }
    };

    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 << 10).unwrap();
    socket.connect(&addr.into()).unwrap();
    let tls = TlsStream::connect(
        socket.into(),
        "localhost",
        ca.client_config(),
        Duration::from_secs(5),
    )
    .unwrap();
    let (_silent, _) = ClientBuilder::new(&url).connect_with_stream(tls).unwrap();
    wait_for(1);
    let slow = room.members().pop().unwrap();

    let (mut fast, _) = ClientBuilder::new(&url)
        .tls_config(ca.client_config())
        .connect()
        .unwrap();
    wait_for(2);
    let (texts_tx, texts) = mpsc::channel();
    let reader = thread::spawn(move || {
        loop {
            match fast.read() {
                Ok(Message::Text(t)) if t == "done" => return,
                Ok(Message::Text(t)) => texts_tx.send(t).unwrap(),
                Ok(_) => {}
                Err(e) => panic!("the fast member: {e}"),
            }
        }
    });

    let big = vec![7u8; 64 << 10];
    let probe = Message::from("probe");
    // Until it has refused many in a row (the kernel may grow a send buffer a while).
    let mut refused = 0;
    for _ in 0..2_000 {
        room.broadcast(big.as_slice());
        refused = if slow.try_send(&probe).is_err() {
            refused + 1
        } else {
            0
        };
        if refused == 50 {
            break;
        }
    }
    assert_eq!(refused, 50, "the silent member's buffers never filled");
    let caught_up = Instant::now() + Duration::from_secs(10);
    'sync: loop {
        assert!(
            Instant::now() < caught_up,
            "the fast member never caught up"
        );
        room.broadcast("sync");
        while let Ok(t) = texts.recv_timeout(Duration::from_millis(200)) {
            if t == "sync" {
                break 'sync;
            }
        }
    }
    let skipped_before = room.skipped();
    for i in 0..50 {
        let started = Instant::now();
        assert!(room.broadcast(format!("m{i}")) >= 1, "broadcast {i}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        loop {
            let t = texts.recv_timeout(Duration::from_secs(5)).unwrap();
            if t != "sync" {
                assert_eq!(t, format!("m{i}"));
                break;
            }
        }
    }
    assert!(
        room.skipped() > skipped_before,
        "the silent member was skipped"
    );
    room.broadcast("done");
    reader.join().unwrap();
    let started = Instant::now();
    server.shutdown(Duration::from_millis(200));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
