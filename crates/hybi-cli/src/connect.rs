//! `hybi connect`: an interactive client. Each stdin line is sent as a message; each
//! message received is printed on stdout; status goes to stderr.
//!
//! Every way out closes the connection first: the end of stdin with 1000 (then the
//! closing handshake, bounded by the engine's close timeout), Ctrl-C with 1001 and a
//! line that cannot be sent (not UTF-8 in text mode, or stdin unreadable) with 1000,
//! each waiting at most 2 s for the server's answer before exiting with its own status
//! (see `hybi --help`).

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use hybi_std::{ClientBuilder, CloseCode, Error, Message, Writer};

use crate::ConnectArgs;
use crate::exit::{Exit, client_error};

/// How long a close we start on Ctrl-C or bad input waits for the server's answer.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How the connection ended, as the reader saw it.
enum End {
    /// The peer sent a close frame.
    PeerClosed(CloseCode, String),
    /// The closing handshake we started completed.
    Closed,
    /// It failed.
    Failed(String),
}

/// What the main thread waits for.
enum Event {
    /// The reader saw the connection end.
    Ended(End),
    /// Stdin reached its end; every line was sent.
    InputDone,
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

pub(crate) fn run(args: &ConnectArgs) -> Exit {
    let deflate = (!args.no_deflate).then(hybi_std::hybi::deflate::DeflateConfig::default);
    let mut builder =
        ClientBuilder::new(&args.url).config(hybi_std::default_config().with_deflate(deflate));
    match crate::tls::client_config("connect", args.tls.ca.as_deref(), args.tls.insecure) {
        Ok(Some(config)) => builder = builder.tls_config(config),
        Ok(None) => {}
        Err(e) => {
            eprintln!("hybi connect: {e}");
            return Exit::Usage;
        }
    }
    for p in &args.protocols {
        builder = builder.protocol(p);
    }
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            eprintln!("hybi connect: --header needs 'Name: value', got {h:?}");
            return Exit::Usage;
        };
        builder = builder.header(name.trim(), value.trim());
    }
    let ping = match args.ping.map(crate::seconds) {
        Some(None) => {
            eprintln!("hybi connect: --ping needs a positive number of seconds");
            return Exit::Usage;
        }
        Some(Some(d)) => Some(d),
        None => None,
    };

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
            eprintln!("hybi connect: cannot catch Ctrl-C: {e}");
        }
    }

    let (ws, response) = match builder.connect() {
        Ok(pair) => pair,
        Err(e) => {
            let (message, exit) = client_error(&args.url, &e);
            eprintln!("hybi connect: {message}");
            return exit;
        }
    };
    let (mut reader, writer) = match ws.split() {
        Ok(halves) => halves,
        Err(e) => {
            eprintln!("hybi connect: {e}");
            return Exit::Abnormal;
        }
    };
    connected.store(true, Ordering::SeqCst);
    // From here on Ctrl-C closes the connection.
    match response.protocol() {
        Some(p) => eprintln!("connected to {} (subprotocol {p})", args.url),
        None => eprintln!("connected to {}", args.url),
    }

    // Set once the connection is over: stdin lines and pings are no longer sent.
    let finished = Arc::new(AtomicBool::new(false));
    {
        let events = events.clone();
        let finished = Arc::clone(&finished);
        std::thread::spawn(move || {
            let stdout = std::io::stdout();
            let end = loop {
                let message = reader.read();
                let mut out = stdout.lock();
                match message {
                    Ok(Message::Text(t)) => {
                        let _ = writeln!(out, "{t}");
                    }
                    Ok(Message::Binary(b)) => {
                        let _ = writeln!(out, "{}", describe_binary(&b));
                    }
                    Ok(Message::Pong(p)) => eprintln!("pong ({} bytes)", p.len()),
                    Ok(Message::Close(info)) => break End::PeerClosed(info.code, info.reason),
                    Ok(_) => {}
                    Err(Error::ConnectionClosed) => break End::Closed,
                    Err(e) => break End::Failed(e.to_string()),
                }
                let _ = out.flush();
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
                if writer.ping(&n.to_be_bytes()).is_err() {
                    return;
                }
            }
        });
    }

    {
        let writer = writer.clone();
        let binary = args.binary;
        let finished = Arc::clone(&finished);
        std::thread::spawn(move || {
            let event = send_lines(std::io::stdin().lock(), &writer, binary, &finished);
            let _ = events.send(event);
        });
    }

    // The process ends when this returns, whatever the other threads are doing (one
    // blocked reading stdin does not keep it alive).
    supervise(&inbox, &writer)
}

/// Sends each line of `input` as a message until its end, a bad line, a failed send
/// or the end of the connection; returns what stopped it. In binary mode a line's raw
/// bytes are sent; in text mode a line that is not UTF-8 stops the input.
fn send_lines(
    mut input: impl BufRead,
    writer: &Writer<hybi_std::MaybeTls>,
    binary: bool,
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
/// (or a failed send) it closes with 1000 and waits for the closing handshake (the
/// engine's close timeout bounds it); on Ctrl-C (1001) or bad input (1000) it closes,
/// waits at most [`CLOSE_WAIT`] for the answer, and exits with a status of its own.
fn supervise(inbox: &mpsc::Receiver<Event>, writer: &Writer<hybi_std::MaybeTls>) -> Exit {
    let mut closing = false;
    loop {
        let Ok(event) = inbox.recv() else {
            eprintln!("hybi connect: the reader stopped unexpectedly");
            return Exit::Abnormal;
        };
        match event {
            Event::Ended(end) => return finish(end),
            Event::InputDone => {}
            Event::SendFailed(why) => eprintln!("hybi connect: send failed: {why}"),
            Event::BadInput(why) => {
                eprintln!("hybi connect: {why}");
                return abort(inbox, writer, Abort::BadInput);
            }
            Event::Interrupted => return abort(inbox, writer, Abort::Interrupted),
        }
        if !closing {
            closing = true;
            close_in_background(writer, CloseCode::NORMAL);
        }
    }
}

/// Closes the connection (1001 on Ctrl-C, 1000 on bad input), waits at most
/// [`CLOSE_WAIT`] for the server's answer (a second Ctrl-C stops waiting), and returns
/// the status for `why`.
fn abort(inbox: &mpsc::Receiver<Event>, writer: &Writer<hybi_std::MaybeTls>, why: Abort) -> Exit {
    let (code, exit) = match why {
        Abort::Interrupted => (CloseCode::GOING_AWAY, Exit::Interrupted),
        Abort::BadInput => (CloseCode::NORMAL, Exit::BadInput),
    };
    if matches!(why, Abort::Interrupted) {
        eprintln!("hybi connect: interrupted, closing with {code}");
    }
    close_in_background(writer, code);
    let until = Instant::now() + CLOSE_WAIT;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(left) {
            Ok(Event::Ended(End::PeerClosed(theirs, _))) => {
                eprintln!("closed: the server answered {theirs}");
                return exit;
            }
            Ok(Event::Ended(End::Closed)) => return exit,
            Ok(Event::Ended(End::Failed(e))) => {
                eprintln!("hybi connect: the connection failed while closing: {e}");
                return exit;
            }
            Ok(Event::Interrupted) => return exit,
            Ok(_) => {}
            Err(_) => {
                eprintln!(
                    "hybi connect: no answer to the close within {} s",
                    CLOSE_WAIT.as_secs()
                );
                return exit;
            }
        }
    }
}

/// Starts the closing handshake from another thread: a send blocked on a server that
/// stopped reading holds the connection, and waiting for the end (or a Ctrl-C) must not
/// depend on it. A close already started is left as it is.
fn close_in_background(writer: &Writer<hybi_std::MaybeTls>, code: CloseCode) {
    let writer = writer.clone();
    std::thread::spawn(move || {
        let _ = writer.close(code, "");
    });
}

fn finish(end: End) -> Exit {
    match end {
        End::PeerClosed(code, reason) => {
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!(" {reason}")
            };
            eprintln!("closed by the server: {code}{reason}");
            if code == CloseCode::NORMAL || code == CloseCode::GOING_AWAY {
                Exit::Ok
            } else {
                Exit::Abnormal
            }
        }
        End::Closed => Exit::Ok,
        End::Failed(why) => {
            eprintln!("connection failed: {why}");
            Exit::Abnormal
        }
    }
}

/// A binary message on one line: its length and the first bytes in hex.
fn describe_binary(data: &[u8]) -> String {
    const SHOWN: usize = 32;
    let hex: String = data
        .iter()
        .take(SHOWN)
        .map(|b| format!("{b:02x}"))
        .collect();
    let more = if data.len() > SHOWN { "…" } else { "" };
    format!("[binary {} bytes] {hex}{more}", data.len())
}
