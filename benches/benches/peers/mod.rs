//! In-memory transports for the peer libraries: a stream that replays a prebuilt wire
//! in socket-sized pieces (wrapping around at its end) and swallows whatever is
//! written to it. Blocking (`std::io`, for tungstenite) and async (tokio, for
//! fastwebsockets) flavours of the same thing.

use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use hybi_benches::{CHUNK, KernelSink};

/// Replays `wire` forever, at most [`CHUNK`] bytes per read; writes go to a
/// [`KernelSink`] (one copy, at most [`CHUNK`] bytes per write).
#[derive(Debug, Default)]
pub struct MemStream {
    wire: Vec<u8>,
    pos: usize,
    /// Where writes go.
    pub sink: KernelSink,
}

impl MemStream {
    /// A stream that reads `wire` over and over (an empty wire reads as end of input).
    #[allow(dead_code)]
    pub fn new(wire: Vec<u8>) -> MemStream {
        MemStream {
            wire,
            pos: 0,
            sink: KernelSink::new(),
        }
    }

    /// A write-only sink.
    #[allow(dead_code)]
    pub fn sink() -> MemStream {
        MemStream::default()
    }

    /// True when a whole number of laps has been read.
    #[allow(dead_code)]
    pub fn at_start(&self) -> bool {
        self.pos == 0
    }

    #[inline]
    fn next_piece(&mut self, room: usize) -> &[u8] {
        let n = room.min(CHUNK).min(self.wire.len() - self.pos);
        let piece = &self.wire[self.pos..self.pos + n];
        self.pos += n;
        if self.pos == self.wire.len() {
            self.pos = 0;
        }
        piece
    }
}

impl Read for MemStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let piece = self.next_piece(buf.len());
        let n = piece.len();
        buf[..n].copy_from_slice(piece);
        Ok(n)
    }
}

impl Write for MemStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.sink.write(buf))
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(self.sink.write_vectored(bufs.iter().map(|b| &b[..])))
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for MemStream {
    #[inline]
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let room = buf.remaining();
        let piece = self.next_piece(room);
        // `put_slice` copies into uninitialised space without zeroing it first, as a
        // kernel read would.
        buf.put_slice(piece);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for MemStream {
    #[inline]
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.write(buf))
    }

    #[inline]
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A current-thread tokio runtime: everything here completes without waiting, so the
/// runtime only polls the futures.
#[allow(dead_code)]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

/// tungstenite's limits, set as hybi's defaults (16 MiB frames, 64 MiB messages) so
/// 1 MiB messages pass.
#[allow(dead_code)]
pub fn tungstenite_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .max_frame_size(Some(16 << 20))
        .max_message_size(Some(64 << 20))
}
