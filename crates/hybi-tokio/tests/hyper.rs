//! hybi behind hyper 1 and axum: a hyper server answering upgrades with
//! `upgrade::upgrade_with`, an axum app with the `WebSocketUpgrade` extractor, each
//! talked to by hybi-tokio's client; subprotocols, refusals before the handler runs,
//! and plain HTTP on the same routes.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;

use http_body_util::Full;
use hybi_tokio::axum::WebSocketUpgrade;
use hybi_tokio::{
    ClientBuilder, CloseCode, Config, Decision, Error, HandshakeError, Message, upgrade,
};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Echoes data messages until the end.
async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut ws: hybi_tokio::WebSocket<S>,
) {
    while let Ok(message) = ws.recv().await {
        if message.is_data() && ws.send(message).await.is_err() {
            break;
        }
    }
}

async fn hyper_service(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if !upgrade::is_upgrade_request(&req) {
        return Ok(Response::new(Full::new(Bytes::from_static(
            b"plain HTTP here\n",
        ))));
    }
    let (response, ws) =
        upgrade::upgrade_with(&mut req, Config::default(), |request| {
            match request.path() {
                "/echo" => Decision::accept().with_header("x-behind", "hyper"),
                _ => Decision::reject(404, "no such socket"),
            }
        });
    if let Some(ws) = ws {
        tokio::spawn(async move { echo(ws.await.unwrap()).await });
    }
    Ok(response)
}

/// A hyper 1 HTTP/1.1 server with upgrades, on a free port.
async fn hyper_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(tcp);
                let service = hyper::service::service_fn(hyper_service);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr.to_string()
}

/// Sends a raw HTTP/1.1 request and returns the whole answer.
async fn raw(addr: &str, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn behind_hyper_upgrades_echo_and_refusals() {
    let addr = hyper_server().await;
    let (mut ws, response) = hybi_tokio::connect_async(&format!("ws://{addr}/echo"))
        .await
        .unwrap();
    assert_eq!(response.headers().get_str("x-behind"), Some("hyper"));
    for size in [3usize, 70_000, 1 << 20] {
        let data = vec![7u8; size];
        ws.send_binary(&data).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::Binary(data));
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(matches!(ws.recv().await.unwrap(), Message::Close(_)));

    // The application's refusal, with its status.
    let err = hybi_tokio::connect_async(&format!("ws://{addr}/other"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Handshake(HandshakeError::Response(_)))
            && matches!(&err, Error::Handshake(e) if e.status() == Some(404)),
        "{err:?}"
    );
    // An invalid upgrade (no key) gets the engine's 400; plain HTTP still works.
    let answer = raw(
        &addr,
        "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = raw(
        &addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("plain HTTP here\n"),
        "{answer}"
    );
}

async fn axum_chat(ws: WebSocketUpgrade) -> axum::response::Response {
    ws.protocols(["chat.v2", "chat.v1"])
        .header("x-behind", "axum")
        .on_upgrade(echo)
}

async fn axum_server() -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/chat", get(axum_chat))
        .route("/", get(|| async { "plain HTTP here\n" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr.to_string()
}

#[tokio::test]
async fn behind_axum_with_the_extractor() {
    let addr = axum_server().await;
    let (mut ws, response) = ClientBuilder::new(&format!("ws://{addr}/chat"))
        .protocol("chat.v1")
        .protocol("chat.v3")
        .connect()
        .await
        .unwrap();
    assert_eq!(response.protocol(), Some("chat.v1"));
    assert_eq!(response.headers().get_str("x-behind"), Some("axum"));
    ws.send_text("through axum").await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        Message::Text("through axum".into())
    );
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(matches!(ws.recv().await.unwrap(), Message::Close(_)));

    // No subprotocol in common: none chosen, still upgraded.
    let (_ws, response) = ClientBuilder::new(&format!("ws://{addr}/chat"))
        .protocol("other")
        .connect()
        .await
        .unwrap();
    assert_eq!(response.protocol(), None);

    // Rejected by the extractor before the handler runs: another method, no upgrade.
    let answer = raw(
        &addr,
        "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 426"),
        "{answer}"
    );
    let answer = raw(
        &addr,
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{answer}"
    );
    let answer = raw(
        &addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.ends_with("plain HTTP here\n"), "{answer}");
}
