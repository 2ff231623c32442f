//! hybi-mio end to end over loopback: many concurrent connections, broadcast from
//! another thread, backpressure, handshake timeout, graceful shutdown, keepalive,
//! completions, plain HTTP pages, client connections on the loop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hybi_mio::{
    CloseCode, Config, ConnId, Context, Decision, Handler, SendFailure, Sender, Server,
    ServerBuilder, SlowPeer,
};
use hybi_std::Message;

struct Echo;
impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send_binary(data);
    }
}

fn echo_server(builder: ServerBuilder) -> (Server, SocketAddr) {
    let server = builder
        .workers(1)
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    (server, addr)
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

/// A client on the event loop that sends `count` numbered messages one after the
/// other, checks every echo arrives in order, and reports (ok, messages) at the end.
struct Counter {
    next: usize,
    count: usize,
    done: mpsc::Sender<Result<usize, String>>,
    reported: bool,
}

impl Counter {
    fn report(&mut self, result: Result<usize, String>) {
        if !self.reported {
            self.reported = true;
            let _ = self.done.send(result);
        }
    }
}

impl Handler for Counter {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx.send_text("0");
    }
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        if text != self.next.to_string() {
            let got = text.to_owned();
            self.report(Err(format!("expected {} got {got}", self.next)));
            let _ = ctx.close(CloseCode::NORMAL, "");
            return;
        }
        self.next += 1;
        if self.next == self.count {
            let n = self.next;
            self.report(Ok(n));
            let _ = ctx.close(CloseCode::NORMAL, "done");
        } else {
            let _ = ctx.send_text(&self.next.to_string());
        }
    }
    fn on_close(&mut self, _ctx: &mut Context<'_>, code: CloseCode, reason: &str) {
        let why = format!("closed early: {code} {reason}");
        self.report(Err(why));
    }
}

#[test]
fn a_thousand_concurrent_clients_exchange_messages_without_loss_or_reordering() {
    let (_server, addr) = echo_server(Server::builder());
    let clients = Server::builder().workers(1).start().unwrap();
    const CONNS: usize = 1000;
    const MESSAGES: usize = 20;
    let (tx, rx) = mpsc::channel();
    for _ in 0..CONNS {
        clients
            .connect(
                &url(addr, "/echo"),
                Counter {
                    next: 0,
                    count: MESSAGES,
                    done: tx.clone(),
                    reported: false,
                },
            )
            .unwrap();
    }
    let mut ok = 0;
    for _ in 0..CONNS {
        match rx
            .recv_timeout(Duration::from_secs(60))
            .expect("every client reports")
        {
            Ok(n) => {
                assert_eq!(n, MESSAGES);
                ok += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, CONNS);
}

/// A chat member: keeps every member's Sender in the room.
struct Member {
    room: Arc<Mutex<Vec<(ConnId, Sender)>>>,
    joined: mpsc::Sender<()>,
}
impl Handler for Member {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.room.lock().unwrap().push((ctx.id(), ctx.sender()));
        let _ = self.joined.send(());
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, _: CloseCode, _: &str) {
        let id = ctx.id();
        self.room.lock().unwrap().retain(|(m, _)| *m != id);
    }
}

#[test]
fn a_broadcast_from_another_thread_reaches_every_member_exactly_once() {
    let room = Arc::new(Mutex::new(Vec::new()));
    let (joined_tx, joined_rx) = mpsc::channel();
    let joined_tx = Mutex::new(joined_tx);
    let members = Arc::clone(&room);
    let server = Server::builder()
        .workers(2)
        .route("/chat", move |_| Member {
            room: Arc::clone(&members),
            joined: joined_tx.lock().unwrap().clone(),
        })
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let mut clients: Vec<_> = (0..50)
        .map(|_| hybi_std::connect(&url(addr, "/chat")).unwrap().0)
        .collect();
    for _ in 0..50 {
        joined_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    // Broadcast from a thread that is neither a worker nor a client, with completions.
    let room2 = Arc::clone(&room);
    let completions = std::thread::spawn(move || {
        let text: Arc<str> = Arc::from("news for everyone");
        let members = room2.lock().unwrap().clone();
        members
            .iter()
            .map(|(_, s)| s.send_tracked(Arc::clone(&text)))
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert_eq!(completions.len(), 50);
    for c in &completions {
        assert_eq!(
            c.wait_timeout(Duration::from_secs(10)),
            Some(Ok(())),
            "written to the kernel"
        );
    }
    for ws in &mut clients {
        ws.set_read_timeout(Some(Duration::from_secs(5)));
        assert_eq!(
            ws.read().unwrap(),
            Message::Text("news for everyone".into())
        );
        ws.set_read_timeout(Some(Duration::from_millis(50)));
        assert!(
            matches!(ws.read(), Err(hybi_std::Error::Timeout)),
            "exactly once"
        );
    }
    // A member that left: its sender's completion fails.
    let (gone_id, gone) = room.lock().unwrap()[0].clone();
    let _ = gone_id;
    clients
        .remove(0)
        .close_and_wait(CloseCode::NORMAL, "bye")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = gone.send_tracked("anyone?");
        match c.wait_timeout(Duration::from_secs(5)) {
            Some(Err(SendFailure::Gone)) => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            other => panic!("{other:?}"),
        }
    }
}

/// Hands out the connection's Sender, and records backpressure and the end.
struct Sink {
    opened: mpsc::Sender<Sender>,
    paused: Arc<AtomicUsize>,
    closed: mpsc::Sender<(u16, String)>,
}

impl Handler for Sink {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = self.opened.send(ctx.sender());
    }
    fn on_backpressure(&mut self, ctx: &mut Context<'_>, paused: bool) {
        if paused {
            self.paused.fetch_add(1, Ordering::SeqCst);
            // Bounded: never more than the limit (2 × high water) plus one message.
            assert!(ctx.buffered_amount() <= (2 << 20) + (256 << 10) + 64);
        }
    }
    fn on_close(&mut self, _: &mut Context<'_>, code: CloseCode, reason: &str) {
        let _ = self.closed.send((code.as_u16(), reason.to_owned()));
    }
}

/// A server whose `/sink` hands out each connection's Sender; a client that never
/// reads; another thread that pushes 256 KiB messages until refused.
/// What a flood leaves: pause count, messages written, close reports, the client
/// (kept so its socket stays open) and the server.
struct Flood {
    paused: Arc<AtomicUsize>,
    written: usize,
    closed: mpsc::Receiver<(u16, String)>,
    client: hybi_std::WebSocket<hybi_std::MaybeTls>,
    _server: Server,
}

fn flood(policy: SlowPeer) -> Flood {
    let (open_tx, open_rx) = mpsc::channel();
    let (closed_tx, closed_rx) = mpsc::channel();
    let paused = Arc::new(AtomicUsize::new(0));
    let (open_tx, closed_tx, p2) = (
        Mutex::new(open_tx),
        Mutex::new(closed_tx),
        Arc::clone(&paused),
    );
    let server = Server::builder()
        .workers(1)
        .high_water(1 << 20)
        .slow_peer(policy)
        .route("/sink", move |_| Sink {
            opened: open_tx.lock().unwrap().clone(),
            paused: Arc::clone(&p2),
            closed: closed_tx.lock().unwrap().clone(),
        })
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let (ws, _) = hybi_std::connect(&url(addr, "/sink")).unwrap();
    let sender = open_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let chunk: Arc<[u8]> = Arc::from(vec![7u8; 256 << 10]);
    // Up to 1 GiB asked for, far beyond any socket buffer; a message is refused
    // once the output is over its limit.
    let mut pending = Vec::new();
    let mut refused = false;
    for i in 0..4096 {
        pending.push(sender.send_tracked(Arc::clone(&chunk)));
        if i % 8 == 7 {
            std::thread::sleep(Duration::from_millis(2));
            refused = pending.iter().any(|c| {
                matches!(
                    c.try_result(),
                    Some(Err(SendFailure::Backpressure | SendFailure::Gone))
                )
            });
            if refused {
                break;
            }
        }
    }
    assert!(
        refused,
        "4096 messages of 256 KiB queued for a peer that never reads"
    );
    let written = pending
        .iter()
        .filter(|c| c.try_result() == Some(Ok(())))
        .count();
    Flood {
        paused,
        written,
        closed: closed_rx,
        client: ws,
        _server: server,
    }
}

#[test]
fn a_peer_that_stops_reading_is_paused_with_bounded_output() {
    let Flood {
        paused,
        written,
        client: mut ws,
        closed: _closed,
        _server,
    } = flood(SlowPeer::Pause);
    let deadline = Instant::now() + Duration::from_secs(5);
    while paused.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(paused.load(Ordering::SeqCst), 1, "the handler was told");
    assert!(
        written < 4096,
        "sends were refused once the output backed up"
    );
    // Everything that was accepted arrives intact once the client reads.
    ws.set_read_timeout(Some(Duration::from_millis(500)));
    let mut total = 0usize;
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) => {
                assert!(b.iter().all(|&x| x == 7));
                total += b.len();
            }
            Ok(_) => {}
            Err(hybi_std::Error::Timeout) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        total >= written * (256 << 10),
        "{total} < {written} messages"
    );
}

#[test]
fn a_peer_that_stops_reading_is_dropped_under_the_drop_policy() {
    let Flood {
        paused,
        written,
        closed,
        client: _client,
        _server,
    } = flood(SlowPeer::Drop);
    assert_eq!(paused.load(Ordering::SeqCst), 0);
    assert!(written < 4096);
    let (code, reason) = closed.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(code, 1006);
    assert!(reason.contains("high-water"), "{reason}");
}

#[test]
fn a_client_that_never_finishes_its_handshake_is_dropped_at_the_timeout() {
    let (_server, addr) =
        echo_server(Server::builder().handshake_timeout(Duration::from_millis(300)));
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[test]
fn graceful_shutdown_sends_1001_to_every_client() {
    let (server, addr) = echo_server(Server::builder());
    let mut clients: Vec<_> = (0..20)
        .map(|_| {
            let (mut ws, _) = hybi_std::connect(&url(addr, "/echo")).unwrap();
            ws.send_text("hi").unwrap();
            ws.read().unwrap();
            ws
        })
        .collect();
    let readers: Vec<_> = clients
        .drain(..)
        .map(|mut ws| {
            std::thread::spawn(move || {
                ws.set_read_timeout(Some(Duration::from_secs(10)));
                match ws.read().unwrap() {
                    Message::Close(info) => info.code,
                    other => panic!("{other:?}"),
                }
            })
        })
        .collect();
    let started = Instant::now();
    server.shutdown(Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "clients answered; no need to wait the grace"
    );
    for r in readers {
        assert_eq!(r.join().unwrap(), CloseCode::GOING_AWAY);
    }
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

#[test]
fn graceful_shutdown_ends_at_the_grace_period_when_clients_do_not_answer() {
    // A client that completes its handshake, then never reads or answers the 1001.
    let (server, addr) = echo_server(Server::builder());
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    let started = Instant::now();
    server.shutdown(Duration::from_millis(200));
    let took = started.elapsed();
    // Not the engine's 5 s close timeout: the grace period ends the wait.
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn keepalive_drops_a_silent_peer() {
    let (closed_tx, closed_rx) = mpsc::channel();
    let closed_tx = Mutex::new(closed_tx);
    struct Watch(mpsc::Sender<(u16, String)>);
    impl Handler for Watch {
        fn on_close(&mut self, _: &mut Context<'_>, code: CloseCode, reason: &str) {
            let _ = self.0.send((code.as_u16(), reason.to_owned()));
        }
    }
    let server = Server::builder()
        .workers(1)
        .config(
            Config::default()
                .with_keepalive(Some(Duration::from_millis(100)))
                .with_pong_timeout(Duration::from_millis(100)),
        )
        .route("/watch", move |_| Watch(closed_tx.lock().unwrap().clone()))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    // A raw client: completes the handshake, then never answers anything.
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /watch HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let started = Instant::now();
    let (code, reason) = closed_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(code, 1006);
    assert!(reason.contains("pong"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // And the socket is closed.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    assert!(all.starts_with(b"HTTP/1.1 101"));
}

#[test]
fn routes_hooks_and_pages() {
    let server = Server::builder()
        .workers(1)
        .route("/echo", |_| Echo)
        .route("/private", |_| Echo)
        .page("/", "text/html; charset=utf-8", &b"<h1>hello</h1>"[..])
        .should_upgrade(|req| match req.path() {
            "/private" => Decision::reject(403, "no").with_header("X-Why", "private"),
            _ if req.protocols().iter().any(|p| p == "v2") => {
                Decision::accept().with_protocol("v2")
            }
            _ => Decision::accept(),
        })
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();

    let (_, response) = hybi_std::ClientBuilder::new(&url(addr, "/echo"))
        .protocol("v1")
        .protocol("v2")
        .connect()
        .unwrap();
    assert_eq!(response.protocol(), Some("v2"));

    let err = hybi_std::connect(&url(addr, "/private")).unwrap_err();
    match err {
        hybi_std::Error::Handshake(e) => assert_eq!(e.status(), Some(403)),
        other => panic!("{other:?}"),
    }
    let err = hybi_std::connect(&url(addr, "/nowhere")).unwrap_err();
    match err {
        hybi_std::Error::Handshake(e) => assert_eq!(e.status(), Some(404)),
        other => panic!("{other:?}"),
    }

    let http = |request: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let page = http("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Content-Type: text/html; charset=utf-8"));
    assert!(page.ends_with("<h1>hello</h1>"));
    assert!(http("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 426"));
    assert!(http("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(http("GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400"));
}

/// Closes with 4002 on the first message: what the fallback serves below.
struct Closer;
impl Handler for Closer {
    fn on_text(&mut self, ctx: &mut Context<'_>, _text: &str) {
        let _ = ctx.close(CloseCode(4002), "fallback");
    }
}

#[test]
fn per_path_hooks_run_first_and_a_hook_alone_only_rejects() {
    let server = Server::builder()
        .workers(1)
        .route("/echo", |_| Echo)
        .should_upgrade_at("/deny", |_| Decision::reject(403, "not here"))
        .should_upgrade_at("/hooked", |_| Decision::accept())
        .should_upgrade_at("/echo", |req| {
            match req.protocols().iter().any(|p| p == "v2") {
                true => Decision::accept().with_protocol("v2"),
                false => Decision::reject(400, "v2 only"),
            }
        })
        .should_upgrade(|req| match req.origin() {
            Some("https://evil.example") => Decision::reject(401, "bad origin"),
            _ => Decision::accept(),
        })
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let status = |err: hybi_std::Error| match err {
        hybi_std::Error::Handshake(e) => e.status(),
        other => panic!("{other:?}"),
    };
    let (mut ws, response) = hybi_std::ClientBuilder::new(&url(addr, "/echo"))
        .protocol("v2")
        .connect()
        .unwrap();
    assert_eq!(response.protocol(), Some("v2"));
    ws.send_text("hi").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("hi".into()));
    assert_eq!(
        status(hybi_std::connect(&url(addr, "/echo")).unwrap_err()),
        Some(400)
    );
    let evil = hybi_std::ClientBuilder::new(&url(addr, "/echo"))
        .protocol("v2")
        .header("Origin", "https://evil.example")
        .connect()
        .unwrap_err();
    assert_eq!(status(evil), Some(401));
    assert_eq!(
        status(hybi_std::connect(&url(addr, "/deny")).unwrap_err()),
        Some(403)
    );
    // Accepted by its hook, but nothing serves it.
    assert_eq!(
        status(hybi_std::connect(&url(addr, "/hooked")).unwrap_err()),
        Some(404)
    );
    server.shutdown(Duration::from_millis(200));

    // With a fallback, the accepted path goes to it; the rejected one stays rejected.
    let server = Server::builder()
        .workers(1)
        .fallback(|_| Closer)
        .should_upgrade_at("/deny", |_| Decision::reject(403, "not here"))
        .should_upgrade_at("/hooked", |_| Decision::accept())
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    assert_eq!(
        status(hybi_std::connect(&url(addr, "/deny")).unwrap_err()),
        Some(403)
    );
    let (mut ws, _) = hybi_std::connect(&url(addr, "/hooked")).unwrap();
    ws.send_text("bye?").unwrap();
    match ws.read() {
        Ok(Message::Close(info)) => assert_eq!(info.code.as_u16(), 4002),
        other => panic!("{other:?}"),
    }
    server.shutdown(Duration::from_millis(200));
}

#[test]
fn a_client_connection_that_cannot_open_reports_why() {
    let clients = Server::builder().workers(1).start().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (tx, rx) = mpsc::channel();
    struct Fail(mpsc::Sender<(u16, String)>);
    impl Handler for Fail {
        fn on_open(&mut self, _: &mut Context<'_>) {
            panic!("must not open");
        }
        fn on_close(&mut self, _: &mut Context<'_>, code: CloseCode, reason: &str) {
            let _ = self.0.send((code.as_u16(), reason.to_owned()));
        }
    }
    let sender = clients
        .connect(&format!("ws://127.0.0.1:{port}/"), Fail(tx))
        .unwrap();
    let (code, reason) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(code, 1006);
    assert!(reason.contains("connect"), "{reason}");
    assert_eq!(
        sender
            .send_tracked("into the void")
            .wait_timeout(Duration::from_secs(5)),
        Some(Err(SendFailure::Gone))
    );
    assert!(matches!(
        clients.connect("http://x/", Fail(mpsc::channel().0)),
        Err(hybi_mio::ConnectError::Url(_))
    ));
}

/// Relays every text to the whole room (through Senders, from the loop's own thread).
struct Relay(hybi_mio::Room);
impl Handler for Relay {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.0.join(ctx);
        let _ = ctx.send_text("joined");
    }
    fn on_text(&mut self, _: &mut Context<'_>, text: &str) {
        self.0.broadcast(text);
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, _: CloseCode, _: &str) {
        self.0.leave(ctx.id());
    }
}

#[test]
fn a_broadcast_from_a_handler_on_the_same_loop_goes_out_at_once() {
    // Regression: sends queued from the loop's own thread used to wait for the next
    // unrelated wake-up of the loop.
    let room = hybi_mio::Room::new();
    let server = Server::builder()
        .workers(1)
        .route("/room", move |_| Relay(room.clone()))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let (mut a, _) = hybi_std::connect(&url(addr, "/room")).unwrap();
    let (mut b, _) = hybi_std::connect(&url(addr, "/room")).unwrap();
    assert_eq!(a.read().unwrap(), Message::Text("joined".into()));
    assert_eq!(b.read().unwrap(), Message::Text("joined".into()));
    let started = Instant::now();
    a.send_text("to everyone").unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5)));
    assert_eq!(b.read().unwrap(), Message::Text("to everyone".into()));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

/// Records the most output ever queued while pings arrive.
struct PingWatch(Arc<AtomicUsize>, Arc<AtomicUsize>);
impl Handler for PingWatch {
    fn on_ping(&mut self, ctx: &mut Context<'_>, _: &[u8]) {
        self.0.fetch_max(ctx.buffered_amount(), Ordering::SeqCst);
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_ping_flood_from_a_peer_that_never_reads_keeps_memory_bounded() {
    let (max, count) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (m2, c2) = (Arc::clone(&max), Arc::clone(&count));
    let server = Server::builder()
        .workers(1)
        .route("/ping", move |_| {
            PingWatch(Arc::clone(&m2), Arc::clone(&c2))
        })
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /ping HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    // 200,000 pings of 125 bytes (about 26 MiB of pongs owed), never reading a byte.
    let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
    ping.extend((0..125u8).map(|i| i ^ [1, 2, 3, 4][usize::from(i % 4)]));
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    for _ in 0..200 {
        s.write_all(&burst).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while count.load(Ordering::SeqCst) < 200_000 {
        assert!(
            Instant::now() < deadline,
            "{} pings seen",
            count.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let max = max.load(Ordering::SeqCst);
    assert!(
        max <= (8 << 10) + 2 * 127,
        "up to {max} bytes of pongs queued"
    );
    // The server keeps serving others.
    let (mut ws, _) = hybi_std::connect(&url(addr, "/echo")).unwrap();
    ws.send_text("still here").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("still here".into()));
}

/// Reports what `on_close` sees: the code, the reason, and what a send does then.
struct CloseProbe(mpsc::Sender<(u16, String, Result<(), SendFailure>, bool)>);
impl Handler for CloseProbe {
    fn on_close(&mut self, ctx: &mut Context<'_>, code: CloseCode, reason: &str) {
        let sent = ctx.send_text("too late");
        let report = (code.as_u16(), reason.to_owned(), sent, ctx.is_open());
        let _ = self.0.send(report);
    }
}

#[test]
fn on_close_comes_once_with_the_peer_s_code_and_a_context_that_refuses_sends() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::builder()
        .workers(1)
        .route("/probe", move |_| CloseProbe(tx.lock().unwrap().clone()))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let (mut ws, _) = hybi_std::connect(&url(addr, "/probe")).unwrap();
    ws.close(CloseCode(4001), "leaving").unwrap();
    while !matches!(ws.read(), Err(_) | Ok(Message::Close(_))) {}
    let (code, reason, sent, open) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((code, reason.as_str()), (4001, "leaving"));
    assert_eq!(sent, Err(SendFailure::Gone));
    assert!(!open);
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "once");

    // A client connection that never opened gets the same kind of context.
    let clients = Server::builder().workers(1).start().unwrap();
    let (tx, rx) = mpsc::channel();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    clients
        .connect(&format!("ws://{closed_port}/"), CloseProbe(tx))
        .unwrap();
    let (code, _, sent, open) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(code, 1006);
    assert_eq!(sent, Err(SendFailure::Gone));
    assert!(!open);
}

/// Queues 16 MiB for a peer, then closes.
struct FloodThenClose(mpsc::Sender<(u16, String)>);
impl Handler for FloodThenClose {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let chunk = vec![1u8; 256 << 10];
        for _ in 0..64 {
            ctx.send_binary(&chunk).unwrap();
        }
        ctx.close(CloseCode::NORMAL, "bye").unwrap();
    }
    fn on_close(&mut self, _: &mut Context<'_>, code: CloseCode, reason: &str) {
        let _ = self.0.send((code.as_u16(), reason.to_owned()));
    }
}

#[test]
fn a_close_stuck_behind_output_a_peer_never_reads_ends_at_the_close_timeout() {
    // The engine names no deadline while output waits for the socket: the close
    // timeout must fire all the same.
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::builder()
        .workers(1)
        .high_water(64 << 20)
        .config(hybi_mio::default_config().with_close_timeout(Duration::from_millis(300)))
        .route("/flood", move |_| {
            FloodThenClose(tx.lock().unwrap().clone())
        })
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let started = Instant::now();
    let (code, reason) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let took = started.elapsed();
    assert_eq!(code, 1006, "{reason}");
    assert!(reason.contains("close"), "{reason}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
}
