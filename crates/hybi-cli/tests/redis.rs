//! `hybi serve --redis`: two servers on different ports sharing /chat through one
//! real `redis-server`. Clients on either see each other's messages in order per
//! sender; Redis restarted mid-chat: the chat resumes; a malformed message on the
//! channel is dropped and reported.
//!
//! `redis-server` must be on the PATH: without it these tests fail (CI installs it).

#![cfg(feature = "test-redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hybi_std::Message;

const WAIT: Duration = Duration::from_secs(5);

type Ws = hybi_std::WebSocket<hybi_std::MaybeTls>;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` on `port`, killed on drop.
struct Redis {
    child: Child,
    port: u16,
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

/// `hybi serve --redis` on a free port; its stdout lines arrive on the channel.
struct Serve {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
}

impl Serve {
    fn start(redis: u16) -> Serve {
        let addr = format!("127.0.0.1:{}", free_port());
        let redis = format!("redis://127.0.0.1:{redis}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hybi"))
            .args(["serve", "--addr", &addr, "--workers", "1", "--grace", "1"])
            .args(["--redis", &redis])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let serve = Serve { child, addr, lines };
        serve.expect_line(|l| l.contains("/chat shared through redis://"));
        serve
    }

    fn expect_line(&self, want: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .expect("expected line from hybi serve");
            if want(&line) {
                return line;
            }
        }
    }

    fn subscribed(&self, times: u32) {
        let want = format!("subscribed {times} time(s)");
        self.expect_line(|l| l.contains(&want));
    }

    /// A chat client, past its welcome.
    fn client(&self) -> Ws {
        let (mut ws, _) = hybi_std::connect(&format!("ws://{}/chat", self.addr)).unwrap();
        ws.set_read_timeout(Some(WAIT));
        assert!(next(&mut ws).contains(r#""type":"welcome""#));
        ws
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn next(ws: &mut Ws) -> String {
    match ws.read().unwrap() {
        Message::Text(t) => t,
        other => panic!("expected text, got {other:?}"),
    }
}

/// The text of the next chat message (join and leave notices skipped).
fn next_message(ws: &mut Ws) -> String {
    loop {
        let json = next(ws);
        if !json.contains(r#""type":"message""#) {
            continue;
        }
        let (_, text) = json.split_once(r#""text":""#).expect("a text field");
        return text.trim_end_matches("\"}").to_owned();
    }
}

#[test]
fn two_servers_share_the_chat_in_order_per_sender() {
    let redis = Redis::start(free_port());
    let a = Serve::start(redis.port);
    let b = Serve::start(redis.port);
    a.subscribed(1);
    b.subscribed(1);
    let mut on_a = a.client();
    let mut on_b = b.client();
    for i in 0..50 {
        on_a.send_text(&format!("a{i}")).unwrap();
        on_b.send_text(&format!("b{i}")).unwrap();
    }
    for ws in [&mut on_a, &mut on_b] {
        let (mut next_a, mut next_b) = (0, 0);
        while next_a < 50 || next_b < 50 {
            let t = next_message(ws);
            if let Some(i) = t.strip_prefix('a') {
                assert_eq!(i, next_a.to_string(), "a's messages in order, once");
                next_a += 1;
            } else if let Some(i) = t.strip_prefix('b') {
                assert_eq!(i, next_b.to_string(), "b's messages in order, once");
                next_b += 1;
            }
        }
    }

    // A malformed message on the channel: dropped, reported, the chat goes on.
    redis.command(&["PUBLISH", "hybi:room:chat", "garbage"]);
    a.expect_line(|l| l.contains("1 malformed dropped"));
    b.expect_line(|l| l.contains("1 malformed dropped"));
    on_a.send_text("still here").unwrap();
    assert_eq!(next_message(&mut on_b), "still here");
}

#[test]
fn the_chat_resumes_after_redis_restarts() {
    let redis = Redis::start(free_port());
    let a = Serve::start(redis.port);
    let b = Serve::start(redis.port);
    a.subscribed(1);
    b.subscribed(1);
    let mut on_a = a.client();
    let mut on_b = b.client();
    on_a.send_text("before").unwrap();
    assert_eq!(next_message(&mut on_b), "before");
    assert_eq!(next_message(&mut on_a), "before");

    let port = redis.kill();
    // While Redis is away, each server's own members still chat.
    on_a.send_text("while down").unwrap();
    assert_eq!(next_message(&mut on_a), "while down");
    let _redis = Redis::start(port);
    a.subscribed(2);
    b.subscribed(2);
    // Pub/sub is at most once: what was published before both resubscribed may be
    // gone. Once a message gets through, later ones follow in order.
    on_b.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + WAIT;
    'probe: loop {
        assert!(Instant::now() < deadline, "the chat did not resume");
        on_a.send_text("probe").unwrap();
        while let Ok(Message::Text(t)) = on_b.read() {
            if t.contains(r#""text":"probe""#) {
                break 'probe;
            }
        }
    }
    on_b.set_read_timeout(Some(WAIT));
    for i in 0..10 {
        on_a.send_text(&format!("after{i}")).unwrap();
    }
    let mut i = 0;
    while i < 10 {
        let t = next_message(&mut on_b);
        if t != "probe" && t != "while down" {
            assert_eq!(t, format!("after{i}"));
            i += 1;
        }
    }
}
