//! `hybi connect`: an interactive client. Each stdin line is sent as a message (text,
//! or binary with `-b`); each message received is printed on stdout (text as a line,
//! binary raw on a pipe and as hex on a terminal or with `--hex`); status goes to
//! stderr (`-q`: errors only).
//!
//! Every way out closes the connection first and says who closed it: the end of stdin
//! with 1000 (unless `-n`; then the server closes), after the first reply with `-1`
//! 1000 (both followed by the closing handshake, bounded by the engine's close
//! timeout), Ctrl-C with 1001 and a line that cannot be sent (not UTF-8 in text mode,
//! or stdin unreadable) with 1000, each waiting at most 2 s for the server's answer
//! before exiting with its own status (see `hybi --help`).
//!
//! When stdin is a terminal, a line printed while the user may be typing (a message,
//! a pong time) starts with a carriage return and an erase-line escape, so it stands
//! on a line of its own instead of running into the half-typed input; the input stays
//! in the terminal's line buffer (Enter sends it, Ctrl-R shows it again).

use std::collections::VecDeque;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use hybi_std::{ClientBuilder, CloseCode, Error, MaybeTls, Message, Response, WebSocket, Writer};

use crate::ConnectArgs;
use crate::exit::{Exit, client_error};

/// How long a close we start on Ctrl-C or bad input waits for the server's answer.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Pings whose pongs have not come back, kept for their round-trip times (older ones
/// are forgotten: a server may answer only the latest of several).
const PINGS_KEPT: usize = 64;

/// How the connection ended, as the reader saw it.
enum End {
    /// A close frame arrived: the server's own close, or its answer to ours.
    PeerClosed(CloseCode, String),
    /// The connection ended after a closing handshake without a close frame read here.
    Closed,
    /// It failed.
    Failed(String),
}

/// Who started the closing handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closer {
    /// We did, with this code.
    Us(CloseCode),
    /// The server's close frame arrived before we sent one.
    Server,
}

/// Set once, by whoever closes first (see [`close_in_background`] and the reader).
type WhoClosed = Arc<Mutex<Option<Closer>>>;

/// What the main thread waits for.
enum Event {
    /// The reader saw the connection end.
    Ended(End),
    /// Stdin reached its end (or, with `-1`, its first line was sent).
    InputDone,
    /// With `-1`: the first message arrived and was printed.
    Replied,
    /// Stdin could not be read, or (text mode) a line was not UTF-8: nothing after it
    /// was sent. The message says which.
    BadInput(String),
    /// A send failed (the reader reports how the connection ended).
    SendFailed(String),
    /// Ctrl-C (or SIGTERM, SIGHUP).
    Interrupted,
}

/// Why we close the connection ourselves before exiting with a status of our own.
enum Abort {
    Interrupted,
    BadInput,
}

/// Where status lines, errors and messages go, and how they are dressed.
#[derive(Clone, Copy, Debug)]
struct Console {
    /// `-q`: no status lines.
    quiet: bool,
    /// Stdin is a terminal: the user may be halfway through a line.
    typing: bool,
    stdout_tty: bool,
    stderr_tty: bool,
}

impl Console {
    fn new(quiet: bool) -> Console {
        Console {
            quiet,
            typing: std::io::stdin().is_terminal(),
            stdout_tty: std::io::stdout().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
        }
    }

    /// What starts a line on a stream that is (`tty`) a terminal: a carriage return
    /// and an erase-line escape when the user may be typing, so the line does not run
    /// into the half-typed input; nothing otherwise.
    fn line_start(self, tty: bool) -> &'static str {
        if self.typing && tty { "\r\x1b[K" } else { "" }
    }

    /// A status line on stderr, unless `-q`.
    fn status(self, line: &str) {
        if !self.quiet {
            eprintln!("{}{line}", self.line_start(self.stderr_tty));
        }
    }

    /// An error on stderr, always.
    fn error(self, message: &str) {
        eprintln!(
            "{}hybi connect: {message}",
            self.line_start(self.stderr_tty)
        );
    }
}

/// How binary messages are written on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BinaryOutput {
    /// As they are, no separator (stdout is not a terminal).
    Raw,
    /// A line with the length and every byte in hex (`--hex`).
    Hex,
    /// A line with the length and the first bytes in hex (a terminal).
    Summary,
}

impl BinaryOutput {
    fn choose(hex: bool, stdout_tty: bool) -> BinaryOutput {
        match (hex, stdout_tty) {
            (true, _) => BinaryOutput::Hex,
            (false, true) => BinaryOutput::Summary,
            (false, false) => BinaryOutput::Raw,
        }
    }
}

/// A positive number of seconds from an option, or a usage error naming it.
fn option_seconds(name: &str, value: Option<f64>) -> Result<Option<Duration>, String> {
    match value.map(crate::seconds) {
        Some(None) => Err(format!("{name} needs a positive number of seconds")),
        Some(Some(d)) => Ok(Some(d)),
        None => Ok(None),
    }
}

pub(crate) fn run(args: &ConnectArgs) -> Exit {
    let console = Console::new(args.quiet);
    let deflate = (!args.no_deflate).then(hybi_std::hybi::deflate::DeflateConfig::default);
    let mut builder =
        ClientBuilder::new(&args.url).config(hybi_std::default_config().with_deflate(deflate));
    match crate::tls::client_config("connect", args.tls.ca.as_deref(), args.tls.insecure) {
        Ok(Some(config)) => builder = builder.tls_config(config),
        Ok(None) => {}
        Err(e) => {
            console.error(&e.to_string());
            return Exit::Usage;
        }
    }
    for p in &args.protocols {
        builder = builder.protocol(p);
    }
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            console.error(&format!("--header needs 'Name: value', got {h:?}"));
            return Exit::Usage;
        };
        builder = builder.header(name.trim(), value.trim());
    }
    let (ping, connect_timeout) = match (
        option_seconds("--ping", args.ping),
        option_seconds("--connect-timeout", args.connect_timeout),
    ) {
        (Ok(ping), Ok(timeout)) => (ping, timeout),
        (Err(why), _) | (_, Err(why)) => {
            console.error(&why);
            return Exit::Usage;
        }
    };
    if let Some(timeout) = connect_timeout {
        builder = builder.connect_timeout(timeout).handshake_timeout(timeout);
    }

    // Ctrl-C is caught from the start: while connecting there is nothing to close and
    // the process exits at once; once connected it closes the connection first.
    let (events, inbox) = mpsc::channel();
    let connected = Arc::new(AtomicBool::new(false));
    {
        let events = events.clone();
        let connected = Arc::clone(&connected);
        if let Err(e) = ctrlc::set_handler(move || {
            if !connected.load(Ordering::SeqCst) || events.send(Event::Interrupted).is_err() {
                std::process::exit(Exit::Interrupted as i32);
            }
        }) {
            console.error(&format!("cannot catch Ctrl-C: {e}"));
        }
    }

    let (ws, response) = match open(builder, &args.url, connect_timeout) {
        Ok(pair) => pair,
        Err((message, exit)) => {
            console.error(&message);
            return exit;
        }
    };
    let (mut reader, writer) = match ws.split() {
        Ok(halves) => halves,
        Err(e) => {
            console.error(&e.to_string());
            return Exit::Abnormal;
        }
    };
    connected.store(true, Ordering::SeqCst);
    // From here on Ctrl-C closes the connection.
    match response.protocol() {
        Some(p) => console.status(&format!("connected to {} (subprotocol {p})", args.url)),
        None => console.status(&format!("connected to {}", args.url)),
    }

    // Set once the connection is over: stdin lines and pings are no longer sent.
    let finished = Arc::new(AtomicBool::new(false));
    let who_closed = WhoClosed::default();
    let pings = Arc::new(Mutex::new(VecDeque::<(u64, Instant)>::new()));
    {
        let events = events.clone();
        let finished = Arc::clone(&finished);
        let who_closed = Arc::clone(&who_closed);
        let pings = Arc::clone(&pings);
        let binary_output = BinaryOutput::choose(args.hex, console.stdout_tty);
        let one_message = args.one_message;
        std::thread::spawn(move || {
            let stdout = std::io::stdout();
            let mut replied = false;
            let end = loop {
                let message = reader.read();
                let mut out = stdout.lock();
                let data = matches!(message, Ok(Message::Text(_) | Message::Binary(_)));
                if data && one_message && replied {
                    // -1: one reply is printed; the close is on its way.
                    continue;
                }
                match message {
                    Ok(Message::Text(t)) => {
                        let _ = writeln!(out, "{}{t}", console.line_start(console.stdout_tty));
                    }
                    Ok(Message::Binary(b)) => {
                        let _ = match binary_output {
                            BinaryOutput::Raw => out.write_all(&b),
                            BinaryOutput::Hex => writeln!(
                                out,
                                "{}{}",
                                console.line_start(console.stdout_tty),
                                describe_binary(&b, usize::MAX)
                            ),
                            BinaryOutput::Summary => writeln!(
                                out,
                                "{}{}",
                                console.line_start(console.stdout_tty),
                                describe_binary(&b, 32)
                            ),
                        };
                    }
                    Ok(Message::Pong(p)) => match round_trip(&pings, &p) {
                        Some(rtt) => console.status(&format!("pong: {}", format_rtt(rtt))),
                        None => console.status(&format!("pong ({} bytes)", p.len())),
                    },
                    Ok(Message::Close(info)) => {
                        lock(&who_closed).get_or_insert(Closer::Server);
                        break End::PeerClosed(info.code, info.reason);
                    }
                    Ok(_) => {}
                    Err(Error::ConnectionClosed) => break End::Closed,
                    Err(e) => break End::Failed(e.to_string()),
                }
                let _ = out.flush();
                if data && one_message {
                    replied = true;
                    let _ = events.send(Event::Replied);
                }
            };
            finished.store(true, Ordering::SeqCst);
            let _ = stdout.lock().flush();
            let _ = events.send(Event::Ended(end));
        });
    }

    if let Some(interval) = ping {
        let writer = writer.clone();
        let finished = Arc::clone(&finished);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !finished.load(Ordering::SeqCst) {
                std::thread::sleep(interval);
                n += 1;
                {
                    let mut pending = lock(&pings);
                    if pending.len() == PINGS_KEPT {
                        pending.pop_front();
                    }
                    pending.push_back((n, Instant::now()));
                }
                if writer.ping(&n.to_be_bytes()).is_err() {
                    return;
                }
            }
        });
    }

    {
        let writer = writer.clone();
        let binary = args.binary;
        let one = args.one_message;
        let finished = Arc::clone(&finished);
        std::thread::spawn(move || {
            let event = send_lines(std::io::stdin().lock(), &writer, binary, one, &finished);
            let _ = events.send(event);
        });
    }

    // The process ends when this returns, whatever the other threads are doing (one
    // blocked reading stdin does not keep it alive).
    let close_at_eof = !args.no_close && !args.one_message;
    supervise(&inbox, &writer, &who_closed, close_at_eof, console)
}

/// Opens the connection; with a `timeout`, gives up after it whatever the stage (the
/// name lookup is not bounded by the socket's timeouts, so the attempt runs on a
/// thread of its own that is left behind when it takes too long).
fn open(
    builder: ClientBuilder,
    url: &str,
    timeout: Option<Duration>,
) -> Result<(WebSocket<MaybeTls>, Response), (String, Exit)> {
    let Some(timeout) = timeout else {
        return builder.connect().map_err(|e| client_error(url, &e));
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(builder.connect());
    });
    let timed_out = || {
        (
            format!(
                "timed out: {url} did not open within {} s (--connect-timeout: name \
                 lookup, TCP connect, TLS and WebSocket handshake)",
                timeout.as_secs_f64()
            ),
            Exit::Network,
        )
    };
    match rx.recv_timeout(timeout) {
        Ok(Ok(pair)) => Ok(pair),
        Ok(Err(e)) if is_timeout(&e) => Err(timed_out()),
        Ok(Err(e)) => Err(client_error(url, &e)),
        Err(_) => Err(timed_out()),
    }
}

/// True for the errors of a connect or handshake that ran out of time.
fn is_timeout(e: &Error) -> bool {
    match e {
        Error::Connect(io) => io.kind() == std::io::ErrorKind::TimedOut,
        Error::Handshake(hybi_std::HandshakeError::Timeout) => true,
        _ => false,
    }
}

/// The round trip of the ping a pong answers (its payload is the ping's number), if
/// it is one of ours; forgets that ping and every older one.
fn round_trip(pings: &Mutex<VecDeque<(u64, Instant)>>, payload: &[u8]) -> Option<Duration> {
    let n = u64::from_be_bytes(payload.try_into().ok()?);
    let mut pending = lock(pings);
    let sent = pending
        .iter()
        .find(|&&(id, _)| id == n)
        .map(|&(_, at)| at)?;
    pending.retain(|&(id, _)| id > n);
    Some(sent.elapsed())
}

/// A round-trip time in milliseconds, two decimals ("0.42 ms").
fn format_rtt(rtt: Duration) -> String {
    format!("{:.2} ms", rtt.as_secs_f64() * 1e3)
}

/// Locks a mutex, also one a panicking thread left poisoned (the data is plain).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends each line of `input` as a message until its end (or, with `one`, its first
/// line), a bad line, a failed send or the end of the connection; returns what stopped
/// it. In binary mode a line's raw bytes are sent; in text mode a line that is not
/// UTF-8 stops the input.
fn send_lines(
    mut input: impl BufRead,
    writer: &Writer<MaybeTls>,
    binary: bool,
    one: bool,
    finished: &AtomicBool,
) -> Event {
    let mut line = Vec::new();
    for number in 1u64.. {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Event::BadInput(format!("cannot read stdin: {e}")),
        }
        if finished.load(Ordering::SeqCst) {
            break;
        }
        let content = strip_line_end(&line);
        let sent = if binary {
            writer.send_binary(content)
        } else {
            match std::str::from_utf8(content) {
                Ok(text) => writer.send_text(text),
                Err(e) => {
                    return Event::BadInput(format!(
                        "line {number} is not valid UTF-8 ({e}); text messages must be \
                         UTF-8 (--binary sends raw bytes)"
                    ));
                }
            }
        };
        if let Err(e) = sent {
            return Event::SendFailed(e.to_string());
        }
        if one {
            break;
        }
    }
    Event::InputDone
}

/// A line without its end (`\n`, `\r\n`, any trailing run of them).
fn strip_line_end(line: &[u8]) -> &[u8] {
    let keep = line
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |i| i + 1);
    &line[..keep]
}

/// Waits for the connection to end and decides the exit status: on the end of input
/// (unless `close_at_eof` is false), the reply of `-1` or a failed send it closes with
/// 1000 and waits for the closing handshake (the engine's close timeout bounds it); on
/// Ctrl-C (1001) or bad input (1000) it closes, waits at most [`CLOSE_WAIT`] for the
/// answer, and exits with a status of its own.
fn supervise(
    inbox: &mpsc::Receiver<Event>,
    writer: &Writer<MaybeTls>,
    who_closed: &WhoClosed,
    close_at_eof: bool,
    console: Console,
) -> Exit {
    let mut closing = false;
    loop {
        let Ok(event) = inbox.recv() else {
            console.error("the reader stopped unexpectedly");
            return Exit::Abnormal;
        };
        match event {
            Event::Ended(end) => return finish(end, lock(who_closed).as_ref(), console),
            Event::InputDone if !close_at_eof => continue,
            Event::InputDone | Event::Replied => {}
            // A line refused because our close is under way (-1 with a server that
            // spoke first) is no error.
            Event::SendFailed(_) if closing => {}
            Event::SendFailed(why) => console.error(&format!("send failed: {why}")),
            Event::BadInput(why) => {
                console.error(&why);
                return abort(inbox, writer, who_closed, Abort::BadInput, console);
            }
            Event::Interrupted => {
                return abort(inbox, writer, who_closed, Abort::Interrupted, console);
            }
        }
        if !closing {
            closing = true;
            close_in_background(writer, CloseCode::NORMAL, who_closed);
        }
    }
}

/// Closes the connection (1001 on Ctrl-C, 1000 on bad input), waits at most
/// [`CLOSE_WAIT`] for the server's answer (a second Ctrl-C stops waiting), and returns
/// the status for `why`.
fn abort(
    inbox: &mpsc::Receiver<Event>,
    writer: &Writer<MaybeTls>,
    who_closed: &WhoClosed,
    why: Abort,
    console: Console,
) -> Exit {
    let (code, exit) = match why {
        Abort::Interrupted => (CloseCode::GOING_AWAY, Exit::Interrupted),
        Abort::BadInput => (CloseCode::NORMAL, Exit::BadInput),
    };
    if matches!(why, Abort::Interrupted) {
        console.status(&format!(
            "interrupted, closing with {}",
            describe_close(code)
        ));
    }
    close_in_background(writer, code, who_closed);
    let until = Instant::now() + CLOSE_WAIT;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(left) {
            Ok(Event::Ended(end @ (End::PeerClosed(..) | End::Closed))) => {
                let _ = finish(end, lock(who_closed).as_ref(), console);
                return exit;
            }
            Ok(Event::Ended(End::Failed(e))) => {
                console.error(&format!(
                    "the connection failed while closing (closed by us: {}): {e}",
                    describe_close(code)
                ));
                return exit;
            }
            Ok(Event::Interrupted) => return exit,
            Ok(_) => {}
            Err(_) => {
                console.error(&format!(
                    "no answer to the close within {} s (closed by us: {})",
                    CLOSE_WAIT.as_secs(),
                    describe_close(code)
                ));
                return exit;
            }
        }
    }
}

/// Starts the closing handshake from another thread: a send blocked on a server that
/// stopped reading holds the connection, and waiting for the end (or a Ctrl-C) must not
/// depend on it. A close already started (by us or the server) is left as it is.
///
/// `who_closed` is held while the close frame is queued, so the reader, which takes it
/// when the server's close frame arrives, sees who was first.
fn close_in_background(writer: &Writer<MaybeTls>, code: CloseCode, who_closed: &WhoClosed) {
    let writer = writer.clone();
    let who_closed = Arc::clone(who_closed);
    std::thread::spawn(move || {
        let mut who = lock(&who_closed);
        if who.is_none() && writer.close(code, "").is_ok() {
            *who = Some(Closer::Us(code));
        }
    });
}

/// Reports how the connection ended, and who closed it, and returns the status: 0 for
/// a closing handshake that ended with 1000 or 1001 from the server.
fn finish(end: End, who: Option<&Closer>, console: Console) -> Exit {
    match end {
        End::PeerClosed(code, reason) => {
            match who {
                Some(Closer::Us(ours)) => console.status(&format!(
                    "closed by us: {} (the server answered {})",
                    describe_close(*ours),
                    describe_close_with(code, &reason)
                )),
                _ => console.status(&format!(
                    "closed by the server: {}",
                    describe_close_with(code, &reason)
                )),
            }
            if code == CloseCode::NORMAL || code == CloseCode::GOING_AWAY {
                Exit::Ok
            } else {
                Exit::Abnormal
            }
        }
        End::Closed => {
            match who {
                Some(Closer::Us(ours)) => {
                    console.status(&format!("closed by us: {}", describe_close(*ours)));
                }
                _ => console.status("connection closed"),
            }
            Exit::Ok
        }
        End::Failed(why) => {
            let closing = match who {
                Some(Closer::Us(ours)) => {
                    format!(" after we closed with {}", describe_close(*ours))
                }
                _ => " (no close from either side)".to_owned(),
            };
            console.error(&format!("connection failed{closing}: {why}"));
            Exit::Abnormal
        }
    }
}

/// A close code with its name, e.g. "1001 going away".
fn describe_close(code: CloseCode) -> String {
    match close_name(code) {
        Some(name) => format!("{code} {name}"),
        None => code.to_string(),
    }
}

/// A close code with its name and the reason, if any: "1003 unsupported data: why".
fn describe_close_with(code: CloseCode, reason: &str) -> String {
    if reason.is_empty() {
        describe_close(code)
    } else {
        format!("{}: {reason}", describe_close(code))
    }
}

/// The name of a close code RFC 6455 or the IANA registry defines.
fn close_name(code: CloseCode) -> Option<&'static str> {
    Some(match code.as_u16() {
        1000 => "normal",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status",
        1006 => "abnormal",
        1007 => "invalid payload",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "mandatory extension",
        1011 => "internal error",
        1012 => "service restart",
        1013 => "try again later",
        1014 => "bad gateway",
        1015 => "TLS handshake",
        _ => return None,
    })
}

/// A binary message on one line: its length and at most `shown` bytes in hex.
fn describe_binary(data: &[u8], shown: usize) -> String {
    let hex: String = data
        .iter()
        .take(shown)
        .map(|b| format!("{b:02x}"))
        .collect();
    let more = if data.len() > shown { "…" } else { "" };
    format!("[binary {} bytes] {hex}{more}", data.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_output_is_raw_on_a_pipe_hex_on_a_terminal_or_asked() {
        assert_eq!(BinaryOutput::choose(false, false), BinaryOutput::Raw);
        assert_eq!(BinaryOutput::choose(false, true), BinaryOutput::Summary);
        assert_eq!(BinaryOutput::choose(true, false), BinaryOutput::Hex);
        let long = [0xabu8; 40];
        assert_eq!(
            describe_binary(&long, 32),
            format!("[binary 40 bytes] {}…", "ab".repeat(32))
        );
        assert_eq!(
            describe_binary(&long, usize::MAX),
            format!("[binary 40 bytes] {}", "ab".repeat(40))
        );
    }

    #[test]
    fn lines_clear_the_half_typed_input_only_on_a_terminal() {
        let console = |typing| Console {
            quiet: false,
            typing,
            stdout_tty: true,
            stderr_tty: true,
        };
        assert_eq!(console(true).line_start(true), "\r\x1b[K");
        assert_eq!(console(true).line_start(false), "");
        assert_eq!(console(false).line_start(true), "");
    }

    #[test]
    fn close_codes_are_named_and_pongs_matched_to_their_pings() {
        assert_eq!(describe_close(CloseCode::GOING_AWAY), "1001 going away");
        assert_eq!(describe_close(CloseCode(4000)), "4000");
        assert_eq!(
            describe_close_with(CloseCode::UNSUPPORTED_DATA, "text only"),
            "1003 unsupported data: text only"
        );
        let pings = Mutex::new(VecDeque::from([(1, Instant::now()), (2, Instant::now())]));
        assert_eq!(round_trip(&pings, b"short"), None);
        assert_eq!(round_trip(&pings, &7u64.to_be_bytes()), None);
        assert!(round_trip(&pings, &2u64.to_be_bytes()).is_some());
        assert!(lock(&pings).is_empty(), "ping 1 is forgotten with 2");
        assert_eq!(format_rtt(Duration::from_micros(420)), "0.42 ms");
    }
}
