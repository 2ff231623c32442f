//! hybi-std client ↔ hybi-std server over loopback: messages of every size class,
//! fragments, streaming, ping/pong, closing both ways, subprotocols, rejections,
//! timeouts, keepalive, full duplex, broadcast and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hybi_std::{
    ClientBuilder, CloseCode, Config, Decision, Delivery, Error, Handler, HandshakeError, Message,
    MessageKind, Peer, Server, ServerHandle,
};

struct Echo;
impl Handler for Echo {
    fn on_text(&mut self, peer: &Peer, text: &str) {
        let _ = peer.send_text(text);
    }
    fn on_binary(&mut self, peer: &Peer, data: &[u8]) {
        let _ = peer.send_binary(data);
    }
}

/// Echoes through `on_message`, moving each payload into `send_*_owned`.
struct OwnedEcho;
impl Handler for OwnedEcho {
    fn on_message(&mut self, peer: &Peer, message: Message) {
        let _ = match message {
            Message::Text(t) => peer.send_text_owned(t),
            Message::Binary(b) => peer.send_binary_owned(b),
            Message::Ping(p) => peer.send_text(&format!("ping {}", p.len())),
            _ => Ok(()),
        };
    }
}

/// Closes with 4002 "server bye" on the first message.
struct Closer;
impl Handler for Closer {
    fn on_text(&mut self, peer: &Peer, _text: &str) {
        let _ = peer.close(CloseCode(4002), "server bye");
    }
}

/// Reports how each connection ended.
struct Report(mpsc::Sender<(u16, String)>);
impl Handler for Report {
    fn on_close(&mut self, _peer: &Peer, code: CloseCode, reason: &str) {
        let _ = self.0.send((code.as_u16(), reason.to_owned()));
    }
}

/// Counts streamed bytes and answers the total when the message ends.
#[derive(Default)]
struct CountStream(usize);
impl Handler for CountStream {
    fn on_fragment(
        &mut self,
        peer: &Peer,
        _kind: MessageKind,
        data: &[u8],
        first: bool,
        fin: bool,
    ) {
        if first {
            self.0 = 0;
        }
        self.0 += data.len();
        if fin {
            let _ = peer.send_text(&self.0.to_string());
        }
    }
}

fn start(builder: hybi_std::ServerBuilder) -> ServerHandle {
    builder.bind("127.0.0.1:0").unwrap().spawn().unwrap()
}

fn echo_server() -> ServerHandle {
    start(Server::builder().route("/echo", |_| Echo))
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
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

#[test]
fn text_and_binary_of_every_size_class_echo_intact() {
    let server = echo_server();
    let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/echo")).unwrap();
    for text in ["hello", "", "κόσμε", "emoji 🎉 and 世界"] {
        ws.send_text(text).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text(text.to_owned()));
    }
    for (i, len) in [0usize, 1, 125, 126, 65535, 65536, 16 << 20]
        .into_iter()
        .enumerate()
    {
        let data = pseudo_random(len, i as u32 + 1);
        ws.send_binary(&data).unwrap();
        match ws.read().unwrap() {
            Message::Binary(b) => assert!(b == data, "binary of {len} bytes differs"),
            other => panic!("{other:?}"),
        }
    }
    let info = ws.close_and_wait(CloseCode::NORMAL, "done").unwrap();
    assert_eq!(info.code, CloseCode::NORMAL);
}

#[test]
fn an_owned_echo_returns_every_size_class_and_sees_control_frames() {
    let server = start(Server::builder().route("/owned", |_| OwnedEcho));
    let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/owned")).unwrap();
    for (i, len) in [0usize, 1, 4095, 4096, 65536, 3 << 20]
        .into_iter()
        .enumerate()
    {
        let data = pseudo_random(len, i as u32 + 20);
        ws.send_binary(&data).unwrap();
        match ws.read().unwrap() {
            Message::Binary(b) => assert!(b == data, "binary of {len} bytes differs"),
            other => panic!("{other:?}"),
        }
        let text = "κόσμε".repeat(len / 10);
        ws.send_text(&text).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text(text));
    }
    // Control frames reach on_message too (the pong is the engine's).
    ws.ping(b"abc").unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(ws.read().unwrap());
    }
    assert!(got.contains(&Message::Pong(b"abc".to_vec())), "{got:?}");
    assert!(got.contains(&Message::Text("ping 3".into())), "{got:?}");
}

#[test]
fn fragments_are_echoed_whole() {
    let server = echo_server();
    let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/echo")).unwrap();
    let text = "fragmented κόσμε message";
    let bytes = text.as_bytes();
    // Cut inside a multi-byte character on purpose.
    ws.send_fragment(MessageKind::Text, &bytes[..12], false)
        .unwrap();
    ws.ping(b"between").unwrap();
    ws.send_fragment(MessageKind::Text, &bytes[12..20], false)
        .unwrap();
    ws.send_fragment(MessageKind::Text, &bytes[20..], true)
        .unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"between".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::Text(text.to_owned()));
}

#[test]
fn a_large_body_streams_through_both_ends_without_being_held_whole() {
    let server = start(
        Server::builder()
            .config(Config::default().with_delivery(Delivery::Streaming))
            .route("/count", |_| CountStream::default()),
    );
    let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/count")).unwrap();
    let body = pseudo_random(5 << 20, 7);
    let sent = ws
        .send_from_reader(MessageKind::Binary, &body[..], 64 << 10)
        .unwrap();
    assert_eq!(sent, 5 << 20);
    assert_eq!(ws.read().unwrap(), Message::Text((5u64 << 20).to_string()));

    // Reading in streaming mode: the echo of a 3 MiB message arrives in pieces.
    let echo = echo_server();
    let (mut ws, _) = ClientBuilder::new(&url(echo.local_addr(), "/echo"))
        .config(
            Config::default()
                .with_delivery(Delivery::Streaming)
                .with_read_buffer_size(16 << 10),
        )
        .connect()
        .unwrap();
    let data = pseudo_random(3 << 20, 9);
    ws.send_binary(&data).unwrap();
    let mut got = Vec::new();
    let mut pieces = 0;
    loop {
        match ws.read().unwrap() {
            Message::Fragment {
                data: piece, fin, ..
            } => {
                assert!(
                    piece.len() <= 16 << 10,
                    "pieces come through the 16 KiB buffer"
                );
                got.extend(piece);
                pieces += 1;
                if fin {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(pieces > 100);
    assert!(got == data);
}

#[test]
fn ping_is_answered_with_a_pong_carrying_the_payload() {
    let server = echo_server();
    let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/echo")).unwrap();
    ws.ping(b"are you there?").unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Pong(b"are you there?".to_vec())
    );
}

#[test]
fn the_client_closes_with_a_code_and_reason_the_server_sees() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server =
        start(Server::builder().route("/report", move |_| Report(tx.lock().unwrap().clone())));
    let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/report")).unwrap();
    let answer = ws.close_and_wait(CloseCode(4001), "client bye").unwrap();
    assert_eq!(
        (answer.code, answer.reason.as_str()),
        (CloseCode(4001), ""),
        "echoed code"
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        (4001, "client bye".to_owned())
    );
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn the_server_closes_with_a_code_and_reason_the_client_sees() {
    let server = start(Server::builder().route("/close", |_| Closer));
    let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/close")).unwrap();
    ws.send_text("close please").unwrap();
    match ws.read().unwrap() {
        Message::Close(info) => assert_eq!(
            (info.code, info.reason.as_str()),
            (CloseCode(4002), "server bye")
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(ws.peer_close().unwrap().code, CloseCode(4002));
    // The server closes TCP first; the client then reports the end.
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn subprotocols_are_negotiated_and_headers_travel_both_ways() {
    let server = start(
        Server::builder()
            .route("/chat", |_| Echo)
            .should_upgrade(|req| {
                assert_eq!(req.headers().get_str("x-token"), Some("secret"));
                if req.protocols().iter().any(|p| p == "chat.v2") {
                    Decision::accept()
                        .with_protocol("chat.v2")
                        .with_header("X-Served-By", "hybi")
                } else {
                    Decision::accept()
                }
            }),
    );
    let (_ws, response) = ClientBuilder::new(&url(server.local_addr(), "/chat"))
        .protocol("nope")
        .protocol("chat.v2")
        .header("X-Token", "secret")
        .connect()
        .unwrap();
    assert_eq!(response.protocol(), Some("chat.v2"));
    assert_eq!(response.headers().get_str("x-served-by"), Some("hybi"));
}

#[test]
fn a_rejected_upgrade_reaches_the_client_with_status_headers_and_body() {
    let server = start(
        Server::builder()
            .route("/private", |_| Echo)
            .should_upgrade(|_| Decision::reject(403, "go away").with_header("X-Why", "no token")),
    );
    let err = hybi_std::connect(&url(server.local_addr(), "/private")).unwrap_err();
    let Error::Handshake(HandshakeError::Response(hybi::handshake::ResponseError::Rejected(r))) =
        &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers().get_str("x-why"), Some("no token"));
    assert_eq!(r.body(), b"go away");

    let err = hybi_std::connect(&url(server.local_addr(), "/elsewhere")).unwrap_err();
    match err {
        Error::Handshake(e) => assert_eq!(e.status(), Some(404)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn connect_errors_say_which_step_failed() {
    assert!(matches!(
        hybi_std::connect("http://127.0.0.1:1/"),
        Err(Error::Url(_))
    ));
    assert!(matches!(
        hybi_std::connect("ws://no-such-host.invalid/"),
        Err(Error::Dns(_))
    ));
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert!(matches!(
        hybi_std::connect(&format!("ws://127.0.0.1:{port}/")),
        Err(Error::Connect(_))
    ));
}

/// Completes a client handshake on a raw socket and returns it.
fn raw_client(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Reads one whole unmasked frame: (first byte, payload).
fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    (h[0], payload)
}

fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    assert!(payload.len() < 126);
    let mut out = vec![first, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Answers every text twice.
struct Twice;
impl Handler for Twice {
    fn on_text(&mut self, peer: &Peer, text: &str) {
        let _ = peer.send_text(&format!("{text}a"));
        let _ = peer.send_text(&format!("{text}b"));
    }
}

#[test]
fn replies_to_messages_that_arrived_together_keep_their_order_with_pongs_and_the_close() {
    // 500 messages, a ping among them and a close, in one write: the server batches
    // the replies to what arrived together, and everything still goes out in order,
    // the engine's pong between the replies it came between, the close last.
    let server = start(Server::builder().route("/twice", |_| Twice));
    let mut s = raw_client(server.local_addr(), "/twice");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut wire = Vec::new();
    for i in 0..500 {
        if i == 250 {
            wire.extend(masked(0x89, b"ping"));
        }
        wire.extend(masked(0x81, format!("m{i}").as_bytes()));
    }
    wire.extend(masked(0x88, &1000u16.to_be_bytes()));
    s.write_all(&wire).unwrap();
    for i in 0..500 {
        if i == 250 {
            assert_eq!(read_frame(&mut s), (0x8A, b"ping".to_vec()));
        }
        for suffix in ["a", "b"] {
            assert_eq!(
                read_frame(&mut s),
                (0x81, format!("m{i}{suffix}").into_bytes())
            );
        }
    }
    assert_eq!(read_frame(&mut s), (0x88, 1000u16.to_be_bytes().to_vec()));
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "the server closed TCP after its close frame"
    );
}

#[test]
fn invalid_frames_from_a_raw_socket_get_the_right_close_code_then_tcp_close() {
    let server = echo_server();
    let cases: [(Vec<u8>, u16); 4] = [
        (vec![0x81, 0x02, b'h', b'i'], 1002), // unmasked
        (masked(0x81, b"\xC0\xAF"), 1007),    // invalid UTF-8
        (masked(0x83, b""), 1002),            // reserved opcode
        (
            {
                let mut v = vec![0x82, 0xFF];
                v.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
                v.extend_from_slice(&[1, 2, 3, 4]);
                v
            },
            1009,
        ),
    ];
    for (bytes, code) in cases {
        let mut s = raw_client(server.local_addr(), "/echo");
        s.write_all(&bytes).unwrap();
        let (first, payload) = read_frame(&mut s);
        assert_eq!(first, 0x88, "a close frame");
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = [0u8; 16];
        assert_eq!(s.read(&mut rest).unwrap(), 0, "then the server closes TCP");
    }
}

#[test]
fn a_read_timeout_leaves_the_connection_usable() {
    let server = echo_server();
    let (mut ws, _) = ClientBuilder::new(&url(server.local_addr(), "/echo"))
        .read_timeout(Some(Duration::from_millis(100)))
        .connect()
        .unwrap();
    let started = Instant::now();
    assert!(matches!(ws.read(), Err(Error::Timeout)));
    assert!(started.elapsed() >= Duration::from_millis(90));
    ws.send_text("still here").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("still here".into()));
}

#[test]
fn keepalive_drops_a_peer_that_never_answers() {
    let server = start(
        Server::builder()
            .config(
                Config::default()
                    .with_keepalive(Some(Duration::from_millis(150)))
                    .with_pong_timeout(Duration::from_millis(150)),
            )
            .route("/echo", |_| Echo),
    );
    let mut s = raw_client(server.local_addr(), "/echo");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let (first, _) = read_frame(&mut s);
    assert_eq!(first, 0x89, "a keepalive ping");
    // We never answer: the server gives up and closes the transport.
    let mut rest = [0u8; 64];
    loop {
        match s.read(&mut rest) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Reads for `span`, counting pings and pongs; any error fails.
fn count_keepalive_traffic<S: hybi_std::Stream>(
    ws: &mut hybi_std::WebSocket<S>,
    span: Duration,
) -> (usize, usize) {
    let until = Instant::now() + span;
    let (mut pings, mut pongs) = (0, 0);
    while Instant::now() < until {
        ws.set_read_timeout(Some(
            until
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ));
        match ws.read() {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(Message::Pong(_)) => pongs += 1,
            Ok(other) => panic!("{other:?}"),
            Err(Error::Timeout) => break,
            Err(e) => panic!("{e}"),
        }
    }
    (pings, pongs)
}

#[test]
fn keepalive_keeps_an_answering_peer() {
    let keepalive = Config::default()
        .with_keepalive(Some(Duration::from_millis(50)))
        .with_pong_timeout(Duration::from_millis(300));

    // The server pings an idle client, which answers while it reads.
    let server = start(
        Server::builder()
            .config(keepalive.clone())
            .route("/echo", |_| Echo),
    );
    let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/echo")).unwrap();
    let (pings, _) = count_keepalive_traffic(&mut ws, Duration::from_millis(600));
    assert!(pings >= 3, "server pinged {pings} times");

    // The client pings an idle server, which answers.
    let server = echo_server();
    let (mut ws, _) = ClientBuilder::new(&url(server.local_addr(), "/echo"))
        .config(keepalive)
        .connect()
        .unwrap();
    let (_, pongs) = count_keepalive_traffic(&mut ws, Duration::from_millis(600));
    assert!(pongs >= 3, "{pongs} pongs");

    ws.send_text("alive").unwrap();
    ws.set_read_timeout(Some(Duration::from_secs(5)));
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => break assert_eq!(t, "alive"),
            _ => continue,
        }
    }
}

#[test]
fn a_split_socket_reads_and_writes_from_two_threads() {
    let server = echo_server();
    let (ws, _) = hybi_std::connect(&url(server.local_addr(), "/echo")).unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    const N: usize = 2000;
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            writer.send_text(&format!("message {i}")).unwrap();
        }
        writer
    });
    for i in 0..N {
        assert_eq!(
            reader.read().unwrap(),
            Message::Text(format!("message {i}"))
        );
    }
    let writer = sender.join().unwrap();
    writer.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(reader.read().unwrap(), Message::Close(_)));
}

#[test]
fn a_split_socket_carries_large_and_small_messages_interleaved_and_times_out_after() {
    // Large messages switch the reader to reading straight into the engine (after
    // waiting for bytes without the lock); small ones switch it back. Every byte
    // must arrive in order either way, with the writer sending concurrently.
    let server = echo_server();
    let (ws, _) = hybi_std::connect(&url(server.local_addr(), "/echo")).unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    let sizes = [
        70_000,
        10,
        3000,
        1 << 20,
        5,
        65_536,
        65_522,
        4096,
        0,
        200_000,
        1,
        131_072,
    ];
    let messages: Vec<Vec<u8>> = (0..60)
        .map(|i| pseudo_random(sizes[i % sizes.len()], i as u32 + 40))
        .collect();
    let to_send = messages.clone();
    let sender = std::thread::spawn(move || {
        for m in &to_send {
            writer.send_binary(m).unwrap();
        }
        writer
    });
    for (i, m) in messages.iter().enumerate() {
        match reader.read().unwrap() {
            Message::Binary(b) => assert!(b == *m, "message {i} ({} bytes) differs", m.len()),
            other => panic!("message {i}: {other:?}"),
        }
    }
    let writer = sender.join().unwrap();
    // Nothing more is coming: the read timeout holds in the bulk path too, and the
    // connection is usable afterwards.
    reader.set_read_timeout(Some(Duration::from_millis(100)));
    assert!(matches!(reader.read(), Err(hybi_std::Error::Timeout)));
    writer.send_binary(&messages[3]).unwrap();
    assert_eq!(reader.read().unwrap(), Message::Binary(messages[3].clone()));
    writer.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(reader.read().unwrap(), Message::Close(_)));
}

/// Tells which thread served the connection, and its peer id.
struct WhichThread;
impl Handler for WhichThread {
    fn on_open(&mut self, peer: &Peer) {
        let _ = peer.send_text(&format!("{:?} {}", std::thread::current().id(), peer.id()));
    }
    fn on_text(&mut self, peer: &Peer, text: &str) {
        let _ = peer.send_text(text);
    }
}

#[test]
fn a_thread_whose_connection_ended_serves_the_next_one() {
    let server = start(Server::builder().route("/t", |_| WhichThread));
    let mut threads = Vec::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/t")).unwrap();
        let Message::Text(hello) = ws.read().unwrap() else {
            panic!("no greeting")
        };
        let (thread, id) = hello.rsplit_once(' ').unwrap();
        threads.push(thread.to_owned());
        ids.push(id.to_owned());
        // The connection works in full on a thread that served another before.
        ws.send_text(&format!("message {i}")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text(format!("message {i}")));
        ws.close_and_wait(CloseCode::NORMAL, "").unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    threads.sort();
    threads.dedup();
    assert!(threads.len() < 5, "every connection started a thread");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "each connection has its own id");
}

/// A chat room: every text goes to every member.
struct Member(Arc<Mutex<Vec<Peer>>>);
impl Handler for Member {
    fn on_open(&mut self, peer: &Peer) {
        self.0.lock().unwrap().push(peer.clone());
        let _ = peer.send_text("joined");
    }
    fn on_text(&mut self, _peer: &Peer, text: &str) {
        let members = self.0.lock().unwrap().clone();
        for m in members {
            let _ = m.send_text(text);
        }
    }
    fn on_close(&mut self, peer: &Peer, _: CloseCode, _: &str) {
        self.0.lock().unwrap().retain(|p| p.id() != peer.id());
    }
}

#[test]
fn broadcast_from_another_thread_reaches_every_member_once() {
    let room = Arc::new(Mutex::new(Vec::new()));
    let members = Arc::clone(&room);
    let server = start(Server::builder().route("/chat", move |_| Member(Arc::clone(&members))));
    let mut clients: Vec<_> = (0..5)
        .map(|_| {
            let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/chat")).unwrap();
            assert_eq!(ws.read().unwrap(), Message::Text("joined".into()));
            ws
        })
        .collect();
    // From a thread that is not a connection's.
    let room2 = Arc::clone(&room);
    std::thread::spawn(move || {
        for p in room2.lock().unwrap().iter() {
            p.send_text("announcement").unwrap();
        }
    })
    .join()
    .unwrap();
    clients[0].send_text("hello all").unwrap();
    for ws in &mut clients {
        ws.set_read_timeout(Some(Duration::from_secs(5)));
        let mut got = vec![ws.read().unwrap(), ws.read().unwrap()];
        got.sort_by_key(|m| format!("{m:?}"));
        assert_eq!(
            got,
            vec![
                Message::Text("announcement".into()),
                Message::Text("hello all".into())
            ]
        );
        ws.set_read_timeout(Some(Duration::from_millis(100)));
        assert!(matches!(ws.read(), Err(Error::Timeout)), "exactly once");
    }
    assert_eq!(server.peers().len(), 5);
}

#[test]
fn shutdown_sends_1001_to_every_connection() {
    let server = echo_server();
    let mut clients: Vec<_> = (0..3)
        .map(|_| {
            hybi_std::connect(&url(server.local_addr(), "/echo"))
                .unwrap()
                .0
        })
        .collect();
    // Make sure every connection is registered.
    for ws in &mut clients {
        ws.send_text("x").unwrap();
        ws.read().unwrap();
    }
    server.shutdown(Duration::from_secs(1));
    for ws in &mut clients {
        ws.set_read_timeout(Some(Duration::from_secs(5)));
        match ws.read().unwrap() {
            Message::Close(info) => assert_eq!(info.code, CloseCode::GOING_AWAY),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_client_that_trickles_its_handshake_is_dropped_at_the_handshake_timeout() {
    let server = start(
        Server::builder()
            .handshake_timeout(Duration::from_millis(300))
            .route("/echo", |_| Echo),
    );
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let request = b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n";
    let started = Instant::now();
    let mut closed = false;
    for b in request {
        if s.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(closed, "dropped before the request was complete");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn bad_handshakes_are_answered_400_while_others_are_served() {
    let server = echo_server();
    let (mut good, _) = hybi_std::connect(&url(server.local_addr(), "/echo")).unwrap();
    for i in 0..200 {
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        write!(
            s,
            "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: not-a-key-{i}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        if i % 50 == 0 {
            good.send_text("still serving").unwrap();
            assert_eq!(good.read().unwrap(), Message::Text("still serving".into()));
        }
    }
}

#[test]
fn wouldblock_on_a_nonblocking_stream_loses_no_bytes() {
    // The server reads nothing until told to, so the client's socket buffer fills.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = hybi_std::accept(stream).unwrap();
        go_rx.recv().unwrap();
        let mut count = 0;
        loop {
            match ws.read().unwrap() {
                Message::Binary(b) => {
                    assert_eq!(b, pseudo_random(100_000, count));
                    count += 1;
                }
                Message::Close(_) => return count,
                _ => {}
            }
        }
    });
    let (mut ws, _) = hybi_std::connect(&url(addr, "/")).unwrap();
    ws.get_ref().tcp().set_nonblocking(true).unwrap();
    let mut sent = 0u32;
    let mut blocked = false;
    while sent < 200 {
        match ws.send_binary(&pseudo_random(100_000, sent)) {
            Ok(()) => sent += 1,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // The message is queued in the engine: it counts as sent.
                sent += 1;
                blocked = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(blocked, "the socket buffer never filled");
    assert!(ws.buffered_amount() > 0);
    go_tx.send(()).unwrap();
    loop {
        match ws.flush() {
            Ok(()) => break,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    }
    ws.get_ref().tcp().set_nonblocking(false).unwrap();
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(server.join().unwrap(), sent);
}

/// Reports the end of each connection and counts pings.
struct PingWatch(
    mpsc::Sender<(u16, String)>,
    Arc<std::sync::atomic::AtomicUsize>,
);
impl Handler for PingWatch {
    fn on_ping(&mut self, _: &Peer, _: &[u8]) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn on_binary(&mut self, peer: &Peer, data: &[u8]) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = peer.send_binary(data);
    }
    fn on_close(&mut self, _: &Peer, code: CloseCode, reason: &str) {
        let _ = self.0.send((code.as_u16(), reason.to_owned()));
    }
}

#[test]
fn a_ping_flood_from_a_peer_that_never_reads_costs_one_thread_until_the_write_timeout() {
    flood_from_a_peer_that_never_reads(0x89);
}

#[test]
fn an_echoed_flood_from_a_peer_that_never_reads_is_dropped_at_the_write_timeout() {
    // Replies to messages that arrived together are batched, up to 64 KiB: the
    // batch is then written, so the write timeout still drops a peer that never reads.
    flood_from_a_peer_that_never_reads(0x82);
}

/// Floods the server with 125-byte frames (`first` is FIN|opcode) without reading a
/// byte: the server drops the peer with 1006 once a write times out, having handled
/// over 1,000 frames, and serves others throughout.
fn flood_from_a_peer_that_never_reads(first: u8) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let pings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p2 = Arc::clone(&pings);
    let server = start(
        Server::builder()
            .write_timeout(Some(Duration::from_millis(300)))
            .route("/ping", move |_| {
                PingWatch(tx.lock().unwrap().clone(), Arc::clone(&p2))
            })
            .route("/echo", |_| Echo),
    );
    let mut s = raw_client(server.local_addr(), "/ping");
    let mut ping = vec![first, 0x80 | 125, 1, 2, 3, 4];
    ping.extend([0u8; 125]);
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    // Write until the server stops reading (its thread is blocked writing pongs) or
    // drops us; never read a byte.
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    for _ in 0..200 {
        if s.write_all(&burst).is_err() {
            break;
        }
    }
    let (code, _reason) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the peer was dropped");
    assert_eq!(code, 1006);
    assert!(pings.load(std::sync::atomic::Ordering::SeqCst) > 1000);
    // Others are served throughout.
    let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/echo")).unwrap();
    ws.send_text("still here").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("still here".into()));
}

/// A burst of connections faster than the accept loop takes them waits in the listen
/// queue: none is dropped (with std's backlog of 128, the 130th connect here would
/// wait for a SYN retransmission, a second or more).
#[test]
fn a_burst_of_connects_waits_in_the_listen_queue() {
    // Bound but not accepting yet: every connection has to wait in the queue.
    let server = Server::builder()
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let streams: Vec<TcpStream> = (0..400)
        .map(|i| {
            TcpStream::connect_timeout(&addr, Duration::from_millis(900))
                .unwrap_or_else(|e| panic!("connect {i} of a burst of 400: {e}"))
        })
        .collect();
    let handle = server.spawn().unwrap();
    // And then they are served.
    let mut ws = raw_client(addr, "/echo");
    ws.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']).unwrap();
    let mut reply = [0u8; 4];
    ws.read_exact(&mut reply).unwrap();
    assert_eq!(reply, [0x81, 2, b'h', b'i']);
    drop(streams);
    handle.shutdown(Duration::from_secs(1));
}

/// Sends a plain HTTP request and reads the whole answer (the server closes).
fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn pages_a_fallback_and_per_path_hooks() {
    let server = start(
        Server::builder()
            .route("/echo", |_| Echo)
            .fallback(|_| Closer)
            .page("/", "text/html; charset=utf-8", &b"<h1>hello</h1>"[..])
            .should_upgrade_at("/deny", |_| Decision::reject(403, "not here"))
            .should_upgrade_at("/echo", |req| {
                match req.protocols().iter().any(|p| p == "v2") {
                    true => Decision::accept().with_protocol("v2"),
                    false => Decision::reject(400, "v2 only"),
                }
            })
            .should_upgrade(|req| match req.origin() {
                Some("https://evil.example") => Decision::reject(401, "bad origin"),
                _ => Decision::accept(),
            }),
    );
    let addr = server.local_addr();
    let status = |err: Error| match err {
        Error::Handshake(e) => e.status(),
        other => panic!("{other:?}"),
    };

    // The path's own hook first: its accept (with its subprotocol), its refusal.
    let (mut ws, response) = ClientBuilder::new(&url(addr, "/echo"))
        .protocol("v1")
        .protocol("v2")
        .connect()
        .unwrap();
    assert_eq!(response.protocol(), Some("v2"));
    ws.send_text("hi").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("hi".into()));
    let refused = hybi_std::connect(&url(addr, "/echo")).unwrap_err();
    assert_eq!(status(refused), Some(400));
    // Then the global hook, which may still refuse.
    let evil = ClientBuilder::new(&url(addr, "/echo"))
        .protocol("v2")
        .header("Origin", "https://evil.example")
        .connect()
        .unwrap_err();
    assert_eq!(status(evil), Some(401));
    // A hook without a route rejects, though the fallback serves every other path.
    assert_eq!(
        status(hybi_std::connect(&url(addr, "/deny")).unwrap_err()),
        Some(403)
    );
    let (mut ws, _) = hybi_std::connect(&url(addr, "/anything")).unwrap();
    ws.send_text("bye?").unwrap();
    match ws.read() {
        Ok(Message::Close(info)) => assert_eq!(info.code.as_u16(), 4002),
        other => panic!("{other:?}"),
    }

    // Pages: plain HTTP on a page path gets the body and `Connection: close`.
    let page = http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Connection: close\r\n"), "{page}");
    assert!(page.contains("Content-Type: text/html; charset=utf-8\r\n"));
    assert!(page.ends_with("\r\n\r\n<h1>hello</h1>"), "{page}");
    let head = http(addr, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"));
    let post = http(
        addr,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let plain = http(addr, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.starts_with("HTTP/1.1 426"), "{plain}");
    assert!(http(addr, "GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400"));
    // The server goes on after all of them.
    let (mut ws, _) = ClientBuilder::new(&url(addr, "/echo"))
        .protocol("v2")
        .connect()
        .unwrap();
    ws.send_text("still here").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("still here".into()));
}

#[test]
fn without_a_fallback_a_path_whose_hook_accepts_gets_404() {
    let server = start(
        Server::builder()
            .route("/echo", |_| Echo)
            .should_upgrade_at("/hooked", |_| Decision::accept()),
    );
    let addr = server.local_addr();
    match hybi_std::connect(&url(addr, "/hooked")).unwrap_err() {
        Error::Handshake(e) => assert_eq!(e.status(), Some(404)),
        other => panic!("{other:?}"),
    }
    let plain = http(addr, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.starts_with("HTTP/1.1 404"), "{plain}");
}

/// Waits (at most 5 s) until the server holds `n` connections.
fn wait_for_peers(server: &ServerHandle, n: usize) {
    let until = Instant::now() + Duration::from_secs(5);
    while server.peers().len() != n {
        assert!(Instant::now() < until, "{} peers", server.peers().len());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn shutdown_returns_once_every_closing_handshake_is_done() {
    let (tx, rx) = mpsc::channel();
    let server = start(Server::builder().route("/report", move |_| Report(tx.clone())));
    let addr = server.local_addr();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (mut ws, _) = hybi_std::connect(&url(addr, "/report")).unwrap();
            std::thread::spawn(move || {
                ws.set_read_timeout(Some(Duration::from_secs(10)));
                loop {
                    match ws.read() {
                        Ok(Message::Close(info)) => return info.code,
                        Ok(_) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    wait_for_peers(&server, 3);
    let started = Instant::now();
    server.shutdown(Duration::from_secs(60));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "waited {took:?} for answering clients"
    );
    for client in clients {
        assert_eq!(client.join().unwrap(), CloseCode::GOING_AWAY);
    }
    // Every on_close ran before shutdown returned.
    let seen: Vec<u16> = rx.try_iter().map(|(code, _)| code).collect();
    assert_eq!(seen, [1001, 1001, 1001]);
}

#[test]
fn shutdown_ends_connections_that_do_not_answer_at_the_grace_period() {
    let (tx, rx) = mpsc::channel();
    let server = start(Server::builder().route("/report", move |_| Report(tx.clone())));
    let addr = server.local_addr();
    // Completes its handshake, then never reads nor answers the close.
    let _silent = raw_client(addr, "/report");
    wait_for_peers(&server, 1);
    let grace = Duration::from_millis(300);
    let started = Instant::now();
    server.shutdown(grace);
    let took = started.elapsed();
    assert!(
        took >= grace,
        "returned after {took:?}, before the grace period"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Ended from outside: no close handshake.
    let (code, _) = rx
        .try_recv()
        .expect("on_close ran before shutdown returned");
    assert_eq!(code, 1006);
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

/// Panics on the first message.
struct Panics;
impl Handler for Panics {
    fn on_text(&mut self, _peer: &Peer, _text: &str) {
        panic!("a handler bug (expected by the test)");
    }
}

#[test]
fn a_handler_that_panics_does_not_hold_a_shutdown() {
    let server = start(Server::builder().route("/panics", |_| Panics));
    let (mut ws, _) = hybi_std::connect(&url(server.local_addr(), "/panics")).unwrap();
    wait_for_peers(&server, 1);
    ws.send_text("boom").unwrap();
    wait_for_peers(&server, 0);
    let started = Instant::now();
    server.shutdown(Duration::from_secs(60));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
