//! The application's answer to an upgrade request, and turning it into bytes.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::response::{InvalidReply, Response};
use super::server::{ServerAccepted, UpgradeRequest};
use crate::deflate::{Agreement, DeflateConfig, negotiate};

/// What the application decides about an [`UpgradeRequest`]: accept it (optionally
/// choosing one of the offered subprotocols, with extra response headers) or refuse it
/// with an HTTP status, headers and body. Adapters take one from a callback and pass it
/// to [`UpgradeRequest::answer`].
///
/// ```
/// use hybi::handshake::Decision;
/// let yes = Decision::accept().with_protocol("chat.v2").with_header("X-Served-By", "hybi");
/// let no = Decision::reject(403, "forbidden origin");
/// assert!(matches!(yes, Decision::Accept { .. }));
/// assert!(matches!(no, Decision::Reject { status: 403, .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Upgrade the connection.
    Accept {
        /// The chosen subprotocol (must be one the client offered).
        protocol: Option<String>,
        /// Extra header fields for the 101 response.
        headers: Vec<(String, String)>,
        /// What to do about permessage-deflate.
        deflate: DeflateChoice,
    },
    /// Refuse the upgrade.
    Reject {
        /// The HTTP status (200..=599, e.g. 403).
        status: u16,
        /// Extra header fields.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
}

impl Decision {
    /// Accept, without subprotocol or extra headers.
    pub fn accept() -> Decision {
        Decision::Accept {
            protocol: None,
            headers: Vec::new(),
            deflate: DeflateChoice::Negotiate,
        }
    }

    /// Refuse with `status` and a short plain-text body.
    pub fn reject(status: u16, body: &str) -> Decision {
        Decision::Reject {
            status,
            headers: vec![(
                "Content-Type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            )],
            body: body.as_bytes().to_vec(),
        }
    }

    /// Sets the subprotocol of an `Accept` (no effect on a `Reject`).
    pub fn with_protocol(mut self, name: &str) -> Decision {
        if let Decision::Accept { protocol, .. } = &mut self {
            *protocol = Some(name.to_owned());
        }
        self
    }

    /// Accepts without permessage-deflate, whatever the client offered (no effect on
    /// a `Reject`).
    pub fn without_deflate(mut self) -> Decision {
        if let Decision::Accept { deflate, .. } = &mut self {
            *deflate = DeflateChoice::Decline;
        }
        self
    }

    /// Accepts with these permessage-deflate parameters (chosen from
    /// [`UpgradeRequest::deflate_offers`], say with
    /// [`negotiate::choose`](crate::deflate::negotiate::choose)); no effect on a
    /// `Reject`.
    pub fn with_deflate(mut self, agreement: Agreement) -> Decision {
        if let Decision::Accept { deflate, .. } = &mut self {
            *deflate = DeflateChoice::Agree(agreement);
        }
        self
    }

    /// Adds a header field to the answer.
    pub fn with_header(mut self, name: &str, value: &str) -> Decision {
        match &mut self {
            Decision::Accept { headers, .. } | Decision::Reject { headers, .. } => {
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        self
    }
}

/// What an accepted upgrade does about permessage-deflate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeflateChoice {
    /// Accept the client's first acceptable offer under the connection's
    /// [`Config::deflate`](crate::Config::deflate) (off if that is `None`): the default.
    Negotiate,
    /// No compression, whatever was offered.
    Decline,
    /// These parameters (they must answer one of the client's offers).
    Agree(Agreement),
}

/// A [`Decision`] applied to a request: what to write, and whether a connection opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Upgrade: write `accepted.response()`, then run `accepted.into_connection(..)`.
    Upgrade(ServerAccepted),
    /// Refused as the application asked: write the response, then close.
    Refuse(Response),
    /// The decision could not be honoured (a subprotocol the client did not offer, a
    /// malformed header, a bad status): write the 500 response, then close.
    Invalid(InvalidReply, Response),
}

impl Answer {
    /// The HTTP status this answer sends.
    pub fn status(&self) -> u16 {
        match self {
            Answer::Upgrade(a) => a.response().status(),
            Answer::Refuse(r) | Answer::Invalid(_, r) => r.status(),
        }
    }
}

fn internal_error() -> Response {
    Response::with_body(500, Default::default(), b"")
}

impl UpgradeRequest {
    /// Applies the application's decision: the 101 and the connection, or the
    /// rejection to send. permessage-deflate is negotiated only when the decision
    /// carries an agreement ([`answer_with`](Self::answer_with) negotiates by a config).
    pub fn answer(&self, decision: &Decision) -> Answer {
        self.answer_with(decision, None)
    }

    /// [`answer`](Self::answer), negotiating permessage-deflate under `deflate` (the
    /// connection's [`Config::deflate`](crate::Config::deflate)) when the decision
    /// leaves it to negotiation.
    pub fn answer_with(&self, decision: &Decision, deflate: Option<&DeflateConfig>) -> Answer {
        match decision {
            Decision::Accept {
                protocol,
                headers,
                deflate: choice,
            } => {
                let refs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let agreement = match (choice, deflate) {
                    (DeflateChoice::Agree(a), _) => {
                        let offers = self.deflate_offers();
                        if !offers.iter().flatten().any(|o| a.answers(o)) {
                            return Answer::Invalid(
                                InvalidReply::UnofferedExtension,
                                internal_error(),
                            );
                        }
                        Some(*a)
                    }
                    (DeflateChoice::Negotiate, Some(config)) => {
                        negotiate::choose(&self.deflate_offers(), config)
                    }
                    (DeflateChoice::Negotiate, None) | (DeflateChoice::Decline, _) => None,
                };
                match self.accept_with(protocol.as_deref(), &refs, agreement) {
                    Ok(accepted) => Answer::Upgrade(accepted),
                    Err(e) => Answer::Invalid(e, internal_error()),
                }
            }
            Decision::Reject {
                status,
                headers,
                body,
            } => {
                let refs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                match Response::reject(*status, &refs, body) {
                    Ok(response) => Answer::Refuse(response),
                    Err(e) => Answer::Invalid(e, internal_error()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::ServerHandshake;

    fn request(protocols: &str) -> UpgradeRequest {
        let bytes = alloc::format!(
            "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {protocols}\r\n\r\n"
        );
        match ServerHandshake::new().receive(bytes.as_bytes()) {
            Ok(Some(request)) => request,
            other => panic!("a valid upgrade request: {other:?}"),
        }
    }

    #[test]
    fn accept_with_an_offered_protocol_upgrades() {
        let answer = request("a, b").answer(
            &Decision::accept()
                .with_protocol("b")
                .with_header("X-A", "1"),
        );
        let Answer::Upgrade(accepted) = &answer else {
            panic!("{answer:?}")
        };
        assert_eq!(accepted.protocol(), Some("b"));
        assert_eq!(accepted.response().headers().get_str("x-a"), Some("1"));
        assert_eq!(answer.status(), 101);
    }

    #[test]
    fn an_unoffered_protocol_becomes_a_500() {
        let answer = request("a").answer(&Decision::accept().with_protocol("z"));
        assert!(matches!(
            answer,
            Answer::Invalid(InvalidReply::UnofferedProtocol(_), _)
        ));
        assert_eq!(answer.status(), 500);
    }

    #[test]
    fn a_rejection_carries_status_headers_and_body() {
        let answer =
            request("a").answer(&Decision::reject(403, "no").with_header("X-Why", "origin"));
        let Answer::Refuse(response) = &answer else {
            panic!("{answer:?}")
        };
        assert_eq!(response.status(), 403);
        assert_eq!(response.headers().get_str("x-why"), Some("origin"));
        assert_eq!(response.body(), b"no");
        assert!(matches!(
            request("a").answer(&Decision::reject(101, "")),
            Answer::Invalid(InvalidReply::Status(101), _)
        ));
    }
}
