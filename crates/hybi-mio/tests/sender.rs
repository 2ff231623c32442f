//! `Sender` beyond whole messages, and clients without a `Server`: sends held until a
//! client connection opens (in order, bounded, failed if it never opens), fragments
//! and pongs, closures run on the connection's loop, and `hybi_mio::connect`'s
//! `Client` (its loop ends with its connection; `join`, `shutdown`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use hybi_mio::{
    CloseCode, ConnectError, Context, Handler, MessageKind, Outgoing, SendFailure, Server,
};
use hybi_std::Message;

const WAIT: Duration = Duration::from_secs(10);

/// A hybi-std server for one connection: accepts the TCP connection at once but
/// answers the upgrade only once `gate` is sent to (or, `upgrade` false, drops the
/// connection then), and forwards every message it reads, until the peer's close.
struct Peer {
    addr: SocketAddr,
    gate: mpsc::Sender<()>,
    got: mpsc::Receiver<Message>,
    thread: JoinHandle<()>,
}

impl Peer {
    fn start(upgrade: bool) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (gate, gate_rx) = mpsc::channel::<()>();
        let (tx, got) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            if gate_rx.recv_timeout(WAIT).is_err() || !upgrade {
                return;
            }
            let mut ws = hybi_std::accept(stream).unwrap();
            ws.set_read_timeout(Some(WAIT));
            while let Ok(message) = ws.read() {
                let close = matches!(message, Message::Close(_));
                let _ = tx.send(message);
                if close {
                    break;
                }
            }
        });
        Peer {
            addr,
            gate,
            got,
            thread,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    fn open_gate(&self) {
        self.gate.send(()).unwrap();
    }

    fn next(&self) -> Message {
        self.got.recv_timeout(WAIT).expect("a message")
    }
}

/// A client handler that says when it opened, what it received and how it ended, and
/// sends `hello` from `on_open` if given one.
struct Probe {
    hello: Option<&'static str>,
    events: mpsc::Sender<Seen>,
}

#[derive(Debug, PartialEq)]
enum Seen {
    Open,
    Text(String),
    Close(u16),
    ConnectError(String),
}

impl Probe {
    fn new(hello: Option<&'static str>) -> (Probe, mpsc::Receiver<Seen>) {
        let (events, rx) = mpsc::channel();
        (Probe { hello, events }, rx)
    }
}

impl Handler for Probe {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        if let Some(hello) = self.hello {
            ctx.send_text(hello).unwrap();
        }
        let _ = self.events.send(Seen::Open);
    }
    fn on_text(&mut self, _: &mut Context<'_>, text: &str) {
        let _ = self.events.send(Seen::Text(text.to_owned()));
    }
    fn on_close(&mut self, _: &mut Context<'_>, code: CloseCode, _: &str) {
        let _ = self.events.send(Seen::Close(code.as_u16()));
    }
    fn on_connect_error(&mut self, _: &mut Context<'_>, error: ConnectError) {
        let _ = self.events.send(Seen::ConnectError(error.to_string()));
    }
}

#[test]
fn sends_made_before_the_open_are_delivered_in_order_after_on_open() {
    let clients = Server::builder().workers(1).start().unwrap();
    let peer = Peer::start(true);
    let (probe, seen) = Probe::new(Some("from on_open"));
    let sender = clients.connect(&peer.url(), probe).unwrap();
    for i in 0..20 {
        sender.send_text(&i.to_string()).unwrap();
    }
    sender.send_binary(&[1, 2, 3]).unwrap();
    sender.ping(b"ping").unwrap();
    sender.pong(b"pong").unwrap();
    sender
        .send_fragment(MessageKind::Text, b"frag", false)
        .unwrap();
    sender
        .send_fragment(MessageKind::Text, b"ment", true)
        .unwrap();
    let ran = sender.run(|ctx| ctx.send_text("from run").unwrap());
    let last = sender.send_tracked("last");
    // The server has not answered: nothing can have opened, run or been written.
    std::thread::sleep(Duration::from_millis(50));
    assert!(seen.try_recv().is_err());
    assert_eq!(ran.try_result(), None);
    assert_eq!(last.try_result(), None);

    peer.open_gate();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), Seen::Open);
    assert_eq!(ran.wait_timeout(WAIT), Some(Ok(())));
    assert_eq!(last.wait_timeout(WAIT), Some(Ok(())));
    let mut expected = vec![Message::Text("from on_open".into())];
    expected.extend((0..20).map(|i| Message::Text(i.to_string())));
    expected.extend([
        Message::Binary(vec![1, 2, 3]),
        Message::Ping(b"ping".to_vec()),
        Message::Pong(b"pong".to_vec()),
        Message::Text("fragment".into()),
        Message::Text("from run".into()),
        Message::Text("last".into()),
    ]);
    for want in expected {
        assert_eq!(peer.next(), want);
    }
    sender.close(CloseCode::NORMAL, "bye").unwrap();
    assert!(matches!(peer.next(), Message::Close(c) if c.code == CloseCode::NORMAL));
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), Seen::Close(1000));
    peer.thread.join().unwrap();
}

#[test]
fn what_is_held_before_the_open_is_bounded_by_the_send_limit() {
    // A 1 KiB high-water mark: sends fail once more than 2 KiB is held.
    let clients = Server::builder()
        .workers(1)
        .high_water(1024)
        .start()
        .unwrap();
    let peer = Peer::start(true);
    let (probe, seen) = Probe::new(None);
    let sender = clients.connect(&peer.url(), probe).unwrap();
    let sends: Vec<_> = (0..5u8)
        .map(|i| sender.send_tracked(vec![i; 1000]))
        .collect();
    // The first two fit (2,000 bytes and their entries, over 2 KiB); the rest are
    // refused at once, before the open.
    for refused in &sends[2..] {
        assert_eq!(
            refused.wait_timeout(WAIT),
            Some(Err(SendFailure::Backpressure))
        );
    }
    assert_eq!(sends[0].try_result(), None);
    assert_eq!(sends[1].try_result(), None);

    peer.open_gate();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), Seen::Open);
    assert_eq!(sends[0].wait_timeout(WAIT), Some(Ok(())));
    assert_eq!(sends[1].wait_timeout(WAIT), Some(Ok(())));
    // Once open, the connection's own limit applies: sends go through again.
    assert_eq!(
        sender.send_tracked("after").wait_timeout(WAIT),
        Some(Ok(()))
    );
    assert_eq!(peer.next(), Message::Binary(vec![0; 1000]));
    assert_eq!(peer.next(), Message::Binary(vec![1; 1000]));
    assert_eq!(peer.next(), Message::Text("after".into()));
    sender.close(CloseCode::NORMAL, "").unwrap();
    peer.thread.join().unwrap();
}

#[test]
fn what_is_held_for_a_connection_that_never_opens_fails_and_no_closure_runs() {
    let clients = Server::builder().workers(1).start().unwrap();
    let peer = Peer::start(false);
    let (probe, seen) = Probe::new(None);
    let sender = clients.connect(&peer.url(), probe).unwrap();
    let held = sender.send_tracked("never");
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let run = sender.run(move |_| flag.store(true, Ordering::SeqCst));
    peer.open_gate(); // and the peer drops the connection
    assert!(matches!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::ConnectError(_)
    ));
    assert_eq!(held.wait_timeout(WAIT), Some(Err(SendFailure::Gone)));
    assert_eq!(run.wait_timeout(WAIT), Some(Err(SendFailure::Gone)));
    assert!(!ran.load(Ordering::SeqCst));
    peer.thread.join().unwrap();

    // A Client shut down while still connecting: the handler hears `Stopped`, and
    // what was held fails.
    let peer = Peer::start(true);
    let (probe, seen) = Probe::new(None);
    let client = hybi_mio::connect(&peer.url(), probe).unwrap();
    let held = client.sender().send_tracked("never either");
    client.shutdown(WAIT);
    assert_eq!(
        seen.try_recv().unwrap(),
        Seen::ConnectError(ConnectError::Stopped.to_string())
    );
    assert_eq!(held.try_result(), Some(Err(SendFailure::Gone)));
    drop(peer.gate);
    peer.thread.join().unwrap();
}

#[test]
fn a_sender_sends_fragments_and_pongs_with_the_engine_s_rules() {
    let peer = Peer::start(true);
    peer.open_gate();
    let (probe, seen) = Probe::new(None);
    let client = hybi_mio::connect(&peer.url(), probe).unwrap();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), Seen::Open);
    let sender = client.sender();

    sender
        .send_fragment(MessageKind::Binary, &[1, 2], false)
        .unwrap();
    // Another data message, or a fragment of the other kind, waits for the end of
    // this one: the engine refuses them. Control frames interleave.
    assert_eq!(
        sender.send_tracked("interloper").wait_timeout(WAIT),
        Some(Err(SendFailure::Refused(
            hybi::SendError::MessageInProgress
        )))
    );
    let other_kind = Outgoing::Fragment {
        kind: MessageKind::Text,
        data: b"x".to_vec(),
        fin: true,
    };
    assert_eq!(
        sender.send_tracked(other_kind).wait_timeout(WAIT),
        Some(Err(SendFailure::Refused(hybi::SendError::KindMismatch)))
    );
    sender.ping(b"between").unwrap();
    let end = Outgoing::Fragment {
        kind: MessageKind::Binary,
        data: vec![3],
        fin: true,
    };
    assert_eq!(sender.send_tracked(end).wait_timeout(WAIT), Some(Ok(())));
    sender.pong(b"heartbeat").unwrap();
    assert_eq!(
        sender
            .send_tracked(Outgoing::Pong(vec![0; 126]))
            .wait_timeout(WAIT),
        Some(Err(SendFailure::Refused(
            hybi::SendError::ControlPayloadTooLong(126)
        )))
    );
    sender.send_text("whole again").unwrap();

    assert_eq!(peer.next(), Message::Ping(b"between".to_vec()));
    assert_eq!(peer.next(), Message::Binary(vec![1, 2, 3]));
    assert_eq!(peer.next(), Message::Pong(b"heartbeat".to_vec()));
    assert_eq!(peer.next(), Message::Text("whole again".into()));
    client.shutdown(WAIT);
    assert!(matches!(peer.next(), Message::Close(c) if c.code == CloseCode::GOING_AWAY));
    peer.thread.join().unwrap();
}

#[test]
fn run_executes_on_the_connection_s_loop_with_its_context_and_says_whether_it_ran() {
    let peer = Peer::start(true);
    peer.open_gate();
    let (probe, seen) = Probe::new(None);
    let client = hybi_mio::connect(&peer.url(), probe).unwrap();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), Seen::Open);
    let sender = client.sender().clone();

    let (tx, rx) = mpsc::channel();
    let done = sender.run(move |ctx| {
        let thread = std::thread::current().name().map(str::to_owned);
        ctx.send_text("sent from the loop").unwrap();
        let _ = tx.send((thread, ctx.id(), ctx.is_open(), ctx.buffered_amount()));
    });
    assert_eq!(done.wait_timeout(WAIT), Some(Ok(())));
    let (thread, id, open, buffered) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(thread.as_deref(), Some("hybi-mio-client"));
    assert_eq!(id, sender.id());
    assert!(open);
    assert!(buffered > 0, "the text is queued, not yet written");
    assert_eq!(peer.next(), Message::Text("sent from the loop".into()));

    // A closure may end the connection; the loop, alone with it, stops.
    let closed = sender.run(|ctx| ctx.close(CloseCode::NORMAL, "from run").unwrap());
    assert_eq!(closed.wait_timeout(WAIT), Some(Ok(())));
    assert!(matches!(peer.next(), Message::Close(c) if c.reason == "from run"));
    client.join();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), Seen::Close(1000));

    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let late = sender.run(move |_| flag.store(true, Ordering::SeqCst));
    assert_eq!(late.wait_timeout(WAIT), Some(Err(SendFailure::Gone)));
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(sender.send_text("late"), Err(SendFailure::Gone));
    peer.thread.join().unwrap();
}

/// Echoes text; tells the test how each connection ended.
struct Echo(mpsc::Sender<u16>);
impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
    fn on_close(&mut self, _: &mut Context<'_>, code: CloseCode, _: &str) {
        let _ = self.0.send(code.as_u16());
    }
}

/// Closes after `left` texts.
struct CloseAfter {
    left: usize,
    inner: Probe,
}
impl Handler for CloseAfter {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        self.inner.on_text(ctx, text);
        self.left -= 1;
        if self.left == 0 {
            ctx.close(CloseCode::NORMAL, "enough").unwrap();
        }
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, code: CloseCode, reason: &str) {
        self.inner.on_close(ctx, code, reason);
    }
}

#[test]
fn a_client_runs_without_a_server_and_its_loop_ends_with_its_connection() {
    let (ended, server_saw) = mpsc::channel();
    let server = Server::builder()
        .workers(1)
        .route("/echo", move |_| Echo(ended.clone()))
        .bind("127.0.0.1:0")
        .unwrap();
    let url = format!("ws://{}/echo", server.local_addr());

    let (inner, seen) = Probe::new(None);
    let client = hybi_mio::connect(&url, CloseAfter { left: 3, inner }).unwrap();
    for text in ["one", "two", "three"] {
        client.sender().send_text(text).unwrap();
    }
    let sender = client.sender().clone();
    // (Waited for before `join`, which would block for as long as a broken
    // connection stays open.)
    let got: Vec<Seen> = (0..4).map(|_| seen.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(
        got,
        [
            Seen::Text("one".into()),
            Seen::Text("two".into()),
            Seen::Text("three".into()),
            Seen::Close(1000),
        ]
    );
    client.join();
    assert_eq!(server_saw.recv_timeout(WAIT).unwrap(), 1000);
    assert_eq!(sender.send_text("late"), Err(SendFailure::Gone));

    // shutdown: a close with 1001, answered within the grace period.
    let (probe, seen) = Probe::new(None);
    let client = hybi_mio::Client::connect(&url, probe).unwrap();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), Seen::Open);
    assert!(!client.is_finished());
    client.shutdown(WAIT);
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), Seen::Close(1001));
    assert_eq!(server_saw.recv_timeout(WAIT).unwrap(), 1001);

    // Dropping the handle shuts it down too.
    let (probe, seen) = Probe::new(None);
    let client = hybi_mio::connect(&url, probe).unwrap();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), Seen::Open);
    drop(client);
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), Seen::Close(1001));
    assert_eq!(server_saw.recv_timeout(WAIT).unwrap(), 1001);
}

#[test]
fn a_client_that_cannot_connect_reports_why_and_its_loop_ends() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (probe, seen) = Probe::new(None);
    let client = hybi_mio::connect(&format!("ws://127.0.0.1:{port}/"), probe).unwrap();
    let held = client.sender().send_tracked("never");
    client.join();
    assert!(matches!(seen.try_recv(), Ok(Seen::ConnectError(e)) if e.contains("connect")));
    assert_eq!(held.wait_timeout(WAIT), Some(Err(SendFailure::Gone)));
    assert!(matches!(
        hybi_mio::connect("http://example.test/", Probe::new(None).0),
        Err(ConnectError::Url(_))
    ));
}
