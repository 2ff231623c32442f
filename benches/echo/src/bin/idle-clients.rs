//! Opens N WebSocket connections and holds them, idle, until its standard input
//! closes: for measuring a server's memory per idle connection.
//!
//! Each connection completes the handshake (the 101 is checked); with `--echo` it
//! also sends one 16-byte binary message and waits for its echo, so a server that
//! allocates its buffers lazily has allocated them. Prints `ready N` on standard
//! output once all are open.
//!
//! Over TLS (`--tls`, or a `wss://` URL) each connection first completes a TLS
//! handshake (rustls, the server's certificate not verified: see
//! `hybi_echo_bench::tls`).
//!
//! With `--deflate` each connection offers permessage-deflate (as `hybi load
//! --deflate` does) and the server must agree; its `--echo` message is then 1 KiB of
//! text sent compressed (RSV1, a stored deflate block: any inflater reads it), so
//! the server has inflated one message and compressed its echo, and holds whatever
//! compression state it keeps between messages.
//!
//! Usage: `idle-clients ADDR PATH N [--echo] [--tls] [--deflate]` or
//! `idle-clients ws[s]://ADDR/PATH N [--echo] [--deflate]`.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use hybi_echo_bench::{check_101, frame_extent, head_len, parse_target, tls, upgrade_request};

/// A held connection: plain TCP or TLS over it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// A masked text frame of 1 KiB with RSV1 set whose payload is one non-final stored
/// deflate block (RFC 1951 3.2.4): a compressed message by RFC 7692's rules (the
/// receiver appends the `00 00 ff ff` that ends the block sequence).
fn deflated_text_frame() -> Vec<u8> {
    let text: Vec<u8> = (0..1024u32).map(|i| b'a' + (i % 26) as u8).collect();
    let len = text.len() as u16;
    let mut payload = vec![0x00];
    payload.extend_from_slice(&len.to_le_bytes());
    payload.extend_from_slice(&(!len).to_le_bytes());
    payload.extend_from_slice(&text);
    let key = [1u8, 2, 3, 4];
    let mut frame = vec![0xc1, 0x80 | 126];
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

fn open(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    request: &[u8],
    accept: &str,
    echo: bool,
    deflate: bool,
) -> io::Result<Conn> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    let mut stream = match tls {
        None => Conn::Plain(tcp),
        Some(config) => {
            let session = rustls::ClientConnection::new(Arc::clone(config), tls::server_name(addr))
                .map_err(io::Error::other)?;
            Conn::Tls(Box::new(rustls::StreamOwned::new(session, tcp)))
        }
    };
    stream.write_all(request)?;
    stream.flush()?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let head = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("closed during the handshake"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(len) = head_len(&buf) {
            break len;
        }
    };
    check_101(&buf[..head], accept).map_err(io::Error::other)?;
    if deflate {
        let agreed = String::from_utf8_lossy(&buf[..head]).lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("sec-websocket-extensions")
                    && v.contains("permessage-deflate")
            })
        });
        if !agreed {
            return Err(io::Error::other("permessage-deflate offered, not agreed"));
        }
    }
    buf.drain(..head);
    if echo {
        let frame = if deflate {
            deflated_text_frame()
        } else {
            let key = [1u8, 2, 3, 4];
            let mut frame = vec![0x82, 0x80 | 16, key[0], key[1], key[2], key[3]];
            frame.extend((0..16u8).map(|i| i ^ key[usize::from(i) % 4]));
            frame
        };
        stream.write_all(&frame)?;
        stream.flush()?;
        loop {
            if let Some((_, total)) = frame_extent(&buf)
                && buf.len() >= total
            {
                break;
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::other("closed before the echo"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(stream)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let echo = args.iter().any(|a| a == "--echo");
    let deflate = args.iter().any(|a| a == "--deflate");
    let args: Vec<String> = args
        .into_iter()
        .filter(|a| a != "--echo" && a != "--deflate")
        .collect();
    let usage = || -> ! {
        eprintln!(
            "usage: idle-clients ADDR PATH N [--echo] [--tls] [--deflate]\n       \
             idle-clients ws[s]://ADDR/PATH N [--echo] [--deflate]"
        );
        std::process::exit(2);
    };
    let Some((target, mut rest)) = parse_target(&args) else {
        usage()
    };
    let path = match target.path {
        Some(p) => p,
        None if rest.is_empty() => usage(),
        None => rest.remove(0),
    };
    let Some(n) = rest.first().and_then(|n| n.parse::<usize>().ok()) else {
        usage()
    };
    let addr = target.addr;
    let tls = target.tls.then(tls::insecure_client);
    let (mut request, accept) = upgrade_request(&addr.to_string(), &path);
    if deflate {
        // Before the blank line that ends the head.
        request.truncate(request.len() - 2);
        request.extend_from_slice(
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        );
    }
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        match open(addr, tls.as_ref(), &request, &accept, echo, deflate) {
            Ok(s) => held.push(s),
            Err(e) => {
                eprintln!("idle-clients: connection {i} failed: {e}");
                std::process::exit(1);
            }
        }
    }
    println!("ready {}", held.len());
    io::stdout().flush()?;
    // Hold until our standard input closes.
    let mut line = String::new();
    while io::stdin().lock().read_line(&mut line)? > 0 {
        line.clear();
    }
    drop(held);
    Ok(())
}
