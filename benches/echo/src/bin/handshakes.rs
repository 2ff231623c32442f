//! Opens and closes WebSocket connections as fast as it can, CONCURRENCY at a time, on
//! one mio thread, and reports handshakes per second.
//!
//! One cycle: TCP connect, upgrade request, the 101 (status and
//! `Sec-WebSocket-Accept` checked), a close frame (1000), the server's close frame,
//! then the server's TCP close (servers close first, RFC 6455 §7.1.1), then ours.
//! Only completed cycles count.
//!
//! Over TLS (`--tls`, or a `wss://` URL) a cycle starts with a full TLS handshake
//! (rustls, no session resumption, the server's certificate not verified: see
//! `hybi_echo_bench::tls`), and the server's TCP close may come without a TLS
//! close_notify.
//!
//! Usage: `handshakes ADDR [PATH] [SECS] [CONCURRENCY] [--tls]` or
//! `handshakes ws[s]://ADDR/PATH [SECS] [CONCURRENCY]` (defaults: /, 3 s, 32).
//! Prints one JSON line.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hybi_echo_bench::{
    CLOSE_FRAME, check_101, frame_extent, head_len, parse_target, tls, upgrade_request,
};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the connection to be established.
    Connecting,
    /// Request sent, reading the 101.
    Response,
    /// Close sent, reading the server's close frame.
    Closing,
    /// Close received, waiting for the server's TCP close.
    Eof,
}

struct Slot {
    stream: TcpStream,
    /// The TLS session over `stream`, for wss.
    tls: Option<rustls::ClientConnection>,
    phase: Phase,
    buf: Vec<u8>,
    started: Instant,
}

enum Step {
    Wait,
    Done,
    Failed(String),
}

impl Slot {
    /// Writes all of `data` (plain: in one `write`, TLS: into the session, then as
    /// much of the session's output as the socket takes).
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.tls {
            None => {
                if self.stream.write(data)? != data.len() {
                    return Err(io::Error::other("short write"));
                }
                Ok(())
            }
            Some(tls) => {
                tls.writer().write_all(data)?;
                self.flush()
            }
        }
    }

    /// Sends what the TLS session has to send, until the socket would block.
    fn flush(&mut self) -> io::Result<()> {
        let Some(tls) = &mut self.tls else {
            return Ok(());
        };
        while tls.wants_write() {
            match tls.write_tls(&mut self.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads application bytes: `Ok(0)` at the end of the stream (over TLS, a
    /// close_notify or the TCP close), `WouldBlock` when none are ready.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.stream.read(buf);
        }
        loop {
            let Some(tls) = &mut self.tls else {
                unreachable!("checked above")
            };
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match tls.read_tls(&mut self.stream) {
                Ok(_) => {
                    tls.process_new_packets().map_err(io::Error::other)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.flush()?;
        }
    }
}

struct Client {
    addr: SocketAddr,
    request: Vec<u8>,
    accept: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    fn open(&self) -> io::Result<Slot> {
        let tls = match &self.tls {
            Some(config) => Some(
                rustls::ClientConnection::new(Arc::clone(config), tls::server_name(self.addr))
                    .map_err(io::Error::other)?,
            ),
            None => None,
        };
        Ok(Slot {
            stream: TcpStream::connect(self.addr)?,
            tls,
            phase: Phase::Connecting,
            buf: Vec::with_capacity(512),
            started: Instant::now(),
        })
    }

    fn drive(&self, slot: &mut Slot) -> Step {
        match self.try_drive(slot) {
            Ok(step) => step,
            Err(e) => Step::Failed(e.to_string()),
        }
    }

    fn try_drive(&self, slot: &mut Slot) -> io::Result<Step> {
        if slot.phase == Phase::Connecting {
            if let Some(e) = slot.stream.take_error()? {
                return Err(e);
            }
            match slot.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(Step::Wait),
                Err(e) => return Err(e),
            }
            let _ = slot.stream.set_nodelay(true);
            // Over TLS the request waits in the session until the handshake is done.
            slot.write_all(&self.request)?;
            slot.phase = Phase::Response;
        }
        slot.flush()?;
        let mut chunk = [0u8; 4096];
        loop {
            let n = match slot.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Wait),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return if slot.phase == Phase::Eof {
                    Ok(Step::Done)
                } else {
                    Err(io::Error::other("connection closed early"))
                };
            }
            slot.buf.extend_from_slice(&chunk[..n]);
            if slot.phase == Phase::Response {
                let Some(len) = head_len(&slot.buf) else {
                    continue;
                };
                check_101(&slot.buf[..len], &self.accept).map_err(io::Error::other)?;
                slot.buf.drain(..len);
                slot.write_all(&CLOSE_FRAME)?;
                slot.phase = Phase::Closing;
            }
            while slot.phase == Phase::Closing {
                match frame_extent(&slot.buf) {
                    Some((op, total)) if slot.buf.len() >= total => {
                        slot.buf.drain(..total);
                        if op == 0x8 {
                            slot.phase = Phase::Eof;
                        }
                    }
                    _ => break,
                }
            }
        }
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((target, mut rest)) = parse_target(&args) else {
        eprintln!(
            "usage: handshakes ADDR [PATH] [SECS] [CONCURRENCY] [--tls]\n       \
             handshakes ws[s]://ADDR/PATH [SECS] [CONCURRENCY]"
        );
        std::process::exit(2);
    };
    let path = match target.path {
        Some(p) => p,
        None if rest.is_empty() => "/".to_owned(),
        None => rest.remove(0),
    };
    let addr = target.addr;
    let secs: f64 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let concurrency: usize = rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    let (request, accept) = upgrade_request(&addr.to_string(), &path);
    let client = Client {
        addr,
        request,
        accept,
        tls: target.tls.then(tls::insecure_client),
    };

    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<Option<Slot>> = (0..concurrency).map(|_| None).collect();
    let mut completed = 0u64;
    let mut errors = 0u64;
    let mut first_error: Option<String> = None;
    let start = Instant::now();
    let window = Duration::from_secs_f64(secs);
    let stall = Duration::from_secs(5);
    let mut elapsed = window;
    let mut counting = true;

    let reopen = |poll: &Poll, slot: &mut Option<Slot>, token: usize| -> io::Result<()> {
        let mut s = client.open()?;
        poll.registry().register(
            &mut s.stream,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        *slot = Some(s);
        Ok(())
    };
    for (i, slot) in slots.iter_mut().enumerate() {
        reopen(&poll, slot, i)?;
    }
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        let now = Instant::now();
        if counting && now.duration_since(start) >= window {
            counting = false;
            elapsed = now.duration_since(start);
        }
        let mut ready: Vec<usize> = events.iter().map(|e| e.token().0).collect();
        // Connections that stalled count as errors.
        for (i, slot) in slots.iter().enumerate() {
            if slot
                .as_ref()
                .is_some_and(|s| now.duration_since(s.started) > stall)
            {
                ready.push(i);
            }
        }
        for i in ready {
            let Some(slot) = slots.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            let step = if now.duration_since(slot.started) > stall {
                Step::Failed(format!("stalled in phase {:?}", slot.phase))
            } else {
                client.drive(slot)
            };
            match step {
                Step::Wait => continue,
                Step::Done => {
                    if counting {
                        completed += 1;
                    }
                }
                Step::Failed(why) => {
                    errors += 1;
                    first_error.get_or_insert(why);
                }
            }
            if let Some(mut old) = slots[i].take() {
                let _ = poll.registry().deregister(&mut old.stream);
            }
            if counting && let Err(e) = reopen(&poll, &mut slots[i], i) {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
        if !counting && slots.iter().all(Option::is_none) {
            break;
        }
    }
    let rate = completed as f64 / elapsed.as_secs_f64();
    let why = first_error.unwrap_or_default().replace('"', "'");
    println!(
        "{{\"handshakes_per_sec\":{rate:.1},\"tls\":{},\"completed\":{completed},\"secs\":{:.3},\"concurrency\":{concurrency},\"errors\":{errors},\"first_error\":\"{why}\"}}",
        client.tls.is_some(),
        elapsed.as_secs_f64()
    );
    if completed == 0 || errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
