//! What a [`WebSocket`](crate::WebSocket) needs from its transport beyond `Read + Write`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, HandshakeError, Result};

/// A byte stream a WebSocket runs over: `Read + Write`, plus optional control of read
/// timeouts (so the engine's timers fire while waiting for data) and of shutting down.
///
/// Implemented for [`TcpStream`], (on Unix) `UnixStream`, and with the `tls` feature
/// `TlsStream` and [`MaybeTls`](crate::MaybeTls). For another stream, implement it on a
/// wrapper, delegating the timeout to the socket underneath, or wrap the stream in
/// [`Untimed`] to run without read timeouts: the engine's timers (keepalive, close
/// timeout) then only fire when data arrives.
pub trait Stream: Read + Write {
    /// Sets how long a read may block (`None`: forever). Default: does nothing.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Ends the stream in both directions. Default: does nothing (dropping the
    /// stream closes it).
    fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Ends our sending direction only (a TCP FIN), so the peer reads end of input
    /// while we can still read what it sends. Default: [`shutdown`](Self::shutdown).
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown()
    }

    /// Waits until a read would not block (bytes, the end of the stream or an error
    /// are waiting), within the read timeout, without taking anything from the
    /// stream. Returns `Ok(false)` if the stream cannot tell, the default.
    ///
    /// A split [`Reader`](crate::Reader) uses it while large messages arrive: it
    /// waits without holding the connection's lock, then reads straight into the
    /// engine's buffers (no copy through a buffer of its own), holding the lock for
    /// that read. Return `Ok(true)` only if the next `read` then returns without
    /// blocking: a TLS stream whose socket has bytes may still need more of a record
    /// before it can return any, so it must wait for decrypted bytes (as `TlsStream`
    /// does) or keep the default.
    fn wait_readable(&mut self) -> io::Result<bool> {
        Ok(false)
    }
}

impl Stream for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Both)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Write)
    }
    fn wait_readable(&mut self) -> io::Result<bool> {
        TcpStream::peek(self, &mut [0]).map(|_| true)
    }
}

#[cfg(unix)]
impl Stream for std::os::unix::net::UnixStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, Shutdown::Both)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, Shutdown::Write)
    }
}

impl<S: Stream + ?Sized> Stream for Box<S> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        (**self).shutdown()
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }
    fn wait_readable(&mut self) -> io::Result<bool> {
        (**self).wait_readable()
    }
}

/// Any `Read + Write` as a [`Stream`] without timeout control.
#[derive(Debug)]
pub struct Untimed<S>(pub S);

impl<S: Read> Read for Untimed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Write> Write for Untimed<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S: Read + Write> Stream for Untimed<S> {}

/// A TCP stream shared by the reading and writing halves of a server connection:
/// one file descriptor per connection, where `TcpStream::try_clone` would take two.
#[derive(Debug, Clone)]
pub(crate) struct SharedTcp(Arc<TcpStream>);

impl SharedTcp {
    pub(crate) fn new(stream: TcpStream) -> SharedTcp {
        SharedTcp(Arc::new(stream))
    }

    /// The socket.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.0
    }
}

impl Read for SharedTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for SharedTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for SharedTcp {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_read_timeout(timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Both)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Write)
    }
    fn wait_readable(&mut self) -> io::Result<bool> {
        self.0.peek(&mut [0]).map(|_| true)
    }
}

impl TryClone for SharedTcp {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(self.clone())
    }
}

/// A stream that can be duplicated into a reading and a writing handle, which
/// [`WebSocket::split`](crate::WebSocket::split) needs.
pub trait TryClone: Sized {
    /// Another handle to the same stream.
    fn try_clone(&self) -> io::Result<Self>;
}

impl TryClone for TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }
}

#[cfg(unix)]
impl TryClone for std::os::unix::net::UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::os::unix::net::UnixStream::try_clone(self)
    }
}

/// Reads a handshake's HTTP head: feeds what arrives to `feed` until it returns a
/// result (or an error), within `timeout` overall (a peer trickling bytes does not
/// reset it). The stream's read timeout is left as the last one set.
pub(crate) fn read_head<S: Stream + ?Sized, T>(
    stream: &mut S,
    timeout: Duration,
    mut feed: impl FnMut(&[u8]) -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Handshake(HandshakeError::Timeout));
        }
        stream.set_read_timeout(Some(left))?;
        let started = Instant::now();
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err(Error::Handshake(HandshakeError::UnexpectedEof)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The timeout expired (the loop then reports it), or, long before it, a
            // non-blocking stream has nothing yet: an error, not a spin.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) && started.elapsed() >= left / 2 =>
            {
                continue;
            }
            Err(e) => return Err(Error::Io(e)),
        };
        if let Some(done) = feed(&buf[..n])? {
            return Ok(done);
        }
    }
}
