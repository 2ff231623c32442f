//! The streams this crate connects and accepts on: plain TCP or TLS over it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::stream::{SharedTcp, Stream, TryClone};
#[cfg(feature = "tls")]
use crate::tls::TlsStream;

/// The stream of a client connection: plain TCP for `ws://`, TLS for `wss://`. What
/// [`ClientBuilder::connect`](crate::ClientBuilder::connect) returns a
/// [`WebSocket`](crate::WebSocket) over; it splits like a `TcpStream`.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTls {
    /// Plain TCP (`ws://`).
    Plain(TcpStream),
    /// TLS over TCP (`wss://`; the `tls` feature).
    #[cfg(feature = "tls")]
    Tls(TlsStream),
}

impl MaybeTls {
    /// The TCP socket underneath (for its addresses and options). Reading or writing
    /// it directly corrupts the connection.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTls::Plain(s) => s,
            #[cfg(feature = "tls")]
            MaybeTls::Tls(s) => s.tcp(),
        }
    }

    /// True for a TLS stream.
    pub fn is_tls(&self) -> bool {
        match self {
            MaybeTls::Plain(_) => false,
            #[cfg(feature = "tls")]
            MaybeTls::Tls(_) => true,
        }
    }
}

/// Delegates every `Read`, `Write`, [`Stream`] and [`TryClone`] method of an enum of
/// streams to the variant it holds.
macro_rules! delegate {
    ($ty:ident, $plain:ty) => {
        impl Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self {
                    $ty::Plain(s) => s.read(buf),
                    #[cfg(feature = "tls")]
                    $ty::Tls(s) => s.read(buf),
                }
            }
        }

        impl Write for $ty {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                match self {
                    $ty::Plain(s) => s.write(buf),
                    #[cfg(feature = "tls")]
                    $ty::Tls(s) => s.write(buf),
                }
            }
            fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
                match self {
                    $ty::Plain(s) => s.write_vectored(bufs),
                    #[cfg(feature = "tls")]
                    $ty::Tls(s) => s.write_vectored(bufs),
                }
            }
            fn flush(&mut self) -> io::Result<()> {
                match self {
                    $ty::Plain(s) => s.flush(),
                    #[cfg(feature = "tls")]
                    $ty::Tls(s) => s.flush(),
                }
            }
        }

        impl Stream for $ty {
            fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
                match self {
                    $ty::Plain(s) => Stream::set_read_timeout(s, timeout),
                    #[cfg(feature = "tls")]
                    $ty::Tls(s) => Stream::set_read_timeout(s, timeout),
                }
            }
            fn shutdown(&mut self) -> io::Result<()> {
                match self {
                    $ty::Plain(s) => Stream::shutdown(s),
                    #[cfg(feature = "tls")]
                    $ty::Tls(s) => Stream::shutdown(s),
                }
            }
            fn shutdown_write(&mut self) -> io::Result<()> {
                match self {
                    $ty::Plain(s) => s.shutdown_write(),
                    #[cfg(feature = "tls")]
                    $ty::Tls(s) => s.shutdown_write(),
                }
            }
            fn wait_readable(&mut self) -> io::Result<bool> {
                match self {
                    $ty::Plain(s) => s.wait_readable(),
                    #[cfg(feature = "tls")]
                    $ty::Tls(s) => s.wait_readable(),
                }
            }
        }

        impl TryClone for $ty {
            fn try_clone(&self) -> io::Result<Self> {
                Ok(match self {
                    $ty::Plain(s) => $ty::Plain(<$plain as TryClone>::try_clone(s)?),
                    #[cfg(feature = "tls")]
                    $ty::Tls(s) => $ty::Tls(s.try_clone()?),
                })
            }
        }
    };
}

delegate!(MaybeTls, TcpStream);

/// The stream of a [`Server`](crate::Server) connection: the shared TCP socket (one
/// file descriptor for both halves), or TLS over it.
#[derive(Debug)]
pub(crate) enum ServerStream {
    Plain(SharedTcp),
    #[cfg(feature = "tls")]
    Tls(TlsStream),
}

delegate!(ServerStream, SharedTcp);

impl ServerStream {
    /// The TCP socket underneath (for its options, and to end it from outside).
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            ServerStream::Plain(s) => s.tcp(),
            #[cfg(feature = "tls")]
            ServerStream::Tls(s) => s.tcp(),
        }
    }
}
