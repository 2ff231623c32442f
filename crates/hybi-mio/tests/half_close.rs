//! A peer that half-closes its side (`shutdown(SHUT_WR)`) right after its last bytes
//! still gets everything it was owed: the replies to what it sent, the close frame
//! answering its close (RFC 6455 §5.5.1), an HTTP refusal. End of input is not a broken
//! transport: the other direction still works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use hybi_mio::{CloseCode, Context, Handler, Server, ServerBuilder};

/// Echoes every text, and reports how the connection ended.
struct Echo(mpsc::Sender<(u16, String)>);
impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
    fn on_close(&mut self, _: &mut Context<'_>, code: CloseCode, reason: &str) {
        let _ = self.0.send((code.as_u16(), reason.to_owned()));
    }
}

fn echo_server() -> (Server, SocketAddr, mpsc::Receiver<(u16, String)>) {
    echo_server_with(Server::builder())
}

fn echo_server_with(builder: ServerBuilder) -> (Server, SocketAddr, mpsc::Receiver<(u16, String)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = builder
        .workers(1)
        .route("/echo", move |_| Echo(tx.lock().unwrap().clone()))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    (server, addr, rx)
}

const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A masked client frame.
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..126 => frame.push(0x80 | n as u8),
        n @ 126..65536 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// Everything the server sends until it closes its side (or 5 s pass).
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no end of input from the server ({e}); got {all:?}"),
        }
    }
}

/// Splits off the HTTP head (through the blank line).
fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or_else(|| {
            panic!(
                "no complete HTTP head in {:?}",
                String::from_utf8_lossy(bytes)
            )
        });
    bytes.split_at(end)
}

/// Reads the 101 and nothing more.
fn upgrade(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(UPGRADE).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    s
}

#[test]
fn a_message_and_a_close_followed_by_fin_get_the_echo_and_the_close_reply() {
    // Once after the handshake, once with the request, the frames and the FIN in a
    // single write (the frames then arrive as the handshake's leftover).
    for all_at_once in [false, true] {
        let (_server, addr, closed) = echo_server();
        let mut bytes = Vec::new();
        let mut s = if all_at_once {
            bytes.extend_from_slice(UPGRADE);
            TcpStream::connect(addr).unwrap()
        } else {
            upgrade(addr)
        };
        bytes.extend(masked(0x1, b"hello"));
        bytes.extend(masked(0x8, &close_payload(4000, "bye")));
        s.write_all(&bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();

        let all = read_all(&mut s);
        let frames = if all_at_once {
            let (head, rest) = split_head(&all);
            assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
            rest
        } else {
            &all[..]
        };
        // The echo, then a close echoing the code, then the end (RFC 6455 §5.5.1).
        let mut expected = vec![0x81, 5];
        expected.extend_from_slice(b"hello");
        expected.extend_from_slice(&[0x88, 2, 0x0f, 0xa0]);
        assert_eq!(frames, &expected[..], "all at once: {all_at_once}");
        let (code, reason) = closed.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!((code, reason.as_str()), (4000, "bye"));
    }
}

#[test]
fn a_message_followed_by_fin_without_a_close_is_echoed_then_reported_abnormal() {
    let (_server, addr, closed) = echo_server();
    let mut s = upgrade(addr);
    s.write_all(&masked(0x1, b"last words")).unwrap();
    s.shutdown(Shutdown::Write).unwrap();

    let all = read_all(&mut s);
    let mut expected = vec![0x81, 10];
    expected.extend_from_slice(b"last words");
    assert_eq!(all, expected, "the echo, then the end (no close frame)");
    let (code, _) = closed.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(code, 1006);
    assert!(
        closed.recv_timeout(Duration::from_millis(100)).is_err(),
        "on_close once"
    );
}

#[test]
fn an_echo_larger_than_the_socket_takes_at_once_is_written_whole_after_fin() {
    // 8 MiB: more than loopback accepts at once, so most of the echo is still queued
    // when the end of input arrives (the high-water mark is above it: reading goes on
    // while the echo is written).
    let (_server, addr, closed) = echo_server_with(Server::builder().high_water(64 << 20));
    let mut s = upgrade(addr);
    let text = vec![b'x'; 8 << 20];
    s.write_all(&masked(0x1, &text)).unwrap();
    s.shutdown(Shutdown::Write).unwrap();

    let all = read_all(&mut s);
    let mut header = vec![0x81, 127];
    header.extend_from_slice(&(text.len() as u64).to_be_bytes());
    assert_eq!(all.len(), header.len() + text.len(), "the whole echo");
    assert_eq!(all[..header.len()], header[..]);
    assert!(all[header.len()..].iter().all(|&b| b == b'x'));
    let (code, _) = closed.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(code, 1006);
}

#[test]
fn a_refused_request_followed_by_fin_still_gets_the_whole_refusal() {
    let (_server, addr, _closed) = echo_server();
    let requests: [&[u8]; 3] = [
        // An upgrade to a path with no route.
        b"GET /nowhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        // A plain request for a page that does not exist.
        b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n",
        // A plain request to the WebSocket endpoint.
        b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for (request, status) in requests.into_iter().zip(["404", "404", "426"]) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let all = read_all(&mut s);
        let (head, body) = split_head(&all);
        let head = String::from_utf8_lossy(head);
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{head:?}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
        assert_eq!(body.len(), length, "the whole body");
    }
}

/// Records what a client connection on the loop sees.
struct Watch(mpsc::Sender<String>);
impl Handler for Watch {
    fn on_open(&mut self, _: &mut Context<'_>) {
        let _ = self.0.send("open".into());
    }
    fn on_text(&mut self, _: &mut Context<'_>, text: &str) {
        let _ = self.0.send(format!("text {text}"));
    }
    fn on_close(&mut self, _: &mut Context<'_>, code: CloseCode, reason: &str) {
        let _ = self.0.send(format!("close {code} {reason}"));
    }
}

#[test]
fn a_client_whose_server_answers_and_closes_at_once_still_replies_to_the_close() {
    // A raw server that sends the 101, a message and a close in one write, then FIN.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut handshake = hybi::handshake::ServerHandshake::new();
        let mut buf = [0u8; 4096];
        let request = loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed during its request");
            if let Some(request) = handshake.receive(&buf[..n]).unwrap() {
                break request;
            }
        };
        let accepted = request.accept(None, &[]).unwrap();
        let mut bytes = accepted.response().to_bytes();
        bytes.extend_from_slice(&[0x81, 2, b'h', b'i']);
        bytes.extend_from_slice(&[0x88, 4, 0x03, 0xe8, b'o', b'k']);
        s.write_all(&bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        // The client's masked close reply, then its end.
        read_all(&mut s)
    });
    let clients = Server::builder().workers(1).start().unwrap();
    let (tx, rx) = mpsc::channel();
    clients
        .connect(&format!("ws://{addr}/"), Watch(tx))
        .unwrap();
    let seen: Vec<String> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    assert_eq!(seen, ["open", "text hi", "close 1000 ok"]);
    let reply = server.join().unwrap();
    assert_eq!(
        reply.len(),
        2 + 4 + 2,
        "a masked close with the code: {reply:?}"
    );
    assert_eq!(reply[..2], [0x88, 0x80 | 2]);
    let key = &reply[2..6];
    let code = [reply[6] ^ key[0], reply[7] ^ key[1]];
    assert_eq!(u16::from_be_bytes(code), 1000);
}

#[test]
fn a_ping_followed_by_fin_still_gets_its_pong() {
    // After the handshake, and with the ping as the handshake's leftover.
    for all_at_once in [false, true] {
        let (_server, addr, closed) = echo_server();
        let mut bytes = Vec::new();
        let mut s = if all_at_once {
            bytes.extend_from_slice(UPGRADE);
            TcpStream::connect(addr).unwrap()
        } else {
            upgrade(addr)
        };
        bytes.extend(masked(0x9, b"are you there"));
        s.write_all(&bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();

        let all = read_all(&mut s);
        let frames = if all_at_once {
            split_head(&all).1
        } else {
            &all[..]
        };
        let mut expected = vec![0x8a, 13];
        expected.extend_from_slice(b"are you there");
        assert_eq!(frames, &expected[..], "all at once: {all_at_once}");
        let (code, _) = closed.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(code, 1006);
    }
}
