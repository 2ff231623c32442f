//! Without the `tls` feature: no TLS session can exist ([`Tls`] has no values), so
//! every connection is plain TCP and the calls below are never made.

use std::io;

use mio::net::TcpStream;

/// A TLS session, which this build cannot make.
pub(crate) enum Tls {}

impl Tls {
    pub(crate) fn is_handshaking(&self) -> bool {
        match *self {}
    }

    pub(crate) fn wants_write(&self) -> bool {
        match *self {}
    }

    pub(crate) fn read(&mut self, _: &mut TcpStream, _: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn write(&mut self, _: &mut TcpStream, _: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn send(&mut self, _: &mut TcpStream) -> io::Result<bool> {
        match *self {}
    }

    pub(crate) fn close(&mut self, _: &mut TcpStream) -> io::Result<bool> {
        match *self {}
    }
}
