//! Reading an HTTP head (a request or a response) from an async transport, and
//! ending a transport after a refusal.

use std::time::Duration;

use hybi_std::{Error, HandshakeError, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads until `feed` has a whole head (it keeps the bytes that follow it), within
/// `timeout`.
pub(crate) async fn read_head<S, T>(
    stream: &mut S,
    timeout: Duration,
    mut feed: impl FnMut(&[u8]) -> Result<Option<T>>,
) -> Result<T>
where
    S: AsyncRead + Unpin,
{
    let read = async {
        // On the heap: an array here would be part of every connection's task (a
        // future keeps the room of its largest state) for as long as it lives.
        let mut buf = vec![0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(Error::Handshake(HandshakeError::UnexpectedEof));
            }
            if let Some(done) = feed(&buf[..n])? {
                return Ok(done);
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(Error::Handshake(HandshakeError::Timeout)))
}

/// Writes an HTTP answer that ends the connection (a refusal), then shuts the
/// transport down after reading (and dropping) what the peer still sends for a
/// moment, so the answer is not destroyed by a reset.
pub(crate) async fn answer_and_end<S>(stream: &mut S, answer: &[u8])
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let end = async {
        stream.write_all(answer).await?;
        stream.flush().await?;
        stream.shutdown().await?;
        let mut scratch = vec![0u8; 1024];
        while stream.read(&mut scratch).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_millis(200), end).await;
}
