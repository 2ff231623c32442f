//! An echo server over `std::net` driven by the engine's documented contract alone (the
//! handshake, then `Connection::next`): `cargo run -p hybi --example echo-tcp -- ADDR`.
use hybi::handshake::ServerHandshake;
use hybi::{Config, Event, Instant, Next};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant as StdInstant};

fn serve(mut tcp: TcpStream) -> io::Result<()> {
    let mut handshake = ServerHandshake::new();
    let mut buf = [0u8; 4096];
    let request = loop {
        let n = tcp.read(&mut buf)?;
        match handshake.receive(&buf[..n]) {
            Ok(Some(request)) => break request,
            Ok(None) if n > 0 => {}
            Ok(None) => return Ok(()), // the client left mid-request
            Err(e) => return tcp.write_all(&e.response().to_bytes()),
        }
    };
    let accepted = request.accept(None, &[]).map_err(io::Error::other)?;
    tcp.write_all(&accepted.response().to_bytes())?;
    let mut ws = accepted.into_connection(Config::default());
    loop {
        match ws.next() {
            Next::Event(Event::Text(text), mut out) => drop(out.send_text(text)),
            Next::Event(Event::Binary(data), mut out) => drop(out.send_binary(data)),
            Next::Event(_, _) => {} // pings are answered by the engine
            Next::Write(output) => drop(output.write_to(&mut tcp)?),
            Next::Wait(deadline) => {
                // Block until input arrives or the engine's next timer is due.
                let left = |d: Instant| d.to_std().saturating_duration_since(StdInstant::now());
                tcp.set_read_timeout(deadline.map(|d| left(d).max(Duration::from_millis(1))))?;
                if let Err(e) = ws.read_from(&mut tcp) {
                    if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                        return Err(e);
                    }
                }
                ws.handle_timeout(Instant::now());
            }
            Next::Close(closed) => {
                println!("closed: {} (error: {:?})", closed.code(), closed.error);
                return Ok(()); // dropping the stream closes it
            }
        }
    }
}

fn main() -> io::Result<()> {
    let listener = TcpListener::bind(std::env::args().nth(1).unwrap_or("127.0.0.1:9004".into()))?;
    println!("echoing on ws://{}", listener.local_addr()?);
    for tcp in listener.incoming() {
        match tcp {
            Ok(tcp) => drop(std::thread::spawn(move || serve(tcp))),
            Err(_) => std::thread::sleep(Duration::from_millis(100)), // no descriptors: back off
        }
    }
    Ok(())
}
