//! The `hybi` binary as a user runs it: `serve` in the background, `connect` and
//! `load` against it, exit codes and output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn hybi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hybi"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `hybi serve` on a free port; its stdout lines arrive on the channel.
struct Serve {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
}

impl Serve {
    fn start() -> Serve {
        Serve::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Serve {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = hybi()
            .args(["serve", "--addr", &addr, "--workers", "1", "--grace", "3"])
            .args(extra)
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
        serve.expect_line(|l| l.contains("chat page at http://"));
        serve
    }

    /// Waits for a line matching `want` (panics after 10 s) and returns it.
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

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    fn interrupt(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `hybi connect` with `input` on stdin.
fn connect(args: &[&str], input: &str) -> Output {
    let mut child = hybi()
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    wait_with_timeout(child, Duration::from_secs(20))
}

fn wait_with_timeout(mut child: Child, timeout: Duration) -> Output {
    let until = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() >= until {
            let _ = child.kill();
            panic!("timed out: {:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn connect_echoes_lines_and_exits_zero_on_a_normal_close() {
    let serve = Serve::start();
    let out = connect(&[&serve.url("/echo")], "hello\nκόσμε 🎉\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\nκόσμε 🎉\n");
    assert!(text(&out.stderr).contains("connected to"));

    let open = serve.expect_line(|l| l.starts_with("open "));
    assert!(open.ends_with("/echo"), "{open}");
    let close = serve.expect_line(|l| l.starts_with("close "));
    assert!(close.contains("/echo 1000"), "{close}");
}

#[test]
fn connect_binary_mode_and_pings() {
    let serve = Serve::start();
    let mut child = hybi()
        .args(["connect", &serve.url("/echo"), "--binary", "--ping", "0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"abc\n").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    drop(stdin);
    let out = wait_with_timeout(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0));
    // Binary on a pipe: the bytes as they are.
    assert_eq!(text(&out.stdout), "abc");
    assert!(
        text(&out.stderr).contains("pong: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn two_chat_clients_see_each_other() {
    let serve = Serve::start();
    // The first member stays until the second has spoken.
    let mut first = hybi()
        .args(["connect", &serve.url("/chat")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first_stdin = first.stdin.take().unwrap();
    let mut first_out = BufReader::new(first.stdout.take().unwrap());
    let mut welcome = String::new();
    first_out.read_line(&mut welcome).unwrap();
    assert!(welcome.contains(r#""type":"welcome""#), "{welcome}");

    // The second member speaks and leaves once it has seen its own message.
    let mut second = hybi()
        .args(["connect", &serve.url("/chat")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut second_stdin = second.stdin.take().unwrap();
    second_stdin.write_all(b"hi from two\n").unwrap();
    let mut second_out = BufReader::new(second.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains(r#""text":"hi from two""#) {
        let mut line = String::new();
        assert!(second_out.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    assert!(
        seen.contains(r#""type":"welcome""#) && seen.contains(r#""online":2"#),
        "{seen}"
    );
    drop(second_stdin);
    assert_eq!(second.wait().unwrap().code(), Some(0));

    drop(first_stdin);
    let mut rest = String::new();
    first_out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains(r#""type":"join""#), "{rest}");
    assert!(rest.contains(r#""text":"hi from two""#), "{rest}");
    assert!(rest.contains(r#""type":"leave""#), "{rest}");
    assert_eq!(first.wait().unwrap().code(), Some(0));
}

#[test]
fn connect_errors_have_their_exit_codes() {
    let out = connect(&["not a url"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad URL"),
        "{}",
        text(&out.stderr)
    );

    let out = connect(&["ws://127.0.0.1:9/echo", "--header", "no colon"], "");
    assert_eq!(out.status.code(), Some(2));

    let port = free_port();
    let out = connect(&[&format!("ws://127.0.0.1:{port}/")], "");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("cannot connect"),
        "{}",
        text(&out.stderr)
    );

    let serve = Serve::start();
    let out = connect(&[&serve.url("/nowhere")], "");
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("refused the upgrade: 404"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_abnormal_close_exits_non_zero() {
    let serve = Serve::start();
    // Binary on /chat is refused with 1003.
    let out = connect(&[&serve.url("/chat"), "--binary"], "not text\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("1003"), "{}", text(&out.stderr));
}

#[test]
fn load_reports_rates_and_percentiles() {
    let serve = Serve::start();
    let out = hybi()
        .args([
            "load",
            "--url",
            &serve.url("/echo"),
            "--conns",
            "8",
            "--inflight",
            "4",
        ])
        .args(["--size", "64", "--secs", "1", "--json", "--verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = text(&out.stdout);
    for key in [
        "\"msgs_per_sec\":",
        "\"mb_per_sec\":",
        "\"p50\":",
        "\"p99\":",
        "\"p999\":",
    ] {
        assert!(json.contains(key), "{json}");
    }
    let messages: u64 = json
        .split("\"messages\":")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(messages > 1000, "{json}");
    assert!(json.contains("\"bad_echoes\":0"));
    // The live progress line goes to stderr.
    assert!(text(&out.stderr).contains("msg/s"));

    let human = hybi()
        .args([
            "load",
            "--url",
            &serve.url("/echo"),
            "--conns",
            "2",
            "--secs",
            "0.5",
            "--text",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(human.status.code(), Some(0));
    let summary = text(&human.stdout);
    assert!(
        summary.contains("messages") && summary.contains("p99.9"),
        "{summary}"
    );
}

#[test]
fn load_against_nothing_fails_with_a_network_error() {
    let port = free_port();
    let out = hybi()
        .args([
            "load",
            "--url",
            &format!("ws://127.0.0.1:{port}/echo"),
            "--conns",
            "2",
            "--secs",
            "1",
        ])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    // The connect error itself, not only that connections failed.
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );
}

#[test]
fn load_that_measures_nothing_says_n_a() {
    // A server that closes (1001, a normal end for hybi load) at the first message:
    // no echo ever comes back.
    struct Leave;
    impl hybi_std::Handler for Leave {
        fn on_binary(&mut self, peer: &hybi_std::Peer, _: &[u8]) {
            let _ = peer.close(hybi_std::CloseCode::GOING_AWAY, "bye");
        }
    }
    let server = hybi_std::Server::builder()
        .route("/", |_| Leave)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let run = |extra: &[&str]| {
        let out = hybi()
            .args(["load", "--url", &url, "--conns", "2", "--secs", "0.2"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("no echo came back"),
            "{}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let human = run(&["--quiet"]);
    assert!(
        human.contains("latency    p50 n/a   p99 n/a   p99.9 n/a   max n/a"),
        "{human}"
    );
    assert!(!human.contains("µs"), "{human}");
    let json = run(&["--json"]);
    assert!(
        json.contains(r#""latency_us":{"p50":null,"p99":null,"p999":null,"max":null}"#),
        "{json}"
    );
}

#[test]
fn ctrl_c_shuts_down_gracefully_with_1001() {
    let mut serve = Serve::start();
    let mut client = hybi()
        .args(["connect", &serve.url("/echo")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin = client.stdin.take().unwrap();
    serve.expect_line(|l| l.starts_with("open "));
    let status = serve.interrupt();
    assert_eq!(status.code(), Some(0));
    let out = wait_with_timeout(client, Duration::from_secs(10));
    assert!(
        text(&out.stderr).contains("closed by the server: 1001"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "1001 is a normal end");
}

#[test]
fn help_documents_the_exit_codes() {
    let out = hybi().arg("--help").output().unwrap();
    let help = text(&out.stdout);
    assert!(help.contains("Exit status:"));
    for cmd in ["serve", "connect", "load"] {
        assert!(help.contains(cmd));
    }
    for documented in ["  6  connect: ", "not UTF-8", "130  connect: interrupted"] {
        assert!(help.contains(documented), "{documented:?} in {help}");
    }
}

/// What a [`Recorder`] server saw on one connection.
#[derive(Debug, PartialEq)]
enum Seen {
    Open,
    Text(String),
    Binary(Vec<u8>),
    Close(u16),
}

/// A hybi-std server handler that reports everything it sees on a channel (and
/// echoes nothing).
struct Recorder(mpsc::Sender<Seen>);

impl hybi_std::Handler for Recorder {
    fn on_open(&mut self, _: &hybi_std::Peer) {
        let _ = self.0.send(Seen::Open);
    }
    fn on_text(&mut self, _: &hybi_std::Peer, text: &str) {
        let _ = self.0.send(Seen::Text(text.to_owned()));
    }
    fn on_binary(&mut self, _: &hybi_std::Peer, data: &[u8]) {
        let _ = self.0.send(Seen::Binary(data.to_vec()));
    }
    fn on_close(&mut self, _: &hybi_std::Peer, code: hybi_std::CloseCode, _: &str) {
        let _ = self.0.send(Seen::Close(code.as_u16()));
    }
}

/// An in-process server on a free port that records what each connection to `/`
/// sends; returns its handle (dropping it stops the server), its URL and the channel.
fn recorder() -> (hybi_std::ServerHandle, String, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = hybi_std::Server::builder()
        .route("/", move |_| {
            Recorder(tx.lock().unwrap_or_else(|p| p.into_inner()).clone())
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    (server, url, rx)
}

/// Everything the recorder saw up to and including the close (panics after 5 s).
fn seen_until_close(rx: &mpsc::Receiver<Seen>) -> Vec<Seen> {
    let until = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
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

/// Runs `hybi connect` with raw bytes on stdin (closed after them).
fn connect_bytes(args: &[&str], input: &[u8]) -> Output {
    let mut child = hybi()
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    wait_with_timeout(child, Duration::from_secs(10))
}

#[test]
fn connect_binary_sends_lines_that_are_not_utf8_as_they_are() {
    let (_server, url, rx) = recorder();
    let out = connect_bytes(
        &[&url, "--binary"],
        b"one\n\xff\xfe not utf-8 \xc3\n\x00three\r\nfour",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        seen_until_close(&rx),
        [
            Seen::Open,
            Seen::Binary(b"one".to_vec()),
            Seen::Binary(b"\xff\xfe not utf-8 \xc3".to_vec()),
            Seen::Binary(b"\x00three".to_vec()),
            Seen::Binary(b"four".to_vec()),
            Seen::Close(1000),
        ]
    );
}

#[test]
fn connect_text_stops_at_a_line_that_is_not_utf8_closes_and_fails() {
    let (_server, url, rx) = recorder();
    let out = connect_bytes(&[&url], b"first\nsecond\nbad \xff line\nafter\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("line 3 is not valid UTF-8"), "{stderr}");
    assert_eq!(
        seen_until_close(&rx),
        [
            Seen::Open,
            Seen::Text("first".into()),
            Seen::Text("second".into()),
            Seen::Close(1000),
        ]
    );
}

#[test]
fn ctrl_c_on_connect_closes_the_connection_first() {
    let (_server, url, rx) = recorder();
    let mut client = hybi()
        .args(["connect", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"hello\n").unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    for want in [Seen::Open, Seen::Text("hello".into())] {
        let left = until.saturating_duration_since(Instant::now());
        assert_eq!(rx.recv_timeout(left).unwrap(), want);
    }
    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &client.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_with_timeout(client, Duration::from_secs(5));
    let took = sent.elapsed();
    let stderr = text(&out.stderr);
    let close = rx.recv_timeout(Duration::from_secs(1));
    assert!(
        matches!(close, Ok(Seen::Close(1000 | 1001))),
        "{close:?}: {stderr}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    drop(stdin);
}

#[test]
fn ctrl_c_on_connect_waits_only_briefly_for_a_server_that_never_answers() {
    // The server completes the handshake, then reads nothing and answers nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (opened, open) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let ws = hybi_std::accept(stream).unwrap();
        let _ = opened.send(());
        std::thread::sleep(Duration::from_secs(10));
        drop(ws);
    });
    let mut client = hybi()
        .args(["connect", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin = client.stdin.take().unwrap();
    let stderr = lines_of(client.stderr.take().unwrap());
    open.recv_timeout(Duration::from_secs(5)).unwrap();
    // "connected" is printed once Ctrl-C closes the connection (before, it exits).
    let connected = stderr.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(connected.starts_with("connected to"), "{connected}");
    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &client.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_with_timeout(client, Duration::from_secs(5));
    let took = sent.elapsed();
    let stderr: String = stderr.iter().map(|l| l + "\n").collect();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("no answer to the close"), "{stderr}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(4),
        "took {took:?}: {stderr}"
    );
}

/// The lines of a child's output, on a channel that ends with the output.
fn lines_of(output: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The `Sec-WebSocket-Extensions` answer of `hybi serve` to a browser-like offer.
fn extensions_answered(serve: &Serve) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(&serve.addr).unwrap();
    write!(
        s,
        "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1);
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    head.lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
        .map(str::to_owned)
}

#[test]
fn serve_and_connect_compress_unless_told_not_to() {
    let serve = Serve::start();
    let answer = extensions_answered(&serve).expect("deflate accepted");
    assert!(answer.starts_with("permessage-deflate"), "{answer}");
    assert!(
        answer.contains("server_no_context_takeover")
            && answer.contains("client_no_context_takeover")
    );
    // hybi connect offers it; the echo goes through compressed.
    let long = "compress me ".repeat(100);
    let out = connect(&[&serve.url("/echo")], &format!("{long}\n"));
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(&long));
    let plain = Serve::start_with(&["--no-deflate"]);
    assert_eq!(extensions_answered(&plain), None);
    let out = connect(&["--no-deflate", &plain.url("/echo")], "plain\n");
    assert!(text(&out.stdout).contains("plain"));
}
