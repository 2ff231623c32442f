//! `hybi load`: keeps P messages in flight on each of C connections to an echo server
//! for D seconds, and reports messages/s, MB/s and latency percentiles.
//!
//! The connections run on hybi-mio event loops (`--workers`, one by default), so the
//! generator costs about what an efficient server does per message; latency is the
//! time from a message's send to its echo, matched in order per connection (echo
//! servers answer in order), so messages of any size, even empty, are measured.
//!
//! No message is sent until every connection is open: a server with a thread per
//! connection would otherwise share its core between the connections already echoing
//! and the accept loop, and open the last ones seconds later. Each connection then
//! gets a ping with a marker payload; its pong starts the connection's messages.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hybi_mio::{CloseCode, ConnectError, Context, Handler, Sender, Server};

use crate::LoadArgs;
use crate::exit::Exit;
use crate::histogram::Histogram;

/// What every connection reports into.
struct Shared {
    /// The time base of send timestamps.
    epoch: Instant,
    /// Keep sending (false: let in-flight messages drain, then close).
    running: AtomicBool,
    /// Count completed messages (the measurement window).
    measuring: AtomicBool,
    opened: AtomicUsize,
    ended: AtomicUsize,
    failed: AtomicUsize,
    messages: AtomicU64,
    bad_echoes: AtomicU64,
    latency: Mutex<Histogram>,
    first_error: Mutex<Option<String>>,
    /// The exit status of the first connection that could not be opened, by its
    /// error: a usage error, a network error or a refused upgrade.
    connect_failure: Mutex<Option<Exit>>,
    /// Every open connection, to start them together.
    senders: Mutex<Vec<Sender>>,
}

/// The payload of the ping whose pong starts a connection's messages.
const GO: &[u8] = b"hybi load: go";

impl Shared {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn error(&self, why: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(why);
    }
}

/// One load connection.
struct LoadConn {
    shared: Arc<Shared>,
    /// The messages sent, in turn (one, or with `--json-payload` a set of different ones).
    payloads: Arc<Vec<Vec<u8>>>,
    turn: usize,
    text: bool,
    verify: bool,
    inflight: usize,
    /// Send times of the messages in flight, oldest first, and which payload each was.
    sent_at: VecDeque<(u64, usize)>,
    latency: Histogram,
    opened: bool,
    /// The connection's messages have started.
    started: bool,
    closing: bool,
}

impl LoadConn {
    fn send(&mut self, ctx: &mut Context<'_>) {
        let index = self.turn % self.payloads.len();
        self.turn = self.turn.wrapping_add(1);
        self.sent_at.push_back((self.shared.now(), index));
        let payload = &self.payloads[index];
        let sent = if self.text {
            // The payload is ASCII, checked when it was made.
            match std::str::from_utf8(payload) {
                Ok(t) => ctx.send_text(t),
                Err(_) => ctx.send_binary(payload),
            }
        } else {
            ctx.send_binary(payload)
        };
        if let Err(e) = sent {
            self.shared.error(format!("send failed: {e}"));
        }
    }

    fn echo(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let now = self.shared.now();
        let Some((sent, index)) = self.sent_at.pop_front() else {
            self.shared.bad_echoes.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let payload = &self.payloads[index];
        let intact = if self.verify {
            data == payload.as_slice()
        } else {
            data.len() == payload.len()
        };
        if !intact {
            self.shared.bad_echoes.fetch_add(1, Ordering::Relaxed);
        }
        if self.shared.measuring.load(Ordering::Relaxed) {
            self.latency.record(now.saturating_sub(sent));
            self.shared.messages.fetch_add(1, Ordering::Relaxed);
        }
        if self.shared.running.load(Ordering::Relaxed) {
            self.send(ctx);
        } else if self.sent_at.is_empty() && !self.closing {
            self.closing = true;
            let _ = ctx.close(CloseCode::NORMAL, "load done");
        }
    }
}

impl Handler for LoadConn {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.opened = true;
        if let Ok(mut senders) = self.shared.senders.lock() {
            senders.push(ctx.sender());
        }
        self.shared.opened.fetch_add(1, Ordering::SeqCst);
    }
    fn on_pong(&mut self, ctx: &mut Context<'_>, payload: &[u8]) {
        if payload == GO && !self.started {
            self.started = true;
            for _ in 0..self.inflight {
                self.send(ctx);
            }
        }
    }
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        self.echo(ctx, text.as_bytes());
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.echo(ctx, data);
    }
    fn on_close(&mut self, _ctx: &mut Context<'_>, code: CloseCode, reason: &str) {
        if let Ok(mut all) = self.shared.latency.lock() {
            all.merge(&self.latency);
        }
        let expected = self.closing || code == CloseCode::GOING_AWAY;
        if !self.opened || !expected {
            self.shared.failed.fetch_add(1, Ordering::SeqCst);
            self.shared
                .error(format!("connection closed: {code} {reason}"));
        }
        self.shared.ended.fetch_add(1, Ordering::SeqCst);
    }
    fn on_connect_error(&mut self, _ctx: &mut Context<'_>, error: ConnectError) {
        let exit = match &error {
            ConnectError::Url(_) | ConnectError::Request(_) => Exit::Usage,
            ConnectError::Response(_) => Exit::Refused,
            ConnectError::Stopped => Exit::LoadFailed,
            _ => Exit::Network,
        };
        self.shared
            .connect_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(exit);
        self.shared.error(error.to_string());
        self.shared.failed.fetch_add(1, Ordering::SeqCst);
        self.shared.ended.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits until `done()` or `timeout`.
fn wait_for(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let until = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

fn human(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

pub(crate) fn run(args: &LoadArgs) -> Exit {
    if args.conns == 0 || args.inflight == 0 {
        eprintln!("hybi load: --conns and --inflight must be at least 1");
        return Exit::Usage;
    }
    let Some(window) = crate::seconds(args.secs) else {
        eprintln!("hybi load: --secs must be a positive number");
        return Exit::Usage;
    };
    let event_loop = match Server::builder().workers(args.workers).start() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hybi load: cannot start the event loop: {e}");
            return Exit::Network;
        }
    };
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        running: AtomicBool::new(true),
        measuring: AtomicBool::new(false),
        opened: AtomicUsize::new(0),
        ended: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        messages: AtomicU64::new(0),
        bad_echoes: AtomicU64::new(0),
        latency: Mutex::new(Histogram::default()),
        first_error: Mutex::new(None),
        connect_failure: Mutex::new(None),
        senders: Mutex::new(Vec::with_capacity(args.conns)),
    });
    let payloads: Arc<Vec<Vec<u8>>> = Arc::new(if args.json_payload {
        json_payloads(args.size)
    } else if args.text {
        vec![(0..args.size).map(|i| b'a' + (i % 26) as u8).collect()]
    } else {
        vec![(0..args.size).map(|i| (i * 31 % 251) as u8).collect()]
    });
    let tls = match crate::tls::client_config("load", args.tls.ca.as_deref(), args.tls.insecure) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("hybi load: {e}");
            return Exit::Usage;
        }
    };
    for _ in 0..args.conns {
        let conn = LoadConn {
            shared: Arc::clone(&shared),
            payloads: Arc::clone(&payloads),
            turn: 0,
            text: args.text || args.json_payload,
            verify: args.verify,
            inflight: args.inflight,
            sent_at: VecDeque::with_capacity(args.inflight),
            latency: Histogram::default(),
            opened: false,
            started: false,
            closing: false,
        };
        let config = hybi_mio::default_config()
            .with_strict_masking(!args.accept_masked)
            .with_deflate(
                args.deflate
                    .then(hybi_mio::hybi::deflate::DeflateConfig::default),
            );
        let mut options = hybi_mio::ClientOptions::new(&args.url).config(config);
        if let Some(tls) = &tls {
            options = options.tls_config(Arc::clone(tls));
        }
        if let Err(e) = event_loop.connect_with(options, conn) {
            eprintln!("hybi load: {e}");
            return match e {
                hybi_mio::ConnectError::Url(_) | hybi_mio::ConnectError::Request(_) => Exit::Usage,
                _ => Exit::Network,
            };
        }
    }
    let all_started = wait_for(Duration::from_secs(30), || {
        shared.opened.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst) >= args.conns
    });
    let failed = shared.failed.load(Ordering::SeqCst);
    if !all_started || failed > 0 {
        let why = shared
            .first_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "timed out".into());
        eprintln!(
            "hybi load: {} of {} connections to {} did not open: {why}",
            args.conns - shared.opened.load(Ordering::SeqCst),
            args.conns,
            args.url
        );
        let exit = *shared
            .connect_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        return exit.unwrap_or(Exit::LoadFailed);
    }

    // Start every connection's messages.
    let senders = std::mem::take(&mut *shared.senders.lock().unwrap_or_else(|p| p.into_inner()));
    for sender in &senders {
        if let Err(e) = sender.ping(GO) {
            shared.error(format!("ping failed: {e}"));
        }
    }
    drop(senders);

    // The measurement window.
    let started = Instant::now();
    shared.measuring.store(true, Ordering::SeqCst);
    let mut last = (started, 0u64);
    while started.elapsed() < window {
        let left = window.saturating_sub(started.elapsed());
        std::thread::sleep(left.min(Duration::from_secs(1)));
        if !args.quiet {
            let now = Instant::now();
            let count = shared.messages.load(Ordering::Relaxed);
            let rate = (count - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, count);
            eprint!(
                "\r[{:5.1}s] {:>8} msg/s {:>9.2} MB/s   {} connections   ",
                started.elapsed().as_secs_f64(),
                human(rate),
                rate * args.size as f64 / 1e6,
                shared.opened.load(Ordering::Relaxed) - shared.ended.load(Ordering::Relaxed),
            );
            let _ = std::io::stderr().flush();
        }
    }
    shared.measuring.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed().as_secs_f64();
    shared.running.store(false, Ordering::SeqCst);
    if !args.quiet {
        eprintln!();
    }
    let drained = wait_for(Duration::from_secs(10), || {
        shared.ended.load(Ordering::SeqCst) >= args.conns
    });
    event_loop.shutdown(Duration::from_secs(1));

    let messages = shared.messages.load(Ordering::SeqCst);
    let bad = shared.bad_echoes.load(Ordering::SeqCst);
    let failed = shared.failed.load(Ordering::SeqCst);
    let latency = shared.latency.lock().map(|h| h.clone()).unwrap_or_default();
    let rate = messages as f64 / elapsed;
    let mbps = rate * args.size as f64 / 1e6;
    // Nothing measured: no latency either ("n/a", null in JSON), not 0.
    let measured = latency.count() > 0;
    let nanos = |q: f64| measured.then(|| latency.quantile(q));
    let max = measured.then(|| latency.max());
    let json_us =
        |n: Option<u64>| n.map_or_else(|| "null".to_owned(), |n| format!("{:.1}", n as f64 / 1e3));
    if args.json {
        println!(
            "{{\"url\":{:?},\"conns\":{},\"inflight\":{},\"size\":{},\"text\":{},\"secs\":{:.3},\"messages\":{},\"msgs_per_sec\":{:.1},\"mb_per_sec\":{:.3},\"latency_us\":{{\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{}}},\"bad_echoes\":{},\"failed_connections\":{}}}",
            args.url,
            args.conns,
            args.inflight,
            args.size,
            args.text,
            elapsed,
            messages,
            rate,
            mbps,
            json_us(nanos(0.5)),
            json_us(nanos(0.99)),
            json_us(nanos(0.999)),
            json_us(max),
            bad,
            failed
        );
    } else {
        println!(
            "{} conns × {} in flight × {} B {} for {:.1}s",
            args.conns,
            args.inflight,
            args.size,
            if args.text { "text" } else { "binary" },
            elapsed
        );
        println!(
            "messages   {messages} ({}/s, {mbps:.2} MB/s each way)",
            human(rate)
        );
        println!(
            "latency    p50 {}   p99 {}   p99.9 {}   max {}",
            format_latency(nanos(0.5)),
            format_latency(nanos(0.99)),
            format_latency(nanos(0.999)),
            format_latency(max)
        );
        if bad > 0 || failed > 0 || !drained {
            println!("errors     {bad} wrong echoes, {failed} failed connections");
        }
    }
    if bad > 0 || failed > 0 || messages == 0 {
        match shared.first_error.lock().ok().and_then(|e| e.clone()) {
            Some(why) => eprintln!("hybi load: {why}"),
            None if messages == 0 => {
                eprintln!("hybi load: no echo came back within the {elapsed:.1} s measured");
            }
            None => {}
        }
        return Exit::LoadFailed;
    }
    Exit::Ok
}

/// A latency for people: "n/a" when nothing was measured, microseconds below 1 ms
/// ("850.3 µs"), milliseconds from there ("1.23 ms"), seconds from 1 s ("1.50 s").
pub(crate) fn format_latency(nanos: Option<u64>) -> String {
    match nanos {
        None => "n/a".to_owned(),
        // The bounds are where the rounded figure would reach 1000.0 µs / 1000.00 ms.
        Some(n) if n < 999_950 => format!("{:.1} µs", n as f64 / 1e3),
        Some(n) if n < 999_995_000 => format!("{:.2} ms", n as f64 / 1e6),
        Some(n) => format!("{:.2} s", n as f64 / 1e9),
    }
}

/// 64 different JSON-like texts of `size` bytes (ids, names and times vary, as in a
/// chat or an API stream), sent in turn with `--json-payload`: what compression meets in
/// practice, where one repeated message would compress to almost nothing.
fn json_payloads(size: usize) -> Vec<Vec<u8>> {
    (0..64u64)
        .map(|v| {
            let mut s = String::with_capacity(size + 96);
            let mut k = 0u64;
            while s.len() < size {
                let id = v * 1000 + k;
                s.push_str(&format!(
                    "{{\"id\":{id},\"user\":\"user{}\",\"room\":\"r{}\",\"text\":\"message {} of the day\",\"ts\":{}}},",
                    (id * 7919) % 97,
                    (id * 31) % 13,
                    (id * 104_729) % 1000,
                    1_700_000_000 + (id * 7) % 86_400
                ));
                k += 1;
            }
            s.truncate(size);
            s.into_bytes()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::format_latency;

    #[test]
    fn latencies_are_in_the_unit_that_reads_best() {
        assert_eq!(format_latency(None), "n/a");
        assert_eq!(format_latency(Some(0)), "0.0 µs");
        assert_eq!(format_latency(Some(42_350)), "42.4 µs");
        assert_eq!(format_latency(Some(999_949)), "999.9 µs");
        assert_eq!(format_latency(Some(999_960)), "1.00 ms");
        assert_eq!(format_latency(Some(1_000_000)), "1.00 ms");
        assert_eq!(format_latency(Some(1_234_567)), "1.23 ms");
        assert_eq!(format_latency(Some(250_000_000)), "250.00 ms");
        assert_eq!(format_latency(Some(999_999_000)), "1.00 s");
        assert_eq!(format_latency(Some(1_500_000_000)), "1.50 s");
    }
}
