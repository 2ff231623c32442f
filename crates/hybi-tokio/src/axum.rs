//! An axum extractor (the `axum` feature): [`WebSocketUpgrade`], used as axum's own:
//!
//! ```no_run
//! use axum::{Router, response::Response, routing::get};
//! use hybi_tokio::axum::WebSocketUpgrade;
//!
//! async fn chat(ws: WebSocketUpgrade) -> Response {
//!     ws.protocols(["chat.v2", "chat.v1"]).on_upgrade(|mut ws| async move {
//!         while let Ok(message) = ws.recv().await {
//!             if message.is_data() && ws.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! # async fn demo() -> std::io::Result<()> {
//! let app: Router = Router::new().route("/chat", get(chat));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The request is checked as every hybi server checks it (RFC 6455 §4.2.1): an
//! invalid one is rejected, before the handler runs, with the status and body the
//! engine gives (400, 405, 426). Over HTTP/2 (RFC 8441, which `axum::serve` enables)
//! the request is an extended `CONNECT`: route it with `any(..)` (or `on(MethodFilter::
//! CONNECT, ..)` beside `get`), as with axum's own extractor. Moving from tokio-tungstenite's or axum's extractor
//! is a change of import and of the message type.

use std::future::Future;

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http_body_util::Full;
use hybi::Config;
use hybi::handshake::{Answer, Decision, UpgradeRequest};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::socket::WebSocket;
use crate::upgrade::{UpgradedIo, is_h2, response_for, validate};

/// An extractor for a WebSocket upgrade: the validated request, and what the
/// response will say (subprotocol, headers, the engine's config).
pub struct WebSocketUpgrade {
    request: UpgradeRequest,
    /// Over HTTP/2 (RFC 8441): the answer is a 200.
    h2: bool,
    on_upgrade: OnUpgrade,
    config: Config,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("request", &self.request)
            .field("protocols", &self.protocols)
            .finish_non_exhaustive()
    }
}

/// Why a request is not a WebSocket upgrade hybi can accept: answered with the
/// engine's status, header fields and body (400, 405 with `Allow: GET`, 426 with
/// `Sec-WebSocket-Version: 13`), or 426 when the connection cannot be upgraded (an
/// HTTP/2 request without extended CONNECT, say).
#[derive(Debug)]
pub struct WebSocketUpgradeRejection(http::Response<Full<Bytes>>);

impl WebSocketUpgradeRejection {
    /// The HTTP status of the rejection.
    pub fn status(&self) -> u16 {
        self.0.status().as_u16()
    }
}

impl IntoResponse for WebSocketUpgradeRejection {
    fn into_response(self) -> Response {
        self.0.map(Body::new)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let protocol = parts
            .extensions
            .get::<hyper::ext::Protocol>()
            .map(|p| p.as_str().to_owned());
        let request = validate(
            parts.method.as_str(),
            parts.version,
            &parts.uri,
            &parts.headers,
            protocol.as_deref(),
        )
        .map_err(|refusal| WebSocketUpgradeRejection(*refusal))?;
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
            let mut refusal = http::Response::new(Full::new(Bytes::from_static(
                b"this connection cannot be upgraded\n",
            )));
            *refusal.status_mut() = http::StatusCode::UPGRADE_REQUIRED;
            WebSocketUpgradeRejection(refusal)
        })?;
        Ok(WebSocketUpgrade {
            request,
            h2: is_h2(parts.version),
            on_upgrade,
            config: crate::default_config(),
            protocols: Vec::new(),
            headers: Vec::new(),
        })
    }
}

impl WebSocketUpgrade {
    /// The validated request: path, query, headers, the subprotocols offered.
    pub fn request(&self) -> &UpgradeRequest {
        &self.request
    }

    /// The subprotocols this server speaks, in order of preference: the first the
    /// client also offered is chosen (none if it offered none of them).
    pub fn protocols<I, P>(mut self, protocols: I) -> WebSocketUpgrade
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The subprotocol that will be chosen, if any.
    pub fn selected_protocol(&self) -> Option<&str> {
        let offered = self.request.protocols();
        self.protocols
            .iter()
            .find(|p| offered.contains(p))
            .map(String::as_str)
    }

    /// A header field for the 101 response.
    pub fn header(mut self, name: &str, value: &str) -> WebSocketUpgrade {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The engine's settings for the connection: limits, keepalive, timeouts, and
    /// permessage-deflate (agreed to when set and offered, as browsers do). Default:
    /// [`default_config`](crate::default_config).
    pub fn config(mut self, config: Config) -> WebSocketUpgrade {
        self.config = config;
        self
    }

    /// Answers the upgrade (101) and runs `callback` with the WebSocket, on a task of
    /// its own, once hyper hands over the connection. A decision that cannot be
    /// honoured (an invalid header given to [`header`](Self::header)) answers 500.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket<UpgradedIo>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut decision = Decision::accept();
        if let Some(protocol) = self.selected_protocol() {
            decision = decision.with_protocol(protocol);
        }
        for (name, value) in &self.headers {
            decision = decision.with_header(name, value);
        }
        let WebSocketUpgrade {
            request,
            h2,
            on_upgrade,
            config,
            ..
        } = self;
        match request.answer_with(&decision, config.deflate.as_ref()) {
            Answer::Upgrade(accepted) => {
                let answer = response_for(accepted.response(), h2).map(Body::new);
                tokio::spawn(async move {
                    match on_upgrade.await {
                        Ok(upgraded) => {
                            let conn = accepted.into_connection(config);
                            callback(WebSocket::from_parts(TokioIo::new(upgraded), conn)).await;
                        }
                        Err(e) => log::debug!("WebSocket upgrade failed: {e}"),
                    }
                });
                answer
            }
            Answer::Refuse(refusal) | Answer::Invalid(_, refusal) => {
                response_for(&refusal, h2).map(Body::new)
            }
        }
    }
}
