//! The client's view of the handshake's outcome: a refusal's status, headers and body
//! in the error (whose chain says each thing once), and a 101's status, headers and
//! subprotocol in the [`Response`](hybi_tokio::Response), as hybi-std's client has them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use hybi_tokio::{ClientBuilder, Decision, Error, accept_with, connect_async};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every message of the chain, outermost first.
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        out.push(e.to_string());
        next = e.source();
    }
    out
}

#[tokio::test]
async fn a_refusal_gives_the_client_its_status_headers_and_whole_body() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/private", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client hung up");
            request.extend_from_slice(&buf[..n]);
        }
        let head =
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 29\r\nX-Reason: origin\r\n\r\nmembers";
        tcp.write_all(head).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = tcp.write_all(b" only, says the server").await;
        // The connection stays open: the client stops at the Content-Length.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let started = Instant::now();
    let e = ClientBuilder::new(&url)
        .handshake_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{e}");
    let r = e.rejection().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!((r.status(), r.reason()), (403, "Forbidden"));
    assert_eq!(r.headers().get_str("x-reason"), Some("origin"));
    assert_eq!(r.body_str(), Some("members only, says the server"));
    assert_eq!(
        chain(&e),
        ["handshake failed: server answered 403 Forbidden"]
    );
}

#[tokio::test]
async fn hybi_tokio_s_own_refusal_reaches_the_client_with_its_body() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/private", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept_with(tcp, |_| Decision::reject(403, "members only")).await
    });
    let e = connect_async(&url).await.unwrap_err();
    let r = e.rejection().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!((r.status(), r.body()), (403, &b"members only"[..]));
    assert!(matches!(server.await.unwrap(), Err(Error::Handshake(_))));
}

#[tokio::test]
async fn a_successful_handshake_tells_its_status_headers_and_subprotocol() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept_with(tcp, |_| {
            Decision::accept()
                .with_protocol("chat")
                .with_header("X-Served-By", "hybi")
        })
        .await
        .map(drop)
    });
    let (_ws, response) = ClientBuilder::new(&url)
        .protocol("chat")
        .connect()
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(
        (response.protocol(), response.subprotocol()),
        (Some("chat"), Some("chat"))
    );
    assert_eq!(response.header("x-served-by"), Some("hybi"));
    assert!(response.headers().contains("Sec-WebSocket-Accept"));
    assert_eq!(response.extensions(), None);
    server.await.unwrap().unwrap();
}
