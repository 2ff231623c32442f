//! An echo server on hybi-tokio, one current_thread runtime, as the echo benchmarks
//! run it: `cargo run --release -p hybi-tokio --example tokio-echo-server -- ADDR`
//! (default 127.0.0.1:9001). Every path echoes; data messages go back as they came.
//!
//! Each echo is queued, not sent: the next `recv` writes what is queued once no
//! more input is ready, so a burst of messages goes back in one write (as a
//! `Stream::forward` into the `Sink` would), and a flush waits only when more than
//! the high-water mark is queued (a peer that does not read).
use hybi_tokio::{DEFAULT_HIGH_WATER, Error, accept};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&addr).await?;
        println!("echoing on ws://{}", listener.local_addr()?);
        loop {
            let (tcp, _) = listener.accept().await?;
            tokio::spawn(async move {
                let mut ws = accept(tcp).await?;
                loop {
                    match ws.recv().await {
                        Ok(message) if message.is_data() => {
                            ws.queue(message)?;
                            if ws.buffered_amount() > DEFAULT_HIGH_WATER {
                                ws.flush().await?;
                            }
                        }
                        Ok(_) => {} // pings are answered, the close frame echoed
                        Err(Error::ConnectionClosed) => return Ok::<(), Error>(()),
                        Err(e) => return Err(e),
                    }
                }
            });
        }
    })
}
