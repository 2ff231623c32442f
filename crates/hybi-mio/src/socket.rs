//! A connection's transport and what its readiness says ([`Io`]), and bytes that go
//! out before anything else ([`Unsent`]: an HTTP answer, a request, the 101).
//!
//! [`Io`] reads and writes plaintext ([`io::Read`], [`io::Write`]): over the socket
//! itself, or over the connection's TLS session when it has one, so the phases of a
//! connection do not see TLS.

use std::io::{self, Read as _, Write};
use std::net::Shutdown;

use mio::net::TcpStream;

use crate::tls::Tls;

/// The socket, its TLS session if it has one, and the readiness the loop reported and
/// the connection has not used up yet (readiness is edge-triggered: it comes once,
/// until a `WouldBlock`).
pub(crate) struct Io {
    pub(crate) socket: TcpStream,
    /// The TLS session over the socket (`None`: plain TCP).
    pub(crate) tls: Option<Box<Tls>>,
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
    pub(crate) fn new(socket: TcpStream, tls: Option<Box<Tls>>) -> Io {
        Io {
            socket,
            tls,
            readable: false,
            writable: false,
        }
    }

    /// True while the TLS handshake is under way.
    pub(crate) fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    /// True while TLS records wait for the socket: write readiness is wanted.
    pub(crate) fn wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Writes the TLS records waiting for the socket: `Ok(true)` once none is left.
    pub(crate) fn send_pending(&mut self) -> io::Result<bool> {
        match &mut self.tls {
            Some(tls) => tls.send(&mut self.socket),
            None => Ok(true),
        }
    }

    /// Ends our sending side: TLS `close_notify` (once), then, once every record is
    /// written, a FIN. `true` once the FIN is sent (or the socket failed: nothing
    /// more can be sent); `false` while records wait for the socket.
    pub(crate) fn shutdown_write(&mut self) -> bool {
        if let Some(tls) = &mut self.tls {
            if let Ok(false) = tls.close(&mut self.socket) {
                return false;
            }
        }
        let _ = self.socket.shutdown(Shutdown::Write);
        true
    }

    /// Reads into `buf`, retrying interrupted reads; anything but data uses up the
    /// readiness.
    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> Read {
        let result = loop {
            match self.read(buf) {
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
            match self.recv(&mut scratch) {
                Read::Data(_) => {}
                other => return other,
            }
        }
    }
}

impl io::Read for Io {
    /// Plaintext: from the socket, or from the TLS session.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => tls.read(&mut self.socket, buf),
            None => self.socket.read(buf),
        }
    }
}

impl io::Write for Io {
    /// Plaintext: to the socket, or sealed by the TLS session (taken once rustls
    /// holds it; its records go out as the socket takes them).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => tls.write(&mut self.socket, &[io::IoSlice::new(buf)]),
            None => self.socket.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => tls.write(&mut self.socket, bufs),
            None => self.socket.write_vectored(bufs),
        }
    }

    /// Writes the TLS records waiting for the socket (`WouldBlock` if some are left).
    fn flush(&mut self) -> io::Result<()> {
        match self.send_pending()? {
            true => Ok(()),
            false => Err(io::ErrorKind::WouldBlock.into()),
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
