//! Listening and accepting: an address held by someone else, running out of file
//! descriptors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hybi_mio::{Context, Handler, Server};

struct Echo;
impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
}

const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

// ------------------------------------------------------------------ binding

fn echo_server(builder: hybi_mio::ServerBuilder, addr: SocketAddr) -> std::io::Result<Server> {
    builder.route("/echo", |_| Echo).bind(addr)
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A WebSocket round trip through `addr`.
fn echoes(addr: SocketAddr) {
    let (mut ws, _) = hybi_std::connect(&format!("ws://{addr}/echo")).unwrap();
    ws.send_text("anyone?").unwrap();
    assert_eq!(
        ws.read().unwrap(),
        hybi_std::Message::Text("anyone?".into())
    );
}

#[test]
#[cfg(unix)] // SO_REUSEPORT
fn a_second_server_on_the_same_address_fails_with_addr_in_use() {
    let first = echo_server(Server::builder().workers(2), any_port()).unwrap();
    let addr = first.local_addr();
    for workers in [1, 2] {
        let second = echo_server(Server::builder().workers(workers), addr);
        let err = second.err().expect("the address is taken");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    }
    // Not even with SO_REUSEPORT: the first server did not set it.
    let err = echo_server(Server::builder().reuse_port(true), addr)
        .err()
        .expect("taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    let err = std::net::TcpListener::bind(addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    // The first one still serves, on every connection.
    for _ in 0..8 {
        echoes(addr);
    }
}

#[test]
#[cfg(unix)] // SO_REUSEPORT
fn an_address_held_by_another_listener_fails_with_addr_in_use() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let err = echo_server(Server::builder().workers(2), addr)
        .err()
        .expect("taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    // A listener that set SO_REUSEPORT (another multi-process server) cannot be
    // joined either without the opt-in.
    let shared = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    shared.set_reuse_port(true).unwrap();
    shared.bind(&any_port().into()).unwrap();
    shared.listen(16).unwrap();
    let addr = shared.local_addr().unwrap().as_socket().unwrap();
    let err = echo_server(Server::builder(), addr).err().expect("taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
}

#[test]
#[cfg(unix)] // SO_REUSEPORT
fn servers_that_opt_into_reuse_port_share_the_address() {
    let first = echo_server(Server::builder().workers(2).reuse_port(true), any_port()).unwrap();
    let addr = first.local_addr();
    let second = echo_server(Server::builder().workers(2).reuse_port(true), addr).unwrap();
    assert_eq!(second.local_addr(), addr);
    // A server without the opt-in cannot join them.
    let err = echo_server(Server::builder(), addr).err().expect("taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    for _ in 0..8 {
        echoes(addr);
    }
    drop(first);
    echoes(addr);
}

// ------------------------------------------------------------------ spreading

/// Counts opened connections per worker thread; the first one to open blocks its
/// worker for a while.
struct Counted {
    opened: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>>,
    first: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Handler for Counted {
    fn on_open(&mut self, _: &mut Context<'_>) {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        *self.opened.lock().unwrap().entry(name).or_default() += 1;
        if self.first.swap(false, Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[test]
fn connections_are_spread_evenly_over_the_workers_even_when_one_is_busy() {
    // 64 connections while one of two workers is stuck in a callback: the other
    // accepts them all (every worker wakes for a new connection, the free one gets
    // there first), and hands the busy one its share.
    let opened = std::sync::Arc::default();
    let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (o2, f2) = (
        std::sync::Arc::clone(&opened),
        std::sync::Arc::clone(&first),
    );
    let server = Server::builder()
        .workers(2)
        .route("/count", move |_| Counted {
            opened: std::sync::Arc::clone(&o2),
            first: std::sync::Arc::clone(&f2),
        })
        .bind(any_port())
        .unwrap();
    let addr = server.local_addr();
    let request = String::from_utf8_lossy(UPGRADE).replace("/echo", "/count");
    let connect = || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        s
    };
    let mut clients = vec![connect()];
    while first.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1)); // the first one is open
    }
    clients.extend((1..64).map(|_| connect()));
    let total = || opened.lock().unwrap().values().sum::<usize>();
    let deadline = Instant::now() + Duration::from_secs(10);
    while total() < 64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let split: Vec<usize> = opened.lock().unwrap().values().copied().collect();
    assert_eq!(split.iter().sum::<usize>(), 64, "{split:?}");
    assert_eq!(split.len(), 2, "{split:?}");
    assert!(split[0].abs_diff(split[1]) <= 2, "{split:?}");
    drop(clients);
}

// ------------------------------------------------------ file descriptor exhaustion

/// Set in the child process that runs under a lowered descriptor limit.
const LIMITED: &str = "HYBI_MIO_TEST_FD_LIMITED";
const INNER: &str = "connections_queued_while_out_of_descriptors_are_accepted_once_there_are_some";

#[test]
#[cfg(unix)]
fn accepting_resumes_after_running_out_of_file_descriptors() {
    // The process's own limit cannot be lowered without unsafe code: run the test
    // below in a child of this binary, started by a shell that lowers it.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" "$@""#)
        .arg(exe)
        .args([
            "--exact",
            INNER,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LIMITED, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the limited run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// Counts the warnings hybi-mio logs about accepting.
struct AcceptWarnings;
static ACCEPT_WARNINGS: AtomicUsize = AtomicUsize::new(0);
impl log::Log for AcceptWarnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn && format!("{}", record.args()).contains("accept") {
            ACCEPT_WARNINGS.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn flush(&self) {}
}

/// CPU time used so far by the thread named `name`, in clock ticks (Linux).
fn thread_cpu_ticks(name: &str) -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // After "pid (comm) ": state is field 3; utime and stime are fields 14, 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        return Some(utime + stime);
    }
    None
}

#[test]
#[ignore = "run by accepting_resumes_after_running_out_of_file_descriptors under a lowered limit"]
fn connections_queued_while_out_of_descriptors_are_accepted_once_there_are_some() {
    if std::env::var_os(LIMITED).is_none() {
        eprintln!("needs a lowered descriptor limit: run through the test that starts it");
        return;
    }
    log::set_logger(&AcceptWarnings).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let server = Server::builder()
        .workers(1)
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr: SocketAddr = server.local_addr();
    let cpu_before = thread_cpu_ticks("hybi-mio-0");

    // Client sockets made first, connected once every descriptor is taken.
    let clients: Vec<socket2::Socket> = (0..8)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    let mut hog = Vec::new();
    let exhausted = loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => hog.push(f),
            Err(e) => break e,
        }
    };
    assert!(
        hog.len() < 64,
        "the limit applies ({} files open)",
        hog.len()
    );
    assert_eq!(exhausted.raw_os_error(), Some(24), "EMFILE: {exhausted}");
    for c in &clients {
        // Completed by the kernel into the listen backlog; accept fails (EMFILE).
        c.connect(&addr.into()).unwrap();
        (&*c).write_all(UPGRADE).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
    }
    // While no descriptor is free, nobody is answered.
    let mut byte = [0u8; 1];
    assert!(
        (&clients[0]).read(&mut byte).is_err(),
        "no answer without descriptors"
    );

    drop(hog);
    let freed = Instant::now();
    for c in &clients {
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            match (&*c).read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                other => panic!(
                    "queued connection not answered {:?} after descriptors were freed: {other:?}",
                    freed.elapsed()
                ),
            }
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    }
    assert!(
        freed.elapsed() < Duration::from_secs(1),
        "{:?}",
        freed.elapsed()
    );
    assert_eq!(
        ACCEPT_WARNINGS.load(Ordering::SeqCst),
        1,
        "the failure is logged once, not per attempt"
    );
    // Retrying on a timer, not spinning: the worker slept through the wait above.
    if let (Some(before), Some(after)) = (cpu_before, thread_cpu_ticks("hybi-mio-0")) {
        assert!(
            after - before < 10,
            "the worker used {} ticks",
            after - before
        );
    }
    drop(clients);
    drop(server);
}

#[test]
fn a_bound_server_reports_its_port_and_a_client_only_loop_the_unspecified_address() {
    let server = Server::builder().workers(1).bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    assert!(std::net::TcpStream::connect(addr).is_ok());
    server.shutdown(Duration::from_millis(100));
    let event_loop = Server::builder().workers(1).start().unwrap();
    assert_eq!(event_loop.local_addr(), SocketAddr::from(([0, 0, 0, 0], 0)));
    event_loop.shutdown(Duration::from_millis(100));
}
