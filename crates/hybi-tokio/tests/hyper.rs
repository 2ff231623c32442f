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
    // `any`: over HTTP/2 the upgrade is a CONNECT.
    let app = axum::Router::new()
        .route("/chat", axum::routing::any(axum_chat))
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

/// WebSockets over HTTP/2 (RFC 8441): a hyper h2 server with extended CONNECT on,
/// `upgrade_with` answering, and a hyper h2 client opening the stream; hybi runs on it
/// in both roles.
#[tokio::test]
async fn over_http2_with_extended_connect() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                builder.enable_connect_protocol();
                let _ = builder
                    .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(hyper_service))
                    .await;
            });
        }
    });

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let connect = |path: &str, protocol: &str| {
        Request::builder()
            .method(hyper::Method::CONNECT)
            .uri(format!("http://{addr}{path}"))
            .version(hyper::Version::HTTP_2)
            .extension(hyper::ext::Protocol::from(protocol))
            .header("sec-websocket-version", "13")
            .header("sec-websocket-protocol", "chat.v1")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap()
    };
    // Not a WebSocket: :protocol is something else.
    let response = sender
        .send_request(connect("/echo", "something-else"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Refused by the application, with its status.
    let response = sender
        .send_request(connect("/other", "websocket"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // Accepted: 200, no accept key or connection fields, the header the decision added.
    let response = sender
        .send_request(connect("/echo", "websocket"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("x-behind").unwrap(), "hyper");
    assert!(response.headers().get("sec-websocket-accept").is_none());
    let stream = hyper::upgrade::on(response).await.unwrap();
    let conn = hybi_tokio::hybi::Connection::client(Config::default(), |b: &mut [u8]| b.fill(7));
    let mut ws = hybi_tokio::WebSocket::from_parts(TokioIo::new(stream), conn);
    for size in [5usize, 100_000] {
        let data = vec![3u8; size];
        ws.send_binary(&data).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::Binary(data));
    }
    // A second WebSocket on the same HTTP/2 connection, at the same time.
    let response = sender
        .send_request(connect("/echo", "websocket"))
        .await
        .unwrap();
    let stream = hyper::upgrade::on(response).await.unwrap();
    let conn = hybi_tokio::hybi::Connection::client(Config::default(), |b: &mut [u8]| b.fill(9));
    let mut second = hybi_tokio::WebSocket::from_parts(TokioIo::new(stream), conn);
    second.send_text("two at once").await.unwrap();
    ws.send_text("one").await.unwrap();
    assert_eq!(
        second.recv().await.unwrap(),
        Message::Text("two at once".into())
    );
    assert_eq!(ws.recv().await.unwrap(), Message::Text("one".into()));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(matches!(ws.recv().await.unwrap(), Message::Close(_)));
}

/// The axum extractor over HTTP/2: `axum::serve` turns extended CONNECT on; a hyper h2
/// client opens a WebSocket stream and picks a subprotocol.
#[tokio::test]
async fn behind_axum_over_http2() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let addr = axum_server().await;
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(hyper::Method::CONNECT)
        .uri(format!("http://{addr}/chat"))
        .version(hyper::Version::HTTP_2)
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat.v2")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "chat.v2"
    );
    let stream = hyper::upgrade::on(response).await.unwrap();
    let conn = hybi_tokio::hybi::Connection::client(Config::default(), |b: &mut [u8]| b.fill(5));
    let mut ws = hybi_tokio::WebSocket::from_parts(TokioIo::new(stream), conn);
    ws.send_text("axum over h2").await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        Message::Text("axum over h2".into())
    );
}
