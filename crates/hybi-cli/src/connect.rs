//! `hybi connect`: an interactive client. Each stdin line is sent as a message; each
//! message received is printed on stdout; status goes to stderr.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hybi_std::{ClientBuilder, CloseCode, Error, Message};

use crate::ConnectArgs;
use crate::exit::{Exit, client_error};

/// How the connection ended, as the reader saw it.
enum End {
    /// The peer sent a close frame.
    PeerClosed(CloseCode, String),
    /// The closing handshake we started completed.
    Closed,
    /// It failed.
    Failed(String),
}

pub(crate) fn run(args: &ConnectArgs) -> Exit {
    let mut builder = ClientBuilder::new(&args.url);
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
    let (ws, response) = match builder.connect() {
        Ok(pair) => pair,
        Err(e) => {
            let (message, exit) = client_error(&args.url, &e);
            eprintln!("hybi connect: {message}");
            return exit;
        }
    };
    match response.protocol() {
        Some(p) => eprintln!("connected to {} (subprotocol {p})", args.url),
        None => eprintln!("connected to {}", args.url),
    }
    let (mut reader, writer) = match ws.split() {
        Ok(halves) => halves,
        Err(e) => {
            eprintln!("hybi connect: {e}");
            return Exit::Abnormal;
        }
    };

    let finished = Arc::new(AtomicBool::new(false));
    let reader_done = Arc::clone(&finished);
    let reader_thread = std::thread::spawn(move || -> () {
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
        reader_done.store(true, Ordering::SeqCst);
        let _ = stdout.lock().flush();
        // The connection is over: stop now, even if stdin is still open.
        std::process::exit(finish(end) as i32);
    });

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

    // stdin → messages, until EOF or the connection ends.
    let stdin = std::io::stdin();
    let mut line = String::new();
    let mut lock = stdin.lock();
    loop {
        line.clear();
        match lock.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if finished.load(Ordering::SeqCst) {
            break;
        }
        let text = line.trim_end_matches(['\n', '\r']);
        let sent = if args.binary {
            writer.send_binary(text.as_bytes())
        } else {
            writer.send_text(text)
        };
        if let Err(e) = sent {
            eprintln!("hybi connect: send failed: {e}");
            break;
        }
    }
    if !finished.load(Ordering::SeqCst) {
        let _ = writer.close(CloseCode::NORMAL, "");
    }
    // The reader ends the process when the closing handshake completes (or fails).
    let _ = reader_thread.join();
    eprintln!("hybi connect: the reader stopped unexpectedly");
    Exit::Abnormal
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
