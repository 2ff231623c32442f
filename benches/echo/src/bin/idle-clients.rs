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
//! Usage: `idle-clients ADDR PATH N [--echo] [--tls]` or
//! `idle-clients ws[s]://ADDR/PATH N [--echo]`.

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

fn open(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    request: &[u8],
    accept: &str,
    echo: bool,
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
    buf.drain(..head);
    if echo {
        let key = [1u8, 2, 3, 4];
        let mut frame = vec![0x82, 0x80 | 16, key[0], key[1], key[2], key[3]];
        frame.extend((0..16u8).map(|i| i ^ key[usize::from(i) % 4]));
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
    let args: Vec<String> = args.into_iter().filter(|a| a != "--echo").collect();
    let usage = || -> ! {
        eprintln!(
            "usage: idle-clients ADDR PATH N [--echo] [--tls]\n       \
             idle-clients ws[s]://ADDR/PATH N [--echo]"
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
    let (request, accept) = upgrade_request(&addr.to_string(), &path);
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        match open(addr, tls.as_ref(), &request, &accept, echo) {
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
