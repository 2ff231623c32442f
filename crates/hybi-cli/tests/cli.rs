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
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = hybi()
            .args(["serve", "--addr", &addr, "--workers", "1", "--grace", "3"])
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
    assert_eq!(text(&out.stdout), "[binary 3 bytes] 616263\n");
    assert!(text(&out.stderr).contains("pong"), "{}", text(&out.stderr));
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
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
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
}
