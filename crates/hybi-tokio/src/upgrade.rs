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

/// True if `request` asks for a WebSocket: `Upgrade: websocket` over HTTP/1.1, an
/// extended `CONNECT` (one with a `:protocol`) over HTTP/2. Whether it is a valid one
/// is for [`upgrade_with`] to say.
pub fn is_upgrade_request<B>(request: &Request<B>) -> bool {
    if is_h2(request.version()) {
        return request.method() == http::Method::CONNECT
            && request.extensions().get::<hyper::ext::Protocol>().is_some();
    }
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
/// Over HTTP/2 (RFC 8441: a server built with hyper's `enable_connect_protocol`), the
/// request is an extended `CONNECT` with `:protocol = websocket`, and the answer a
/// 200 with the same subprotocol and extension fields; the WebSocket then runs on
/// that stream.
///
/// `decide` sees the validated request (path, headers, offered subprotocols);
/// permessage-deflate is agreed under `config.deflate` when the client offers it.
pub fn upgrade_with<B>(
    request: &mut Request<B>,
    config: Config,
    decide: impl FnOnce(&UpgradeRequest) -> Decision,
) -> (Response<Full<Bytes>>, Option<UpgradeFut>) {
    let protocol = request
        .extensions()
        .get::<hyper::ext::Protocol>()
        .map(|p| p.as_str().to_owned());
    let version = request.version();
    let h2 = is_h2(version);
    let upgrade = match validate(
        request.method().as_str(),
        version,
        request.uri(),
        request.headers(),
        protocol.as_deref(),
    ) {
        Ok(upgrade) => upgrade,
        Err(refusal) => return (*refusal, None),
    };
    match upgrade.answer_with(&decide(&upgrade), config.deflate.as_ref()) {
        Answer::Upgrade(accepted) => {
            let on = hyper::upgrade::on(request);
            let response = response_for(accepted.response(), h2);
            let future = async move {
                let upgraded = on.await.map_err(|e| Error::Io(std::io::Error::other(e)))?;
                let conn = accepted.into_connection(config);
                Ok(WebSocket::from_parts(TokioIo::new(upgraded), conn))
            };
            (response, Some(UpgradeFut(Box::pin(future))))
        }
        Answer::Refuse(refusal) | Answer::Invalid(_, refusal) => (response_for(&refusal, h2), None),
    }
}

/// A request over HTTP/2 or later.
pub(crate) fn is_h2(version: http::Version) -> bool {
    version >= http::Version::HTTP_2
}

/// The request's checks, over HTTP/1.1 (RFC 6455 §4.2.1) or HTTP/2 (RFC 8441 §5).
///
/// An HTTP/2 request is the same handshake without `Sec-WebSocket-Key` (the stream,
/// not a key, proves the peer asked), `Upgrade` and `Connection` (HTTP/2 has neither),
/// with `CONNECT` for `GET`, `:protocol = websocket` and `:authority` for `Host`. It
/// is put to the engine's checks as the HTTP/1.1 request it stands for, those fields
/// filled in, so both versions pass the same checks and negotiate alike.
pub(crate) fn validate(
    method: &str,
    version: http::Version,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    protocol: Option<&str>,
) -> std::result::Result<UpgradeRequest, Box<Response<Full<Bytes>>>> {
    let h2 = is_h2(version);
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let fields = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    if !h2 {
        return UpgradeRequest::from_parts(method, target, fields)
            .map_err(|e| Box::new(response_for(&e.response(), false)));
    }
    if method != "CONNECT" || protocol.is_none_or(|p| !p.eq_ignore_ascii_case("websocket")) {
        let mut refusal = Response::new(Full::new(Bytes::from_static(
            b"a WebSocket over HTTP/2 is an extended CONNECT with :protocol websocket\n",
        )));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(Box::new(refusal));
    }
    let authority = uri.authority().map(|a| a.as_str().to_owned());
    let host = (!headers.contains_key(http::header::HOST))
        .then_some(authority)
        .flatten();
    let standing_in = [
        ("upgrade", "websocket".as_bytes()),
        ("connection", b"Upgrade"),
        // Any valid key: HTTP/2 has none, and nothing reads the accept it yields.
        ("sec-websocket-key", b"AAAAAAAAAAAAAAAAAAAAAA=="),
    ];
    let fields = fields
        .filter(|(name, _)| !matches!(*name, "upgrade" | "connection" | "sec-websocket-key"))
        .chain(standing_in)
        .chain(host.iter().map(|h| ("host", h.as_bytes())));
    UpgradeRequest::from_parts("GET", target, fields)
        .map_err(|e| Box::new(response_for(&e.response(), true)))
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

/// The engine's HTTP answer as an `http` response (for HTTP/2: a 101 becomes 200, and
/// the fields HTTP/2 does not have are left out).
pub(crate) fn response_for(answer: &hybi::handshake::Response, h2: bool) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(answer.body())));
    let status = match answer.status() {
        101 if h2 => 200,
        status => status,
    };
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    // hyper sets the length from the body; HTTP/2 has no connection-level fields and
    // no accept for a key it never sent.
    let skip = |name: &str| {
        name.eq_ignore_ascii_case("content-length")
            || (h2
                && ["connection", "upgrade", "sec-websocket-accept"]
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n)))
    };
    for header in answer.headers().iter().filter(|h| !skip(h.name())) {
        let name = HeaderName::from_bytes(header.name().as_bytes());
        let value = HeaderValue::from_bytes(header.value());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    response
}
