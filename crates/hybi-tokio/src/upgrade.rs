//! WebSockets behind hyper 1 (the `hyper` feature): [`upgrade_with`] answers an
//! upgrade request that hyper parsed (the engine's checks and the application's
//! decision, as in [`accept_with`](crate::accept_with)) and gives the future of the
//! [`WebSocket`] over the upgraded connection.
//!
//! ```no_run
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//! use hybi_tokio::{Config, Decision, upgrade};
//!
//! async fn handle(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
//!     if !upgrade::is_upgrade_request(&req) {
//!         return Ok(Response::new(Full::new(Bytes::from("a WebSocket lives here"))));
//!     }
//!     let (response, ws) = upgrade::upgrade_with(&mut req, Config::default(), |_| Decision::accept());
//!     if let Some(ws) = ws {
//!         tokio::spawn(async move {
//!             let mut ws = ws.await?;
//!             while let Ok(message) = ws.recv().await {
//!                 if message.is_data() {
//!                     ws.send(message).await?;
//!                 }
//!             }
//!             Ok::<_, hybi_tokio::Error>(())
//!         });
//!     }
//!     Ok(response)
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hybi::Config;
use hybi::handshake::{Answer, Decision, UpgradeRequest};
use hybi_std::{Error, Result};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;

use crate::socket::WebSocket;

/// The transport of a WebSocket behind hyper: the upgraded connection.
pub type UpgradedIo = TokioIo<Upgraded>;

/// True if `request` asks for a WebSocket (`Upgrade: websocket`); whether it is a
/// valid one is for [`upgrade_with`] to say.
pub fn is_upgrade_request<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get_all(http::header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
}

/// Answers an upgrade request: the response to send (101 with the handshake's
/// header fields, or the refusal: 400/405/426 for an invalid request, the status
/// `decide` chose, 500 for a decision that cannot be honoured), and, when it is a
/// 101, the future of the [`WebSocket`], which completes once hyper has sent the
/// response and handed over the connection.
///
/// `decide` sees the validated request (path, headers, offered subprotocols);
/// permessage-deflate is agreed under `config.deflate` when the client offers it.
pub fn upgrade_with<B>(
    request: &mut Request<B>,
    config: Config,
    decide: impl FnOnce(&UpgradeRequest) -> Decision,
) -> (Response<Full<Bytes>>, Option<UpgradeFut>) {
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    let parsed = UpgradeRequest::from_parts(request.method().as_str(), &target, headers);
    let upgrade = match parsed {
        Ok(upgrade) => upgrade,
        Err(e) => return (response(&e.response()), None),
    };
    match upgrade.answer_with(&decide(&upgrade), config.deflate.as_ref()) {
        Answer::Upgrade(accepted) => {
            let on = hyper::upgrade::on(request);
            let response = response(accepted.response());
            let future = async move {
                let upgraded = on.await.map_err(|e| Error::Io(std::io::Error::other(e)))?;
                let conn = accepted.into_connection(config);
                Ok(WebSocket::from_parts(TokioIo::new(upgraded), conn))
            };
            (response, Some(UpgradeFut(Box::pin(future))))
        }
        Answer::Refuse(refusal) | Answer::Invalid(_, refusal) => (response(&refusal), None),
    }
}

/// The WebSocket over an upgraded hyper connection, once hyper has sent the 101 and
/// given up the connection (from [`upgrade_with`]).
pub struct UpgradeFut(Pin<Box<dyn Future<Output = Result<WebSocket<UpgradedIo>>> + Send>>);

impl Future for UpgradeFut {
    type Output = Result<WebSocket<UpgradedIo>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for UpgradeFut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeFut").finish_non_exhaustive()
    }
}

/// The engine's HTTP answer as an `http` response.
pub(crate) fn response(answer: &hybi::handshake::Response) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(answer.body())));
    *response.status_mut() =
        StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    // hyper sets the length from the body.
    for header in answer
        .headers()
        .iter()
        .filter(|h| !h.name().eq_ignore_ascii_case("content-length"))
    {
        let name = HeaderName::from_bytes(header.name().as_bytes());
        let value = HeaderValue::from_bytes(header.value());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    response
}
