//! TLS over a blocking TCP stream, on rustls: [`TlsStream`], which a [`WebSocket`]
//! runs over like any other [`Stream`] and which splits into a reader and a writer for
//! two threads without a lock held across a blocking read or write.
//!
//! [`WebSocket`]: crate::WebSocket
//!
//! # How the halves share one TLS session
//!
//! Every handle of a [`TlsStream`] (the one [`TryClone::try_clone`] makes, say) shares
//! one TCP socket and one rustls connection. Three locks, each held briefly or for one
//! kind of blocking call only:
//!
//! - the TLS state (the rustls connection and the ciphertext read but not yet handed to
//!   it): held only to move bytes in and out of rustls, never across a system call on
//!   the socket;
//! - reading: held by the one handle reading from the socket (a blocking `read(2)`,
//!   within the socket's read timeout), with the raw bytes read;
//! - writing: held by the one handle writing to the socket, from taking the records
//!   rustls encrypted (under the TLS lock) until they are written (a blocking
//!   `write(2)`, within the socket's write timeout, without the TLS lock). Records thus
//!   reach the socket in the order they were sealed.
//!
//! So a reader blocked waiting for the peer never keeps a writer from sending, and a
//! writer blocked on a peer that does not read never keeps the reader from reading
//! and decrypting what arrives. A read hands out plaintext rustls already holds, then
//! ciphertext already read (complete records that arrived with earlier ones), and
//! waits on the socket only when neither is there.

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use crate::adapter::{NOT_TLS_ANSWER, looks_like_http};
use crate::error::{Error, HandshakeError, Result};
use crate::stream::{Stream, TryClone};

/// How much ciphertext one read from the socket takes at most.
const READ_CHUNK: usize = 64 << 10;

/// Why a TLS handshake failed (inside [`Error::Tls`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the handshake: the peer's certificate is expired, not valid for
    /// the name, or not signed by a trusted root; no protocol version or cipher suite
    /// in common; the peer sent an alert (it refused our certificate, say) or bytes
    /// that are not TLS.
    Rustls(rustls::Error),
    /// The peer spoke plain text (HTTP) where TLS was expected: a `ws://` server on
    /// the port of a `wss://` URL (client), or a plain client on a TLS port (server;
    /// it was answered `400 Bad Request` in plain text).
    NotTls,
    /// The URL's host is not a name or an IP address a certificate can be checked
    /// against.
    InvalidServerName(String),
}

impl TlsError {
    /// What was wrong with the peer's certificate, when that is why the handshake
    /// failed: [`Expired`](rustls::CertificateError::Expired),
    /// [`NotValidForName`](rustls::CertificateError::NotValidForName) (or its
    /// detailed form), [`UnknownIssuer`](rustls::CertificateError::UnknownIssuer) (not
    /// signed by a trusted root), and so on. Our own certificate refused by the peer
    /// comes as an alert instead ([`rustls::Error::AlertReceived`]).
    pub fn certificate(&self) -> Option<&rustls::CertificateError> {
        match self {
            TlsError::Rustls(rustls::Error::InvalidCertificate(e)) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Rustls(e) => e.fmt(f),
            TlsError::NotTls => {
                f.write_str("the peer spoke plain HTTP, not TLS (is it a ws:// endpoint?)")
            }
            TlsError::InvalidServerName(host) => {
                write!(f, "{host:?} is not a valid TLS server name")
            }
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Display is rustls's message: its cause comes next.
        match self {
            TlsError::Rustls(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

impl From<TlsError> for Error {
    fn from(e: TlsError) -> Error {
        Error::Tls(e)
    }
}

/// The crypto provider the default config uses: ring, named explicitly rather than
/// taken from the process default, so that a program that also links aws-lc-rs (two
/// providers, no default installed) does not make [`ClientConfig::builder`] panic.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client config `wss://` uses when [`ClientBuilder::tls_config`] gives none:
/// Mozilla's root certificates (webpki-roots), and the platform's too with the
/// `tls-native-roots` feature; the ring provider; TLS 1.2 and 1.3; no client
/// certificate. Made once per process.
///
/// [`ClientBuilder::tls_config`]: crate::ClientBuilder::tls_config
pub fn default_client_config() -> Result<Arc<ClientConfig>, TlsError> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = DEFAULT.get() {
        return Ok(Arc::clone(config));
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    #[cfg(feature = "tls-native-roots")]
    {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            log::debug!("platform root certificates: {e}");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        log::debug!("platform root certificates: {added} added, {ignored} unparsable");
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::clone(DEFAULT.get_or_init(|| Arc::new(config))))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here panics while holding a lock; a panic elsewhere leaves the state as
    // consistent as the last completed call.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The TLS session and what was read for it.
struct State {
    conn: Connection,
    /// Ciphertext read from the socket and not yet taken by rustls (it takes at most
    /// a record or so at a time).
    incoming: Vec<u8>,
    /// How much of `incoming` rustls has taken.
    taken: usize,
    /// The socket reached its end.
    eof: bool,
    /// rustls failed (a bad record, an alert): every later read returns this.
    failed: Option<rustls::Error>,
}

/// Whether a read can be answered without the socket.
enum Ready {
    /// Plaintext, or the end of the stream, is waiting.
    Yes,
    /// More ciphertext must be read from the socket.
    NeedBytes,
}

impl State {
    /// Feeds rustls what was read until it has plaintext (or the end) to hand out, or
    /// needs more from the socket. `Ok(true)` in the second element: rustls queued
    /// output of its own (an alert, a key update) to write.
    fn pump(&mut self) -> io::Result<(Ready, bool)> {
        loop {
            if let Some(e) = &self.failed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
            }
            match self.conn.reader().fill_buf() {
                Ok(_) => return Ok((Ready::Yes, self.conn.wants_write())),
                // The peer ended TCP without close_notify: the end all the same (see
                // `TlsStream`'s read).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok((Ready::Yes, false));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.taken < self.incoming.len() {
                let mut rest = &self.incoming[self.taken..];
                let n = self.conn.read_tls(&mut rest)?;
                if n == 0 {
                    // rustls takes nothing more: after close_notify, or stuck.
                    self.incoming.clear();
                    self.taken = 0;
                    if self.conn.reader().fill_buf().is_err() {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "TLS: records left that rustls does not take",
                        ));
                    }
                    continue;
                }
                self.taken += n;
                if self.taken == self.incoming.len() {
                    self.incoming.clear();
                    self.taken = 0;
                }
            } else if self.eof {
                // Tell rustls the socket ended (a read of nothing).
                let _ = self.conn.read_tls(&mut io::empty());
            } else {
                return Ok((Ready::NeedBytes, self.conn.wants_write()));
            }
            if let Err(e) = self.conn.process_new_packets() {
                self.failed = Some(e.clone());
                // rustls queued a fatal alert: the caller writes it, then fails.
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }

    /// Ciphertext just read from the socket (`n == 0`: its end).
    fn arrived(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            self.eof = true;
        } else {
            self.incoming.extend_from_slice(bytes);
        }
    }
}

struct Shared {
    sock: TcpStream,
    state: Mutex<State>,
    /// Held while reading from the socket; the buffer read into.
    reading: Mutex<Vec<u8>>,
    /// Held while writing to the socket; the records being written.
    writing: Mutex<Outgoing>,
}

/// Records sealed by rustls and not yet written to the socket, in order.
#[derive(Default)]
struct Outgoing {
    buf: Vec<u8>,
    /// How much of `buf` the socket has taken.
    sent: usize,
}

impl Outgoing {
    /// Moves everything rustls has sealed to the end of the queue.
    fn seal(&mut self, conn: &mut Connection) {
        while conn.wants_write() {
            // Writing into a Vec cannot fail.
            if conn.write_tls(&mut self.buf).is_err() {
                break;
            }
        }
    }

    /// Writes the queue to the socket. On an error (a write timeout, `WouldBlock` on a
    /// non-blocking socket, a reset) what the socket did not take stays queued, so
    /// that no record is ever lost or sent twice.
    fn write_to(&mut self, mut sock: &TcpStream) -> io::Result<()> {
        while self.sent < self.buf.len() {
            match sock.write(&self.buf[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        self.sent = 0;
        if self.buf.capacity() > 4 * READ_CHUNK {
            // A large write left a large buffer: give most of it back.
            self.buf.shrink_to(READ_CHUNK);
        }
        Ok(())
    }
}

/// A TLS session over a [`TcpStream`] (rustls, client or server side), as a blocking
/// [`Stream`]: the stream `wss://` connections and TLS [`Server`](crate::Server)
/// connections run over.
///
/// Cloning a handle ([`TryClone`]) shares the session and the socket (one file
/// descriptor), so a [`WebSocket`](crate::WebSocket) over it can
/// [`split`](crate::WebSocket::split) into a reader and a writer for two threads; a
/// blocking read holds no lock the writer needs, and a blocking write none the reader
/// needs.
///
/// The read timeout ([`Stream::set_read_timeout`]) and the write timeout
/// (`TcpStream::set_write_timeout` on [`tcp`](Self::tcp)) are the socket's, shared by
/// every handle.
///
/// A peer that ends TCP without a TLS `close_notify` reads as the end of the stream,
/// not as an error: the WebSocket closing handshake, not TLS, tells a clean end from a
/// cut connection (the engine reports a connection that ends before it with 1006), and
/// many TLS peers skip `close_notify`.
pub struct TlsStream {
    shared: Arc<Shared>,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("TlsStream")
            .field("peer", &self.shared.sock.peer_addr().ok())
            .field("protocol", &state.conn.protocol_version())
            .field("cipher_suite", &state.conn.negotiated_cipher_suite())
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    /// Runs the client side of a TLS handshake over `tcp`, checking the server's
    /// certificate against `server_name` (a DNS name or an IP address) with `config`,
    /// within `timeout`.
    ///
    /// Errors: [`Error::Tls`] when TLS fails (the certificate, an alert, a server
    /// that answers in plain HTTP, a name that is no server name),
    /// [`HandshakeError::Timeout`] and [`HandshakeError::UnexpectedEof`], or
    /// [`Error::Io`].
    ///
    /// The socket is put in blocking mode; its write timeout is kept, its read
    /// timeout cleared once the handshake is done.
    pub fn connect(
        tcp: TcpStream,
        server_name: &str,
        config: Arc<ClientConfig>,
        timeout: Duration,
    ) -> Result<TlsStream> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsError::InvalidServerName(server_name.to_owned()))?;
        let conn = ClientConnection::new(config, name).map_err(TlsError::Rustls)?;
        TlsStream::handshake(tcp, Connection::Client(conn), timeout)
    }

    /// Runs the server side of a TLS handshake over `tcp` with `config`, within
    /// `timeout`: a client that sends nothing, part of a ClientHello, or garbage is
    /// dropped by then. A client that speaks plain HTTP is answered `400 Bad Request`
    /// in plain text and gets [`TlsError::NotTls`]. The socket is put in blocking mode.
    pub fn accept(
        tcp: TcpStream,
        config: Arc<ServerConfig>,
        timeout: Duration,
    ) -> Result<TlsStream> {
        let conn = ServerConnection::new(config).map_err(TlsError::Rustls)?;
        TlsStream::handshake(tcp, Connection::Server(conn), timeout)
    }

    fn handshake(sock: TcpStream, mut conn: Connection, timeout: Duration) -> Result<TlsStream> {
        let deadline = Instant::now() + timeout;
        // The handshake waits with the socket's timeouts, which a non-blocking socket
        // would ignore (a spin until the deadline).
        sock.set_nonblocking(false)?;
        let write_timeout = sock.write_timeout()?;
        let result = drive_handshake(&sock, &mut conn, deadline);
        // Whatever happened, the socket's timeouts are the caller's again.
        let restored = sock
            .set_write_timeout(write_timeout)
            .and_then(|()| sock.set_read_timeout(None));
        if let Err(e) = result {
            let _ = sock.shutdown(Shutdown::Both);
            return Err(e);
        }
        restored?;
        Ok(TlsStream {
            shared: Arc::new(Shared {
                sock,
                state: Mutex::new(State {
                    conn,
                    incoming: Vec::new(),
                    taken: 0,
                    eof: false,
                    failed: None,
                }),
                reading: Mutex::new(Vec::new()),
                writing: Mutex::new(Outgoing::default()),
            }),
        })
    }

    /// The TCP socket underneath (for its addresses and options). Reading or writing
    /// it directly corrupts the session.
    pub fn tcp(&self) -> &TcpStream {
        &self.shared.sock
    }

    /// Runs `f` on the rustls connection: the protocol version, the cipher suite, ALPN,
    /// the peer's certificates, the server name a client asked for
    /// ([`rustls::ServerConnection::server_name`]).
    pub fn with_connection<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(&lock(&self.shared.state).conn)
    }

    /// Writes what rustls has sealed and not yet written (an alert, a key update, the
    /// rest of a write).
    fn write_pending(&self) -> io::Result<()> {
        let mut out = lock(&self.shared.writing);
        out.seal(&mut lock(&self.shared.state).conn);
        out.write_to(&self.shared.sock)
    }

    /// Waits until plaintext or the end is there (the socket read without the TLS
    /// lock), then hands it to `f` under the TLS lock.
    fn read_with<R>(&self, f: impl FnOnce(&mut State) -> io::Result<R>) -> io::Result<R> {
        let mut raw = lock(&self.shared.reading);
        loop {
            let mut state = lock(&self.shared.state);
            let (ready, output) = match state.pump() {
                Ok(r) => r,
                Err(e) => {
                    drop(state);
                    // The alert rustls queued, best effort.
                    let _ = self.write_pending();
                    return Err(e);
                }
            };
            if let Ready::Yes = ready {
                let out = f(&mut state);
                drop(state);
                if output {
                    self.write_pending()?;
                }
                return out;
            }
            drop(state);
            if output {
                self.write_pending()?;
            }
            if raw.len() < READ_CHUNK {
                raw.resize(READ_CHUNK, 0);
            }
            let n = loop {
                match (&self.shared.sock).read(&mut raw) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            lock(&self.shared.state).arrived(&raw[..n]);
        }
    }
}

fn drive_handshake(sock: &TcpStream, conn: &mut Connection, deadline: Instant) -> Result<()> {
    let timed_out = || Error::Handshake(HandshakeError::Timeout);
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(timed_out())
        } else {
            Ok(left)
        }
    };
    let mut first_byte_seen = false;
    loop {
        while conn.wants_write() {
            sock.set_write_timeout(Some(left()?))?;
            match conn.write_tls(&mut &*sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(timed_out()),
                Err(e) => return Err(Error::Io(e)),
            }
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        sock.set_read_timeout(Some(left()?))?;
        if !first_byte_seen {
            let mut first = [0u8; 1];
            match sock.peek(&mut first) {
                Ok(0) => return Err(Error::Handshake(HandshakeError::UnexpectedEof)),
                Ok(_) if looks_like_http(first[0]) => {
                    if let Connection::Server(_) = conn {
                        refuse_plain(sock);
                    }
                    return Err(TlsError::NotTls.into());
                }
                Ok(_) => first_byte_seen = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => continue, // `left` tells if it is over
                Err(e) => return Err(Error::Io(e)),
            }
        }
        match conn.read_tls(&mut &*sock) {
            Ok(0) => return Err(Error::Handshake(HandshakeError::UnexpectedEof)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => continue,
            Err(e) => return Err(Error::Io(e)),
        }
        if let Err(e) = conn.process_new_packets() {
            // Send the alert rustls queued (best effort), then fail.
            let _ = sock.set_write_timeout(Some(Duration::from_millis(200)));
            while conn.wants_write() {
                if conn.write_tls(&mut &*sock).is_err() {
                    break;
                }
            }
            return Err(TlsError::Rustls(e).into());
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Answers a plain HTTP request on a TLS port with a 400 and closes: read what the
/// client sent (so that closing sends a FIN, not a reset that could destroy the
/// answer), write the answer, end our side, drain a moment.
fn refuse_plain(sock: &TcpStream) {
    let mut sock = sock;
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = sock.set_write_timeout(Some(Duration::from_millis(200)));
    let mut scratch = [0u8; 4096];
    let _ = sock.read(&mut scratch);
    let _ = sock.write_all(NOT_TLS_ANSWER);
    let _ = sock.shutdown(Shutdown::Write);
    for _ in 0..16 {
        match sock.read(&mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_with(|state| match state.conn.reader().read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            Err(e) => Err(e),
        })
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    /// Encrypts what rustls takes of `bufs` (up to its buffer limit, 64 KiB by
    /// default) and writes the records. Once rustls has taken the bytes they count as
    /// written: if the socket then refuses the records (a write timeout, `WouldBlock`),
    /// they stay queued for the next write or [`flush`](Write::flush). Records queued
    /// earlier are written first; while they cannot be, nothing new is taken.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut out = lock(&self.shared.writing);
        out.write_to(&self.shared.sock)?;
        let n = {
            let mut state = lock(&self.shared.state);
            let n = state.conn.writer().write_vectored(bufs)?;
            out.seal(&mut state.conn);
            n
        };
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // rustls takes no more application data (we sent close_notify).
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        match out.write_to(&self.shared.sock) {
            Err(e) if !is_timeout(&e) => Err(e),
            _ => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()
    }
}

impl Stream for TlsStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.shared.sock.set_read_timeout(timeout)
    }

    /// Sends `close_notify` (if not yet sent), then closes the socket both ways.
    fn shutdown(&mut self) -> io::Result<()> {
        let _ = self.shutdown_write();
        self.shared.sock.shutdown(Shutdown::Both)
    }

    /// Sends `close_notify`, then ends the socket's sending side.
    fn shutdown_write(&mut self) -> io::Result<()> {
        let mut out = lock(&self.shared.writing);
        {
            let mut state = lock(&self.shared.state);
            state.conn.send_close_notify();
            out.seal(&mut state.conn);
        }
        let sent = out.write_to(&self.shared.sock);
        let shut = self.shared.sock.shutdown(Shutdown::Write);
        sent.and(shut)
    }

    /// Waits, within the read timeout, until plaintext (or the end of the stream) is
    /// decrypted and waiting: the next read returns at once. Records that arrived
    /// together with earlier ones are decrypted without waiting on the socket.
    fn wait_readable(&mut self) -> io::Result<bool> {
        self.read_with(|_| Ok(true))
    }
}

impl TryClone for TlsStream {
    /// Another handle to the same session and socket (no new file descriptor).
    fn try_clone(&self) -> io::Result<Self> {
        Ok(TlsStream {
            shared: Arc::clone(&self.shared),
        })
    }
}
