//! The raw TCP echo ceiling: answers the WebSocket handshake (with `hybi::handshake`),
//! then writes every byte back as it came, on one mio thread (edge-triggered, one
//! 64 KiB read buffer shared by all connections, a write after every read; write
//! readiness is asked for only while output is pending, as hybi-mio does, so the
//! peer's ACKs do not wake the loop).
//!
//! The client's frames come back masked, so measure it with
//! `hybi load --accept-masked`. It follows frame boundaries (headers only, a few
//! instructions per frame) for one reason: once it has echoed a close frame it shuts
//! its side down, as a WebSocket server would, so the client's close finishes at once.
//!
//! Usage: `echo-raw [ADDR]` (default 127.0.0.1:9002).

use std::io::{self, Read, Write};
use std::net::Shutdown;

use hybi::handshake::ServerHandshake;
use hybi_echo_bench::{frame_extent, listen_addr};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

/// Follows frame boundaries in the echoed byte stream.
#[derive(Default)]
struct Frames {
    /// Bytes of the current frame still to pass.
    skip: usize,
    /// A frame header split across reads.
    header: Vec<u8>,
    /// A close frame went by.
    closed: bool,
}

impl Frames {
    fn scan(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.closed {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let (opcode, total, from_header) = if self.header.is_empty() {
                match frame_extent(data) {
                    Some((op, total)) => (op, total, 0),
                    None => {
                        self.header.extend_from_slice(data);
                        return;
                    }
                }
            } else {
                let had = self.header.len();
                let take = data.len().min(14 - had);
                self.header.extend_from_slice(&data[..take]);
                match frame_extent(&self.header) {
                    Some((op, total)) => {
                        self.header.clear();
                        (op, total, had)
                    }
                    None if take == data.len() => return,
                    None => {
                        // 14 header bytes always suffice.
                        self.closed = true;
                        return;
                    }
                }
            };
            if opcode == 0x8 {
                self.closed = true;
            }
            // `total` counts from the frame's first byte, `from_header` of which
            // arrived in earlier reads.
            self.skip = total - from_header;
        }
    }
}

struct Conn {
    stream: TcpStream,
    handshake: Option<ServerHandshake>,
    frames: Frames,
    /// Output the socket did not take yet (reading stops until it has).
    out: Vec<u8>,
    shut: bool,
    /// Registered for write readiness.
    wants_write: bool,
}

enum Status {
    Open,
    Done,
}

fn write_some(stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match stream.write(&data[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

impl Conn {
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if self.out.is_empty() {
            let n = write_some(&mut self.stream, data)?;
            self.out.extend_from_slice(&data[n..]);
        } else {
            self.out.extend_from_slice(data);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let n = write_some(&mut self.stream, &self.out)?;
            self.out.drain(..n);
        }
        if self.out.is_empty() && self.frames.closed && !self.shut {
            self.shut = true;
            let _ = self.stream.shutdown(Shutdown::Write);
        }
        Ok(())
    }

    fn drive(&mut self, buf: &mut [u8]) -> io::Result<Status> {
        self.flush()?;
        loop {
            if !self.out.is_empty() {
                // Backpressure: wait for WRITABLE before reading more.
                return Ok(Status::Open);
            }
            let n = match self.stream.read(buf) {
                Ok(0) => return Ok(Status::Done),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Status::Open),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let data = &buf[..n];
            if self.shut {
                continue; // draining after our close
            }
            match self.handshake.as_mut() {
                None => {
                    self.frames.scan(data);
                    self.send(data)?;
                }
                Some(hs) => match hs.receive(data) {
                    Ok(None) => {}
                    Ok(Some(request)) => {
                        self.handshake = None;
                        let accepted = request
                            .accept(None, &[])
                            .map_err(|e| io::Error::other(e.to_string()))?;
                        let mut reply = accepted.response().to_bytes();
                        let leftover = request.leftover();
                        self.frames.scan(leftover);
                        reply.extend_from_slice(leftover);
                        self.send(&reply)?;
                    }
                    Err(e) => {
                        let _ = self.stream.write(&e.response().to_bytes());
                        return Ok(Status::Done);
                    }
                },
            }
            self.flush()?;
        }
    }
}

fn main() -> io::Result<()> {
    let addr = listen_addr();
    let mut listener = TcpListener::bind(addr)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    eprintln!("raw echo on {addr}");
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let slot = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry().register(
                                &mut stream,
                                Token(slot),
                                Interest::READABLE,
                            )?;
                            conns[slot] = Some(Conn {
                                stream,
                                handshake: Some(ServerHandshake::new()),
                                frames: Frames::default(),
                                out: Vec::new(),
                                shut: false,
                                wants_write: false,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let slot = event.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            match conn.drive(&mut buf) {
                Ok(Status::Open) => {
                    let wants_write = !conn.out.is_empty();
                    if wants_write != conn.wants_write {
                        conn.wants_write = wants_write;
                        let interest = if wants_write {
                            Interest::READABLE | Interest::WRITABLE
                        } else {
                            Interest::READABLE
                        };
                        poll.registry()
                            .reregister(&mut conn.stream, event.token(), interest)?;
                    }
                }
                Ok(Status::Done) | Err(_) => {
                    if let Some(mut c) = conns[slot].take() {
                        let _ = poll.registry().deregister(&mut c.stream);
                    }
                    free.push(slot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Frames;

    #[test]
    fn finds_a_close_frame_in_any_split() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&[0x82, 0x83, 1, 2, 3, 4, 9, 9, 9]);
        stream.extend_from_slice(&[0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4]);
        stream.extend_from_slice(&[7u8; 256]);
        stream.extend_from_slice(&hybi_echo_bench::CLOSE_FRAME);
        let close_at = stream.len() - hybi_echo_bench::CLOSE_FRAME.len();
        for piece in [1, 2, 3, 5, 7, 64, 1000] {
            let mut f = Frames::default();
            for chunk in stream[..close_at].chunks(piece) {
                f.scan(chunk);
            }
            assert!(!f.closed, "closed early (piece {piece})");
            for chunk in stream[close_at..].chunks(piece) {
                f.scan(chunk);
            }
            assert!(f.closed, "piece {piece}");
        }
    }
}
