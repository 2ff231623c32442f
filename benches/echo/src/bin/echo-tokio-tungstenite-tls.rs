//! tokio-tungstenite echo server over TLS (wss): tokio-rustls (rustls 0.23, ring)
//! accepts the TLS connection, then tokio-tungstenite serves it exactly as
//! `echo-tokio-tungstenite` does (`StreamExt::forward` of the text and binary
//! messages back), on a `current_thread` tokio runtime: the crates' own examples put
//! together. rustls' default server configuration (TLS 1.2 and 1.3, session tickets
//! as rustls sends them by default).
//!
//! Usage: `echo-tokio-tungstenite-tls ADDR --tls-cert FILE --tls-key FILE`.

use futures_util::{StreamExt, TryStreamExt, future};
use hybi_echo_bench::{listen_addr, serve_tokio, tls};
use tokio_rustls::TlsAcceptor;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cert, key)) = tls::server_files(&args) else {
        eprintln!("usage: echo-tokio-tungstenite-tls ADDR --tls-cert FILE --tls-key FILE");
        std::process::exit(2);
    };
    let acceptor = TlsAcceptor::from(tls::server_config(&cert, &key)?);
    serve_tokio("tokio-tungstenite over TLS", listen_addr(), move |stream| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (write, read) = ws.split();
            let _ = read
                .try_filter(|m| future::ready(m.is_text() || m.is_binary()))
                .forward(write)
                .await;
        }
    })
}
