//! Rooms bridged through a real `redis-server` (feature `redis`): two servers in this
//! process, each with its own bridge (its own node id) to one Redis. A client on one
//! sees the other's messages in order, its own once; a malformed message on the
//! channel is dropped and counted; Redis killed and restarted: the bridges reconnect
//! and what overflowed the queue meanwhile is counted as lost. A hybi-std room and a
//! hybi-mio room bridged to one channel chat together.
//!
//! `redis-server` must be on the PATH: without it these tests fail (CI installs it).
#![cfg(feature = "test-redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hybi_mio::{BridgeOptions, Context, Handler, RedisBridge, Room, Server};
use hybi_std::Message;

const WAIT: Duration = Duration::from_secs(5);

type Ws = hybi_std::WebSocket<hybi_std::MaybeTls>;

/// A `redis-server` on `port`, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Redis {
    fn start(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH (apt-get install -y redis-server)");
        let redis = Redis { child, port };
        let deadline = Instant::now() + WAIT;
        while redis.command(&["PING"]).as_deref() != Some(b"+PONG\r\n".as_slice()) {
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends one command, raw RESP, and returns the first reply's bytes.
    fn command(&self, args: &[&str]) -> Option<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(WAIT)).ok()?;
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out += &format!("${}\r\n{a}\r\n", a.len());
        }
        s.write_all(out.as_bytes()).ok()?;
        let mut buf = vec![0; 512];
        let n = s.read(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    fn kill(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chat member: every text it sends goes to the whole room.
struct Member(Room);
impl Handler for Member {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.0.join(ctx);
    }
    fn on_text(&mut self, _ctx: &mut Context<'_>, text: &str) {
        self.0.broadcast(text);
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, _: hybi::CloseCode, _: &str) {
        self.0.leave(ctx.id());
    }
}

/// A server with one bridged room, `chat`, at /chat.
struct Node {
    server: Server,
    bridge: RedisBridge,
    room: Room,
}

impl Node {
    fn start(redis: &str, options: BridgeOptions) -> Node {
        let bridge = RedisBridge::connect_with(redis, options).unwrap();
        let room = Room::bridged(&bridge, "chat");
        let members = room.clone();
        let server = Server::builder()
            .workers(1)
            .route("/chat", move |_| Member(members.clone()))
            .bind("127.0.0.1:0")
            .unwrap();
        Node {
            server,
            bridge,
            room,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// A client in the room (once this returns, it is a member).
    fn client(&self) -> Ws {
        let before = self.room.len();
        let (mut ws, _) = hybi_std::connect(&format!("ws://{}/chat", self.addr())).unwrap();
        ws.set_read_timeout(Some(WAIT));
        until(|| self.room.len() > before, "the client joined");
        ws
    }

    fn wait_subscribed(&self, times: u64) {
        until(
            || self.bridge.stats().subscriptions >= times,
            "the bridge subscribed",
        );
    }
}

fn until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(ws: &mut Ws) -> String {
    match ws.read().unwrap() {
        Message::Text(t) => t,
        other => panic!("expected text, got {other:?}"),
    }
}

fn assert_quiet(ws: &mut Ws) {
    ws.set_read_timeout(Some(Duration::from_millis(100)));
    assert!(
        matches!(ws.read(), Err(hybi_std::Error::Timeout)),
        "nothing more"
    );
    ws.set_read_timeout(Some(WAIT));
}

#[test]
fn clients_on_two_nodes_see_each_other_in_order_and_their_own_once() {
    let redis = Redis::start(free_port());
    let a = Node::start(&redis.url(), BridgeOptions::default());
    let b = Node::start(&redis.url(), BridgeOptions::default());
    assert_ne!(a.bridge.node_id(), b.bridge.node_id());
    a.wait_subscribed(1);
    b.wait_subscribed(1);
    let mut on_a = a.client();
    let mut on_b = b.client();
    let mut also_b = b.client();

    for i in 0..100 {
        on_a.send_text(&format!("a{i}")).unwrap();
        on_b.send_text(&format!("b{i}")).unwrap();
    }
    // Each client sees both senders' 100 messages, each sender's in order, once.
    for ws in [&mut on_a, &mut on_b, &mut also_b] {
        let (mut next_a, mut next_b) = (0, 0);
        while next_a < 100 || next_b < 100 {
            let t = text(ws);
            if let Some(i) = t.strip_prefix('a') {
                assert_eq!(i, next_a.to_string(), "a's messages in order");
                next_a += 1;
            } else if let Some(i) = t.strip_prefix('b') {
                assert_eq!(i, next_b.to_string(), "b's messages in order");
                next_b += 1;
            }
        }
        assert_quiet(ws);
    }
    let (sa, sb) = (a.bridge.stats(), b.bridge.stats());
    assert_eq!((sa.published, sa.received, sa.lost), (100, 100, 0));
    // Received once per node, whatever the number of members there.
    assert_eq!((sb.published, sb.received, sb.lost), (100, 100, 0));
}

#[test]
fn a_malformed_message_on_the_channel_is_dropped_and_counted() {
    let redis = Redis::start(free_port());
    let a = Node::start(&redis.url(), BridgeOptions::default());
    let b = Node::start(&redis.url(), BridgeOptions::default());
    a.wait_subscribed(1);
    b.wait_subscribed(1);
    let mut on_a = a.client();
    let mut on_b = b.client();

    let reply = redis.command(&["PUBLISH", "hybi:room:chat", "not an envelope"]);
    assert_eq!(
        reply.as_deref(),
        Some(b":2\r\n".as_slice()),
        "both nodes subscribed"
    );
    // A text envelope whose payload is not UTF-8: raw bytes through the test's client.
    let bad = hybi_mio::encode_envelope(1, b't', &[0xff, 0xfe]);
    let mut s = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    let mut cmd = format!(
        "*3\r\n$7\r\nPUBLISH\r\n$14\r\nhybi:room:chat\r\n${}\r\n",
        bad.len()
    )
    .into_bytes();
    cmd.extend_from_slice(&bad);
    cmd.extend_from_slice(b"\r\n");
    s.write_all(&cmd).unwrap();
    until(
        || a.bridge.stats().dropped_malformed == 2 && b.bridge.stats().dropped_malformed == 2,
        "both dropped",
    );
    // Nothing reached the clients, and the room still works.
    on_a.send_text("still here").unwrap();
    assert_eq!(text(&mut on_b), "still here");
    assert_eq!(text(&mut on_a), "still here");
    assert_quiet(&mut on_a);
    assert_quiet(&mut on_b);
    assert_eq!(a.bridge.stats().received, 0);
}

#[test]
fn after_a_redis_restart_the_bridges_reconnect_and_count_what_was_lost() {
    let redis = Redis::start(free_port());
    let url = redis.url();
    let small = BridgeOptions {
        queue_messages: 10,
        ..BridgeOptions::default()
    };
    let a = Node::start(&url, small);
    let b = Node::start(&url, BridgeOptions::default());
    a.wait_subscribed(1);
    b.wait_subscribed(1);
    let mut on_b = b.client();
    a.room.broadcast("before");
    assert_eq!(text(&mut on_b), "before");

    let port = redis.kill();
    // Give the publisher a moment to see the connection close (it checks every
    // 200 ms while idle); if it has not, its first batch is lost with the connection.
    std::thread::sleep(Duration::from_millis(300));
    // 30 broadcasts while Redis is away: 10 wait in the queue, the rest are lost.
    for i in 0..30 {
        a.room.broadcast(format!("down{i}"));
    }
    until(|| a.bridge.stats().lost >= 20, "the overflow counted");
    let lost = a.bridge.stats().lost;
    assert!((20..=30).contains(&lost), "lost {lost}");

    let _redis = Redis::start(port);
    a.wait_subscribed(2);
    b.wait_subscribed(2);
    // Until both are subscribed again, what a publishes may reach no one (pub/sub is at
    // most once): send until one arrives.
    let deadline = Instant::now() + WAIT;
    on_b.set_read_timeout(Some(Duration::from_millis(50)));
    'wait: loop {
        assert!(Instant::now() < deadline, "no message after the restart");
        a.room.broadcast("probe");
        while let Ok(Message::Text(t)) = on_b.read() {
            if t == "probe" {
                break 'wait;
            }
        }
    }
    on_b.set_read_timeout(Some(WAIT));
    // Then service is back: each message arrives, and nothing more is lost.
    for i in 0..20 {
        let sent = format!("after{i}");
        a.room.broadcast(sent.as_str());
        loop {
            let t = text(&mut on_b);
            if t == sent {
                break;
            }
            assert!(t == "probe" || t.starts_with("down"), "unexpected {t}");
        }
    }
    assert_eq!(a.bridge.stats().lost, lost, "nothing lost once reconnected");
}

/// A hybi-std chat member, for a node of the other adapter.
struct StdMember(hybi_std::Room);
impl hybi_std::Handler for StdMember {
    fn on_open(&mut self, peer: &hybi_std::Peer) {
        self.0.join(peer);
    }
    fn on_text(&mut self, _peer: &hybi_std::Peer, text: &str) {
        self.0.broadcast(text);
    }
    fn on_close(&mut self, peer: &hybi_std::Peer, _: hybi::CloseCode, _: &str) {
        self.0.leave(peer.id());
    }
}

#[test]
fn a_hybi_std_room_and_a_hybi_mio_room_share_one_channel() {
    let redis = Redis::start(free_port());
    let a = Node::start(&redis.url(), BridgeOptions::default());
    let std_bridge = RedisBridge::connect(&redis.url()).unwrap();
    let std_room = hybi_std::Room::bridged(&std_bridge, "chat");
    let members = std_room.clone();
    let std_server = hybi_std::Server::builder()
        .route("/chat", move |_| StdMember(members.clone()))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap();
    a.wait_subscribed(1);
    until(|| std_bridge.stats().subscriptions >= 1, "subscribed");
    let mut on_mio = a.client();
    let (mut on_std, _) =
        hybi_std::connect(&format!("ws://{}/chat", std_server.local_addr())).unwrap();
    on_std.set_read_timeout(Some(WAIT));
    until(|| std_room.len() == 1, "the hybi-std client joined");

    for i in 0..20 {
        on_mio.send_text(&format!("m{i}")).unwrap();
        on_std.send_text(&format!("s{i}")).unwrap();
    }
    for ws in [&mut on_mio, &mut on_std] {
        let (mut next_m, mut next_s) = (0, 0);
        while next_m < 20 || next_s < 20 {
            let t = text(ws);
            if let Some(i) = t.strip_prefix('m') {
                assert_eq!(i, next_m.to_string());
                next_m += 1;
            } else if let Some(i) = t.strip_prefix('s') {
                assert_eq!(i, next_s.to_string());
                next_s += 1;
            }
        }
        assert_quiet(ws);
    }
    assert_eq!(std_bridge.stats().received, 20);
    assert_eq!(a.bridge.stats().received, 20);
}
