//! A [`WebSocket`] split into a [`ReadHalf`] and a [`WriteHalf`] for two tasks.
//!
//! Both halves share the engine and the transport behind a mutex that is held only
//! while one of them polls (non-blocking calls into the engine and the transport),
//! never across an `.await`: a reader waiting for input never keeps the writer from
//! sending, and a writer waiting for a peer that does not read never keeps the reader
//! from reading. Whichever half runs does all the connection's work: the reader
//! answers pings while the writer is idle, the writer fires the keepalive while the
//! reader is idle.
//!
//! Both tasks wait on the same transport, which keeps one waker per direction: the
//! halves give it a waker that wakes both, so neither misses its wake-up (the other
//! polls once for nothing).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker, ready};

use futures_core::Stream;
use futures_sink::Sink;
use hybi::{CloseCode, MessageKind};
use hybi_std::{Error, Message, Result};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::socket::WebSocket;

/// The reading half of a split [`WebSocket`]: [`recv`](Self::recv), or a [`Stream`].
pub struct ReadHalf<S> {
    shared: Arc<Shared<S>>,
}

/// The writing half of a split [`WebSocket`]: [`send`](Self::send) and friends, or a
/// [`Sink`].
pub struct WriteHalf<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    ws: Mutex<WebSocket<S>>,
    wakers: Arc<Wakers>,
    /// Wakes both halves: given to the transport and the timer.
    waker: Waker,
}

/// The latest waker of each half.
#[derive(Default)]
struct Wakers {
    reader: Mutex<Option<Waker>>,
    writer: Mutex<Option<Waker>>,
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        for slot in [&self.reader, &self.writer] {
            let waker = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Splits the socket into a reader and a writer, for two tasks (see the module
    /// docs of how they share it). [`ReadHalf::reunite`] puts them back together.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        let wakers = Arc::new(Wakers::default());
        let shared = Arc::new(Shared {
            ws: Mutex::new(self),
            waker: Waker::from(Arc::clone(&wakers)),
            wakers,
        });
        (
            ReadHalf {
                shared: Arc::clone(&shared),
            },
            WriteHalf { shared },
        )
    }
}

impl<S> Shared<S> {
    /// Runs `f` on the socket under the lock, with a context whose waker wakes both
    /// halves; `mine` is the calling half's slot for its own waker.
    fn poll<R>(
        &self,
        cx: &mut Context<'_>,
        mine: &Mutex<Option<Waker>>,
        f: impl FnOnce(&mut WebSocket<S>, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        {
            let mut slot = mine.lock().unwrap_or_else(PoisonError::into_inner);
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        let mut both = Context::from_waker(&self.waker);
        f(&mut self.lock(), &mut both)
    }

    fn lock(&self) -> MutexGuard<'_, WebSocket<S>> {
        self.ws.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// The next message, as [`WebSocket::recv`].
    ///
    /// # Cancel safety
    /// Cancel safe, as [`WebSocket::recv`].
    pub async fn recv(&mut self) -> Result<Message> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll function.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        let shared = &self.shared;
        shared.poll(cx, &shared.wakers.reader, |ws, cx| ws.poll_recv(cx))
    }

    /// Puts the socket back together; `Err` gives both halves back if they do not
    /// belong together.
    #[allow(clippy::result_large_err)]
    pub fn reunite(
        self,
        writer: WriteHalf<S>,
    ) -> std::result::Result<WebSocket<S>, (ReadHalf<S>, WriteHalf<S>)> {
        if !Arc::ptr_eq(&self.shared, &writer.shared) {
            return Err((self, writer));
        }
        drop(writer);
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => Ok(shared
                .ws
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)),
            // Unreachable: the two halves held the only references.
            Err(shared) => Err((
                ReadHalf {
                    shared: Arc::clone(&shared),
                },
                WriteHalf { shared },
            )),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    fn poll_with<R>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut WebSocket<S>, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        self.shared.poll(cx, &self.shared.wakers.writer, f)
    }

    /// Sends a message and returns once it is written, as [`WebSocket::send`].
    ///
    /// # Cancel safety
    /// As [`WebSocket::send`]: once polled, the message goes out whole and once.
    pub async fn send(&mut self, message: Message) -> Result<()> {
        self.shared.lock().queue(message)?;
        self.flush().await
    }

    /// Sends a text message (see [`send`](Self::send)).
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.shared
            .lock()
            .driver
            .conn
            .send_text(text)
            .map_err(Error::Send)?;
        self.flush().await
    }

    /// Sends a binary message (see [`send`](Self::send)).
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.shared
            .lock()
            .driver
            .conn
            .send_binary(data)
            .map_err(Error::Send)?;
        self.flush().await
    }

    /// Sends one piece of a message (see [`WebSocket::send_fragment`]).
    pub async fn send_fragment(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<()> {
        let sent = self
            .shared
            .lock()
            .driver
            .conn
            .send_fragment(kind, data, fin);
        sent.map_err(Error::Send)?;
        self.flush().await
    }

    /// Sends a ping (see [`WebSocket::ping`]).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<()> {
        self.shared
            .lock()
            .driver
            .conn
            .send_ping(payload)
            .map_err(Error::Send)?;
        self.flush().await
    }

    /// Starts the closing handshake (see [`WebSocket::close`]); the reader sees the
    /// peer's answer and the end.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.shared
            .lock()
            .driver
            .conn
            .close(code, reason)
            .map_err(Error::Send)?;
        self.flush().await
    }

    /// Writes and flushes everything queued.
    ///
    /// # Cancel safety
    /// Cancel safe: what is not written stays queued, in order.
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.poll_with(cx, |ws, cx| Pin::new(ws).poll_flush(cx))).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        match ready!(self.get_mut().poll_recv(cx)) {
            Err(Error::ConnectionClosed) => Poll::Ready(None),
            other => Poll::Ready(Some(other)),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_with(cx, |ws, cx| Pin::new(ws).poll_ready(cx))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<()> {
        self.shared.lock().queue(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_with(cx, |ws, cx| Pin::new(ws).poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_with(cx, |ws, cx| Pin::new(ws).poll_close(cx))
    }
}

impl<S> std::fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf").finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}
