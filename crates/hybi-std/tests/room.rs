//! A [`Room`] broadcasting with `Peer::try_send`: a member that never reads is
//! skipped, the others get every message, and a broadcast never waits on a member.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hybi_std::{CloseCode, Handler, Message, Peer, Room, Server, ServerHandle, TrySendError};

/// Joins the room on open, leaves it on close.
struct Member(Room);
impl Handler for Member {
    fn on_open(&mut self, peer: &Peer) {
        self.0.join(peer);
    }
    fn on_close(&mut self, peer: &Peer, _: CloseCode, _: &str) {
        self.0.leave(peer.id());
    }
}

fn room_server(room: &Room) -> ServerHandle {
    let room = room.clone();
    Server::builder()
        .route("/room", move |_| Member(room.clone()))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap()
}

/// Completes a client handshake on a raw socket (with a small receive buffer, so
/// that it fills soon) and never reads again.
fn silent_client(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 << 10).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut s: TcpStream = socket.into();
    write!(
        s,
        "GET /room HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s
}

fn wait_for_members(room: &Room, n: usize) {
    let until = Instant::now() + Duration::from_secs(5);
    while room.len() != n {
        assert!(Instant::now() < until, "{} members", room.len());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_member_that_never_reads_is_skipped_and_does_not_stall_the_broadcaster() {
    let room = Room::new();
    let server = room_server(&room);
    let addr = server.local_addr();

    let _silent = silent_client(addr);
    wait_for_members(&room, 1);
    let slow = room.members().pop().unwrap();

    // The fast member reads everything, handing the texts over.
    let (mut fast, _) = hybi_std::connect(&format!("ws://{addr}/room")).unwrap();
    wait_for_members(&room, 2);
    let (texts_tx, texts) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut binaries = 0usize;
        loop {
            match fast.read() {
                Ok(Message::Text(t)) if t == "done" => return binaries,
                Ok(Message::Text(t)) => texts_tx.send(t).unwrap(),
                Ok(Message::Binary(_)) => binaries += 1,
                Ok(_) => {}
                Err(e) => panic!("the fast member: {e}"),
            }
        }
    });

    // Fill the silent member's socket buffers (both ends) until it refuses many in a
    // row (the kernel may grow a send buffer for a while).
    let big = vec![7u8; 64 << 10];
    let probe = Message::from("probe");
    let mut refused = 0;
    for _ in 0..2_000 {
        room.broadcast(big.as_slice());
        refused = match slow.try_send(&probe) {
            Err(TrySendError::Busy | TrySendError::Full) => refused + 1,
            _ => 0,
        };
        if refused == 50 {
            break;
        }
    }
    assert_eq!(refused, 50, "the silent member's buffers never filled");

    // Until the fast member has caught up.
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

    // Now every broadcast reaches the fast member at once and skips the silent one.
    let skipped_before = room.skipped();
    for i in 0..200 {
        let started = Instant::now();
        let sent = room.broadcast(format!("m{i}"));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "broadcast {i} took {took:?}");
        assert!(sent >= 1, "broadcast {i} did not reach the fast member");
        loop {
            let t = texts.recv_timeout(Duration::from_secs(5)).unwrap();
            if t != "sync" {
                assert_eq!(t, format!("m{i}"), "in order, each once");
                break;
            }
        }
    }
    // The silent member was skipped (each time, unless the kernel took more from it).
    assert!(
        room.skipped() > skipped_before,
        "the silent member was never skipped"
    );

    room.broadcast("done");
    assert!(reader.join().unwrap() > 0);
    // A shutdown is not held by the blocked write either: the silent member is ended
    // at the grace period.
    let started = Instant::now();
    server.shutdown(Duration::from_millis(200));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(room.is_empty(), "every member left in on_close");
}

#[test]
fn broadcast_except_skips_the_author_and_leave_removes_a_member() {
    let room = Room::new();
    let server = room_server(&room);
    let url = format!("ws://{}/room", server.local_addr());
    let mut clients: Vec<_> = (0..3).map(|_| hybi_std::connect(&url).unwrap().0).collect();
    wait_for_members(&room, 3);
    let author = room.members()[0].id();
    assert_eq!(room.broadcast_except(author, "not to the author"), 2);
    assert_eq!(room.broadcast(&b"to all"[..]), 3);
    let mut heard = 0;
    for ws in &mut clients {
        ws.set_read_timeout(Some(Duration::from_secs(5)));
        let first = ws.read().unwrap();
        if first == Message::Text("not to the author".into()) {
            heard += 1;
            assert_eq!(ws.read().unwrap(), Message::Binary(b"to all".to_vec()));
        } else {
            assert_eq!(first, Message::Binary(b"to all".to_vec()));
        }
    }
    assert_eq!(heard, 2);
    room.leave(author);
    assert_eq!(room.len(), 2);
    assert_eq!(room.broadcast("fewer"), 2);
    assert_eq!(room.skipped(), 0);
    drop(clients);
    server.shutdown(Duration::from_secs(2));
}
