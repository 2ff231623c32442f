//! `hybi connect`'s flags, each driven through pipes against an in-process hybi-std
//! server that records what it sees: -b/-t, -H, -1, -n, -q, --connect-timeout,
//! --ping, raw and hex binary output, and who closed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use hybi_std::{CloseCode, Handler, Peer};

fn hybi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hybi"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What the server saw.
#[derive(Debug, PartialEq)]
enum Seen {
    /// A connection opened, with its request's `X-Token` and `X-Other` headers.
    Open(Option<String>, Option<String>),
    Text(String),
    Binary(Vec<u8>),
    Close(u16),
}

/// Echoes every message and reports it. On `/late` it answers a text message with
/// the same text, then, 200 ms later, with "late", and closes with 1001 "done".
struct Echo {
    seen: mpsc::Sender<Seen>,
    late: bool,
}

impl Handler for Echo {
    fn on_text(&mut self, peer: &Peer, text: &str) {
        let _ = self.seen.send(Seen::Text(text.to_owned()));
        let _ = peer.send_text(text);
        if self.late {
            let peer = peer.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                let _ = peer.send_text("late");
                let _ = peer.close(CloseCode::GOING_AWAY, "done");
            });
        }
    }
    fn on_binary(&mut self, peer: &Peer, data: &[u8]) {
        let _ = self.seen.send(Seen::Binary(data.to_vec()));
        let _ = peer.send_binary(data);
    }
    fn on_close(&mut self, _: &Peer, code: CloseCode, _: &str) {
        let _ = self.seen.send(Seen::Close(code.as_u16()));
    }
}

/// An echo server on a free port (`/` and `/late`); dropping the handle stops it.
struct Server {
    _handle: hybi_std::ServerHandle,
    base: String,
    seen: mpsc::Receiver<Seen>,
}

impl Server {
    fn start() -> Server {
        let (tx, seen) = mpsc::channel();
        let route = |late: bool| {
            let tx = Mutex::new(tx.clone());
            move |req: &hybi_std::UpgradeRequest| {
                let seen = tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let header = |name| req.headers().get_str(name).map(str::to_owned);
                let _ = seen.send(Seen::Open(header("x-token"), header("x-other")));
                Echo { seen, late }
            }
        };
        let handle = hybi_std::Server::builder()
            .route("/", route(false))
            .route("/late", route(true))
            .bind("127.0.0.1:0")
            .unwrap()
            .spawn()
            .unwrap();
        let base = format!("ws://{}", handle.local_addr());
        Server {
            _handle: handle,
            base,
            seen,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything seen up to and including a close (panics after 5 s).
    fn until_close(&self) -> Vec<Seen> {
        let until = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.seen.recv_timeout(left) {
                Ok(s) => {
                    let done = matches!(s, Seen::Close(_));
                    seen.push(s);
                    if done {
                        return seen;
                    }
                }
                Err(e) => panic!("no close after {seen:?}: {e}"),
            }
        }
    }
}

fn spawn_connect(args: &[&str]) -> Child {
    hybi()
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `hybi connect` with `input` on stdin, closed after it.
fn connect(args: &[&str], input: &[u8]) -> Output {
    let mut child = spawn_connect(args);
    child.stdin.take().unwrap().write_all(input).unwrap();
    wait(child, Duration::from_secs(5))
}

fn wait(mut child: Child, timeout: Duration) -> Output {
    let until = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() >= until {
            let _ = child.kill();
            panic!("timed out: {:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn text_is_the_default_b_sends_binary_and_the_last_of_b_and_t_wins() {
    let server = Server::start();
    let url = server.url("/");
    for (args, want) in [
        (vec![], Seen::Text("line".into())),
        (vec!["-b"], Seen::Binary(b"line".to_vec())),
        (vec!["--binary"], Seen::Binary(b"line".to_vec())),
        (vec!["-b", "-t"], Seen::Text("line".into())),
        (vec!["--text", "-b"], Seen::Binary(b"line".to_vec())),
    ] {
        let mut all = vec![url.as_str(), "--hex"];
        all.extend(&args);
        let out = connect(&all, b"line\n");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            server.until_close(),
            [Seen::Open(None, None), want, Seen::Close(1000)],
            "{args:?}"
        );
    }
}

#[test]
fn short_h_adds_request_headers() {
    let server = Server::start();
    let out = connect(
        &[
            &server.url("/"),
            "-H",
            "X-Token: abc 123",
            "--header",
            "X-Other:1",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        server.until_close()[0],
        Seen::Open(Some("abc 123".into()), Some("1".into()))
    );
}

#[test]
fn one_message_sends_one_line_prints_one_reply_and_closes() {
    let server = Server::start();
    let mut child = spawn_connect(&["-1", &server.url("/")]);
    // Stdin stays open: -1 does not wait for its end.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\nsecond\n").unwrap();
    let out = wait(child, Duration::from_secs(5));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout), "first\n");
    assert!(stderr.contains("closed by us: 1000 normal"), "{stderr}");
    assert_eq!(
        server.until_close(),
        [
            Seen::Open(None, None),
            Seen::Text("first".into()),
            Seen::Close(1000)
        ]
    );
    drop(stdin);
}

#[test]
fn no_close_keeps_printing_until_the_server_closes() {
    let server = Server::start();
    let out = connect(&["-n", &server.url("/late")], b"hi\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout), "hi\nlate\n");
    assert!(
        stderr.contains("closed by the server: 1001 going away: done"),
        "{stderr}"
    );
    assert!(!stderr.contains("closed by us"), "{stderr}");

    // Without -n the end of stdin closes, before "late".
    let out = connect(&[&server.url("/late")], b"hi\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!text(&out.stdout).contains("late"), "{}", text(&out.stdout));
    assert!(stderr.contains("closed by us: 1000 normal"), "{stderr}");
}

#[test]
fn quiet_prints_errors_only() {
    let server = Server::start();
    let out = connect(&["-q", &server.url("/"), "--ping", "0.01"], b"hello\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "hello\n");
    assert_eq!(text(&out.stderr), "", "no status lines");

    let out = connect(&["--quiet", "not a url"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad URL"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn connect_timeout_gives_up_on_a_server_that_never_answers_the_handshake() {
    // Accepts the TCP connection and says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(held);
    });
    let started = Instant::now();
    let mut child = spawn_connect(&["--connect-timeout", "0.3", &url]);
    let _stdin = child.stdin.take();
    let out = wait(child, Duration::from_secs(5));
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(stderr.contains("0.3 s"), "{stderr}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "took {took:?}"
    );

    let out = connect(&["--connect-timeout", "0", &url], b"");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn ping_prints_round_trip_times() {
    let server = Server::start();
    let mut child = spawn_connect(&[&server.url("/"), "--ping", "0.02"]);
    let stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut rtts = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while rtts.len() < 3 && Instant::now() < until {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "stderr ended");
        if let Some(ms) = line.strip_prefix("pong: ") {
            let ms = ms.trim_end().strip_suffix(" ms").expect(&line);
            rtts.push(ms.parse::<f64>().expect(&line));
        }
    }
    drop(stdin);
    assert_eq!(rtts.len(), 3, "{rtts:?}");
    assert!(
        rtts.iter().all(|&ms| (0.0..1000.0).contains(&ms)),
        "{rtts:?}"
    );
    let out = wait(child, Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn binary_replies_are_raw_on_a_pipe_and_hex_when_asked() {
    let server = Server::start();
    let input = b"\x00\xffab\ncd\r\n";
    let out = connect(&["-b", &server.url("/")], input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"\x00\xffabcd", "raw bytes, no separator");

    let out = connect(&["-b", "--hex", &server.url("/")], input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "[binary 4 bytes] 00ff6162\n[binary 2 bytes] 6364\n"
    );
    let long = [7u8; 40];
    let out = connect(
        &["-b", "--hex", &server.url("/")],
        &[&long[..], b"\n"].concat(),
    );
    assert_eq!(
        text(&out.stdout),
        format!("[binary 40 bytes] {}\n", "07".repeat(40)),
        "--hex shows every byte"
    );
}

#[test]
fn connect_help_documents_the_flags() {
    let out = hybi().args(["connect", "--help"]).output().unwrap();
    let help = text(&out.stdout);
    for flag in [
        "-b, --binary",
        "-t, --text",
        "-H, --header",
        "-1, --one-message",
        "-n, --no-close",
        "-q, --quiet",
        "--connect-timeout <SECS>",
        "--ping <SECS>",
        "--hex",
        "closed by us",
        "carriage return",
    ] {
        assert!(help.contains(flag), "{flag:?} in {help}");
    }
}
