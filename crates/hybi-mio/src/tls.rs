//! TLS on the event loop (the `tls` feature): [`Tls`], one rustls session (client or
//! server) over a connection's non-blocking socket, which the connection reads
//! plaintext from and writes plaintext to as it would the socket itself.
//!
//! rustls' buffered API, driven by readiness: a read hands out plaintext rustls
//! already holds, else reads ciphertext from the socket (`read_tls`), decrypts it
//! (`process_new_packets`) and writes whatever rustls has to say back (the handshake's
//! flights, alerts); a write refuses plaintext (`WouldBlock`) while ciphertext of an
//! earlier write still waits for the socket, so at most one write's worth of records
//! queues in rustls. The TLS handshake needs no phase of its own: it runs inside the
//! first reads and writes of the WebSocket handshake, under the same deadline.

use std::io::{self, Read as _, Write as _};
use std::sync::Arc;

use hybi_std::TlsError;
use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

pub(crate) use hybi_std::adapter::NOT_TLS_ANSWER;

/// The most plaintext rustls takes from one write before it is encrypted and sent.
const WRITE_LIMIT: usize = 64 << 10;

/// One TLS session over a connection's socket.
pub(crate) struct Tls {
    session: Connection,
    /// The peer's first byte has been looked at (plain HTTP starts with an uppercase
    /// letter, a TLS record with a content type from 20 to 24).
    sniffed: bool,
    /// Why the session failed (rustls refused a record, or the peer spoke plain
    /// text): every later read and write fails the same way.
    failed: Option<Failure>,
    /// `close_notify` is queued.
    closing: bool,
}

#[derive(Clone)]
enum Failure {
    Rustls(rustls::Error),
    NotTls,
}

impl Failure {
    fn to_io(&self) -> io::Error {
        let tls = match self {
            Failure::Rustls(e) => TlsError::Rustls(e.clone()),
            Failure::NotTls => TlsError::NotTls,
        };
        io::Error::new(io::ErrorKind::InvalidData, tls)
    }
}

impl Tls {
    /// The server side of a session with `config`.
    pub(crate) fn server(config: &Arc<ServerConfig>) -> Result<Box<Tls>, rustls::Error> {
        let session = ServerConnection::new(Arc::clone(config))?;
        Ok(Tls::new(Connection::Server(session)))
    }

    /// The client side of a session with `config`, checking the server's certificate
    /// against `host` (a DNS name or an IP address).
    pub(crate) fn client(config: Arc<ClientConfig>, host: &str) -> Result<Box<Tls>, TlsError> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| TlsError::InvalidServerName(host.to_owned()))?;
        let session = ClientConnection::new(config, name).map_err(TlsError::Rustls)?;
        Ok(Tls::new(Connection::Client(session)))
    }

    fn new(mut session: Connection) -> Box<Tls> {
        session.set_buffer_limit(Some(WRITE_LIMIT));
        Box::new(Tls {
            session,
            sniffed: false,
            failed: None,
            closing: false,
        })
    }

    /// The TLS handshake is still under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Records wait for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// Reads plaintext into `buf`: `Ok(0)` is the end (the peer's `close_notify`, or
    /// its end of TCP without one: the WebSocket closing handshake, not TLS, tells a
    /// clean end from a cut one). `WouldBlock` once the socket has nothing more.
    /// Failures come as `InvalidData` errors holding a [`TlsError`].
    pub(crate) fn read(&mut self, socket: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let mut ended = false;
        loop {
            if let Some(failure) = &self.failed {
                return Err(failure.to_io());
            }
            match self.session.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && ended => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if !self.sniffed {
                let mut first = [0u8; 1];
                match socket.peek(&mut first) {
                    Ok(0) => {}
                    Ok(_) if hybi_std::adapter::looks_like_http(first[0]) => {
                        self.failed = Some(Failure::NotTls);
                        continue;
                    }
                    Ok(_) => self.sniffed = true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            match self.session.read_tls(socket) {
                Ok(0) => ended = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.session.process_new_packets() {
                // rustls queued a fatal alert: sent if the socket takes it at once.
                let _ = self.send(socket);
                self.failed = Some(Failure::Rustls(e));
                continue;
            }
            // The handshake's next flight, a key update's answer: what the socket
            // does not take now waits for write readiness.
            match self.send(socket) {
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes plaintext from `bufs` (at most [`WRITE_LIMIT`]) once earlier records are
    /// all written, seals it and writes what the socket takes; the rest waits in
    /// rustls for write readiness. `WouldBlock` while earlier records still wait.
    pub(crate) fn write(
        &mut self,
        socket: &mut TcpStream,
        bufs: &[io::IoSlice<'_>],
    ) -> io::Result<usize> {
        if let Some(failure) = &self.failed {
            return Err(failure.to_io());
        }
        if !self.send(socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.session.writer().write_vectored(bufs)?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // rustls' buffer is full (plaintext waiting for the handshake).
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.send(socket) {
            Ok(_) => Ok(n),
            // Taken all the same: the error comes again with the next call.
            Err(_) => Ok(n),
        }
    }

    /// Writes the records rustls holds: `Ok(true)` once none is left, `Ok(false)` if
    /// the socket takes no more for now.
    pub(crate) fn send(&mut self, socket: &mut TcpStream) -> io::Result<bool> {
        while self.session.wants_write() {
            match self.session.write_tls(socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Queues `close_notify` (once) and writes what is queued: `Ok(true)` once all is
    /// written.
    pub(crate) fn close(&mut self, socket: &mut TcpStream) -> io::Result<bool> {
        if !self.closing && self.failed.is_none() {
            self.closing = true;
            self.session.send_close_notify();
        }
        self.send(socket)
    }
}

/// The [`TlsError`] an I/O error of [`Tls`] carries, or the error as it was.
pub(crate) fn tls_error(e: io::Error) -> Result<TlsError, io::Error> {
    if !e.get_ref().is_some_and(|inner| inner.is::<TlsError>()) {
        return Err(e);
    }
    let kind = e.kind();
    match e.into_inner().map(|inner| inner.downcast::<TlsError>()) {
        Some(Ok(tls)) => Ok(*tls),
        Some(Err(other)) => Err(io::Error::new(kind, other)),
        None => Err(kind.into()),
    }
}
