//! Opens N WebSocket connections and holds them, idle, until its standard input
//! closes: for measuring a server's memory per idle connection.
//!
//! Each connection completes the handshake (the 101 is checked); with `--echo` it
//! also sends one 16-byte binary message and waits for its echo, so a server that
//! allocates its buffers lazily has allocated them. Prints `ready N` on standard
//! output once all are open.
//!
//! Usage: `idle-clients ADDR PATH N [--echo]`.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};

use hybi_echo_bench::{check_101, frame_extent, head_len, upgrade_request};

fn open(addr: SocketAddr, request: &[u8], accept: &str, echo: bool) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.write_all(request)?;
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
    let (Some(addr), Some(path), Some(n)) = (
        args.first().and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: idle-clients ADDR PATH N [--echo]");
        std::process::exit(2);
    };
    let echo = args.iter().any(|a| a == "--echo");
    let (request, accept) = upgrade_request(&addr.to_string(), path);
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        match open(addr, &request, &accept, echo) {
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
