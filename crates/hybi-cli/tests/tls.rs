//! The `hybi` binary over TLS, with certificates made here (rcgen) and written as PEM
//! files: `serve --tls-cert --tls-key`, `connect --ca`, `load --insecure`, a
//! certificate the client does not trust, and missing or bad PEM files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

fn hybi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hybi"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory of its own for one test's files, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("hybi-cli-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// PEM files: `ca.pem` (a CA), `cert.pem` (a chain for localhost and 127.0.0.1
/// signed by it), `key.pem` (its PKCS#8 key).
fn pki(dir: &Dir) -> (String, String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "hybi cli test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        dir.write("ca.pem", &ca_cert.pem()),
        dir.write("cert.pem", &format!("{}{}", cert.pem(), ca_cert.pem())),
        dir.write("key.pem", &key.serialize_pem()),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `hybi serve` over TLS on a free port.
struct Serve {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
}

impl Serve {
    fn start(cert: &str, key: &str) -> Serve {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = hybi()
            .args(["serve", "--addr", &addr, "--workers", "1"])
            .args(["--tls-cert", cert, "--tls-key", key])
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
        let line = serve.expect_line(|l| l.contains("chat page at"));
        assert!(
            line.contains("https://") && line.contains("wss://"),
            "{line}"
        );
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

    fn url(&self, host: &str, path: &str) -> String {
        let port = self.addr.rsplit(':').next().unwrap();
        format!("wss://{host}:{port}{path}")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_with_timeout(mut child: Child, timeout: Duration) -> Output {
    let until = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        assert!(Instant::now() < until, "hybi did not exit");
        std::thread::sleep(Duration::from_millis(20));
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

#[test]
fn serve_over_tls_and_connect_with_the_ca() {
    let dir = Dir::new("connect");
    let (ca, cert, key) = pki(&dir);
    let serve = Serve::start(&cert, &key);
    let out = connect(
        &[&serve.url("localhost", "/echo"), "--ca", &ca],
        "over tls\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "over tls\n");
    let close = serve.expect_line(|l| l.starts_with("close "));
    assert!(close.contains("/echo 1000"), "{close}");
    // The chat room too, by IP address.
    let out = connect(&[&serve.url("127.0.0.1", "/chat"), "--ca", &ca], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn connect_without_the_ca_fails_with_a_certificate_error() {
    let dir = Dir::new("untrusted");
    let (_, cert, key) = pki(&dir);
    let serve = Serve::start(&cert, &key);
    let out = connect(&[&serve.url("localhost", "/echo")], "never sent\n");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("TLS handshake"), "{err}");
    assert!(
        err.contains("certificate") && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn connect_insecure_skips_the_check_with_a_warning() {
    let dir = Dir::new("insecure");
    let (_, cert, key) = pki(&dir);
    let serve = Serve::start(&cert, &key);
    let out = connect(&[&serve.url("localhost", "/echo"), "--insecure"], "hi\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    assert!(text(&out.stderr).contains("warning: --insecure"));
}

#[test]
fn load_over_tls_with_insecure_and_with_the_ca() {
    let dir = Dir::new("load");
    let (ca, cert, key) = pki(&dir);
    let serve = Serve::start(&cert, &key);
    let url = serve.url("localhost", "/echo");
    let base = [
        "load", "--url", &url, "--conns", "4", "--secs", "0.5", "--json",
    ];
    let out = hybi()
        .args(base)
        .args(["--verify", "--insecure"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = text(&out.stdout);
    assert!(json.contains("\"bad_echoes\":0"), "{json}");
    assert!(text(&out.stderr).contains("warning: --insecure"));
    let out = hybi().args(base).args(["--ca", &ca]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Without either, the test CA is not trusted.
    let out = hybi().args(base).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("UnknownIssuer"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_or_bad_pem_files_are_usage_errors() {
    let dir = Dir::new("bad");
    let (_, cert, key) = pki(&dir);
    let garbage = dir.write("garbage.pem", "not a PEM file\n");
    let missing = dir.path("missing.pem");
    let other_key = dir.write("other.pem", &KeyPair::generate().unwrap().serialize_pem());
    let serve = |cert: &str, key: &str| {
        let child = hybi()
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--tls-cert",
                cert,
                "--tls-key",
                key,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_with_timeout(child, Duration::from_secs(10))
    };
    for (c, k, says) in [
        (&missing, &key, "--tls-cert"),
        (&garbage, &key, "no PEM certificate"),
        (&cert, &missing, "--tls-key"),
        (&cert, &garbage, "private key"),
        (&cert, &cert, "private key"),
        // A key that is not the certificate's.
        (&cert, &other_key, "do not make a usable pair"),
    ] {
        let out = serve(c, k);
        assert_eq!(out.status.code(), Some(2), "{c} {k}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(says), "{c} {k}: {err}");
    }
    // --tls-cert needs --tls-key.
    let out = hybi()
        .args(["serve", "--addr", "127.0.0.1:0", "--tls-cert", &cert])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // --ca with a missing file; --ca and --insecure together.
    let out = connect(&["wss://localhost:1/echo", "--ca", &missing], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--ca"), "{}", text(&out.stderr));
    let out = connect(&["wss://localhost:1/echo", "--ca", &cert, "--insecure"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_help_lists_the_tls_flags() {
    let help = |command: &str| text(&hybi().args([command, "--help"]).output().unwrap().stdout);
    let serve = help("serve");
    assert!(
        serve.contains("--tls-cert") && serve.contains("--tls-key"),
        "{serve}"
    );
    for command in ["connect", "load"] {
        let shown = help(command);
        assert!(
            shown.contains("--ca") && shown.contains("--insecure"),
            "{shown}"
        );
    }
}
