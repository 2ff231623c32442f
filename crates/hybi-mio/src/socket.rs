//! A connection's socket and what its readiness says ([`Io`]), and bytes that go out
//! before anything else ([`Unsent`]: an HTTP answer, a request, the 101).

use std::io::{self, Read as _, Write};

use mio::net::TcpStream;

/// The socket and the readiness the loop reported and the connection has not used up
/// yet (readiness is edge-triggered: it comes once, until a `WouldBlock`).
pub(crate) struct Io {
    pub(crate) socket: TcpStream,
    /// Input may be waiting.
    pub(crate) readable: bool,
    /// The socket may take output (a client's connect may have completed).
    pub(crate) writable: bool,
}

/// One non-blocking read.
pub(crate) enum Read {
    /// This many bytes arrived.
    Data(usize),
    /// Nothing more for now: the readiness is used up.
    Drained,
    /// End of input: the peer half-closed, or closed.
    End,
    /// The socket failed.
    Failed(io::Error),
}

impl Io {
    pub(crate) fn new(socket: TcpStream) -> Io {
        Io {
            socket,
            readable: false,
            writable: false,
        }
    }

    /// Reads into `buf`, retrying interrupted reads; anything but data uses up the
    /// readiness.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Read {
        let result = loop {
            match self.socket.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => break result,
            }
        };
        let read = match result {
            Ok(0) => Read::End,
            Ok(n) => return Read::Data(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Drained,
            Err(e) => Read::Failed(e),
        };
        self.readable = false;
        read
    }

    /// Reads and drops what the peer sends until there is nothing more for now (or
    /// the input ends, or the socket fails: the result says which).
    pub(crate) fn discard_input(&mut self) -> Read {
        let mut scratch = [0u8; 4096];
        loop {
            match self.read(&mut scratch) {
                Read::Data(_) => {}
                other => return other,
            }
        }
    }
}

/// Bytes to write before anything else, and how far writing them has got.
#[derive(Default)]
pub(crate) struct Unsent {
    bytes: Vec<u8>,
    at: usize,
}

impl Unsent {
    pub(crate) fn new(bytes: Vec<u8>) -> Unsent {
        Unsent { bytes, at: 0 }
    }

    /// True once every byte is written.
    pub(crate) fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// Writes what is left: `Ok(true)` once it is all written (the bytes are then
    /// freed), `Ok(false)` if the socket takes no more for now.
    pub(crate) fn write_to(&mut self, socket: &mut impl Write) -> io::Result<bool> {
        while !self.is_done() {
            match socket.write(&self.bytes[self.at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.bytes.is_empty() {
            *self = Unsent::default();
        }
        Ok(true)
    }
}
