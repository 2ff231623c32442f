//! Cancel safety: over a slow transport (a few bytes per call, `Pending` every other
//! call), every `recv`, `send` and `flush` future is dropped at each `Pending` it
//! returns and the call started again; no message may be lost, duplicated or
//! reordered, in either direction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use hybi_tokio::{Error, Message, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// A transport that moves at most `step` bytes a call and says `Pending` (waking at
/// once) on every other call, so that every future above it stops often.
struct Slow {
    inner: DuplexStream,
    step: usize,
    /// Per direction: the next call stalls.
    stall_read: bool,
    stall_write: bool,
}

/// Flips `flag`: true (and a wake-up at once) every other call.
fn stall(flag: &mut bool, cx: &mut Context<'_>) -> bool {
    *flag = !*flag;
    if *flag {
        cx.waker().wake_by_ref();
    }
    *flag
}

impl AsyncRead for Slow {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if stall(&mut me.stall_read, cx) {
            return Poll::Pending;
        }
        let n = buf.remaining().min(me.step);
        let mut small = ReadBuf::new(buf.initialize_unfilled_to(n));
        let result = Pin::new(&mut me.inner).poll_read(cx, &mut small);
        let got = small.filled().len();
        buf.advance(got);
        result
    }
}

impl AsyncWrite for Slow {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if stall(&mut me.stall_write, cx) {
            return Poll::Pending;
        }
        let n = data.len().min(me.step);
        Pin::new(&mut me.inner).poll_write(cx, &data[..n])
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Polls `fut` once: its output, or `None` if it was pending (it is then dropped).
async fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    match poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// The next message, with every `recv` future dropped at its first `Pending`.
async fn recv_dropping<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocket<S>,
    drops: &mut usize,
) -> Result<Message, Error> {
    loop {
        if let Some(result) = poll_once(ws.recv()).await {
            return result;
        }
        *drops += 1;
        tokio::task::yield_now().await;
    }
}

/// Sends `message` with the `send` future dropped at its first `Pending`, then
/// `flush` futures each dropped at theirs, until everything is written.
async fn send_dropping<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocket<S>,
    message: Message,
    drops: &mut usize,
) {
    if let Some(result) = poll_once(ws.send(message)).await {
        return result.unwrap();
    }
    loop {
        *drops += 1;
        tokio::task::yield_now().await;
        if let Some(result) = poll_once(ws.flush()).await {
            return result.unwrap();
        }
    }
}

fn messages() -> Vec<Message> {
    (0..120)
        .map(|i| match i % 3 {
            0 => Message::Text(format!("text {i} {}", "é".repeat(i))),
            1 => Message::Binary(vec![i as u8; i * 37]),
            _ => Message::Text(String::new()),
        })
        .collect()
}

#[tokio::test]
async fn no_message_is_lost_or_duplicated_when_futures_are_dropped_at_every_pending() {
    let (client_end, server_end) = tokio::io::duplex(256);
    let server = tokio::spawn(async move {
        let slow = Slow {
            inner: server_end,
            step: 5,
            stall_read: false,
            stall_write: false,
        };
        let mut ws = hybi_tokio::accept(slow).await.unwrap();
        let mut drops = 0;
        // Echo each data message, every future dropped at each Pending.
        loop {
            match recv_dropping(&mut ws, &mut drops).await {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                    send_dropping(&mut ws, m, &mut drops).await
                }
                Ok(_) => {}
                Err(Error::ConnectionClosed) => return drops,
                Err(e) => panic!("server: {e}"),
            }
        }
    });
    let slow = Slow {
        inner: client_end,
        step: 3,
        stall_read: true,
        stall_write: true,
    };
    let (mut ws, _) = hybi_tokio::client_async("ws://localhost/", slow)
        .await
        .unwrap();
    let want = messages();
    let mut drops = 0;
    // One message, then its echo: a peer that only writes while the other only
    // writes would fill both directions' buffers for good, with any library.
    for (i, m) in want.iter().enumerate() {
        send_dropping(&mut ws, m.clone(), &mut drops).await;
        let got = recv_dropping(&mut ws, &mut drops).await.unwrap();
        assert_eq!(&got, m, "echo {i}");
    }
    send_dropping(
        &mut ws,
        Message::Close(hybi_tokio::CloseInfo {
            code: hybi_tokio::CloseCode::NORMAL,
            reason: "bye".into(),
        }),
        &mut drops,
    )
    .await;
    // Only the server's close frame is left, then the end: nothing was duplicated.
    let last = recv_dropping(&mut ws, &mut drops).await.unwrap();
    assert!(
        matches!(last, Message::Close(ref c) if c.code == hybi_tokio::CloseCode::NORMAL),
        "{last:?}"
    );
    assert!(matches!(
        recv_dropping(&mut ws, &mut drops).await,
        Err(Error::ConnectionClosed)
    ));
    let server_drops = server.await.unwrap();
    assert!(
        drops > 500 && server_drops > 500,
        "futures dropped: client {drops}, server {server_drops}"
    );
}
