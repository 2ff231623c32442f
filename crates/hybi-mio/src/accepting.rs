//! A server connection before it opens: reading the upgrade request, and the answer
//! (the 101 and an [`Open`] connection, a page, or a refusal).

use hybi::Instant;
use hybi::handshake::{Answer, HttpRequest, Incoming, ServerHandshake, UpgradeRequest};

use crate::app::App;
use crate::env::Env;
use crate::handler::ConnInfo;
use crate::open::Open;
use crate::socket::{Io, Read, Unsent};

const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// Reading the request, until the handshake deadline.
pub(crate) struct Accepting {
    handshake: ServerHandshake,
    deadline: Instant,
}

/// How a turn leaves the connection.
pub(crate) enum Turn {
    /// Still reading: wait for input, or until the deadline.
    Wait(Box<Accepting>, Instant),
    /// Upgraded: the 101 is queued before the engine's output.
    Open(Box<Open>),
    /// An HTTP answer to write, then the connection closes.
    Answer(Vec<u8>),
    /// The client left, failed or ran out of time before its request was complete.
    Gone,
}

impl Accepting {
    pub(crate) fn new(env: &Env<'_>) -> Box<Accepting> {
        Box::new(Accepting {
            handshake: ServerHandshake::with_limits(env.app.limits),
            deadline: env.now + env.app.handshake_timeout,
        })
    }

    /// Reads what has arrived of the request and answers it once it is complete.
    /// Bytes after the request stay in the socket, or, if they came in the same read,
    /// go to the engine with the handshake.
    pub(crate) fn turn(
        mut self: Box<Self>,
        io: &mut Io,
        info: &ConnInfo,
        env: &mut Env<'_>,
    ) -> Turn {
        if env.now >= self.deadline {
            if io.tls_handshaking() {
                log::info!("{}: TLS handshake failed: timed out", info.addr);
            }
            return Turn::Gone;
        }
        let mut buf = [0u8; 4096];
        while io.readable {
            let n = match io.recv(&mut buf) {
                Read::Data(n) => n,
                Read::Drained => break,
                Read::End => {
                    if io.tls_handshaking() {
                        log::info!("{}: TLS handshake failed: connection closed", info.addr);
                    }
                    return Turn::Gone;
                }
                Read::Failed(e) => return failed(e, io, info),
            };
            match self.handshake.receive_any(&buf[..n]) {
                Ok(None) => {}
                Ok(Some(Incoming::Upgrade(request))) => return upgrade(&request, info, env),
                Ok(Some(Incoming::Http(request))) => return Turn::Answer(page(&request, env.app)),
                Err(e) => {
                    log::debug!("{}: bad request: {e}", info.addr);
                    return Turn::Answer(e.response().to_bytes());
                }
            }
        }
        let deadline = self.deadline;
        Turn::Wait(self, deadline)
    }
}

/// Reading failed: over TLS, logged (a plain HTTP client is answered `400` in plain
/// text).
fn failed(e: std::io::Error, io: &mut Io, info: &ConnInfo) -> Turn {
    #[cfg(feature = "tls")]
    match crate::tls::tls_error(e) {
        Ok(hybi_std::TlsError::NotTls) => {
            log::info!(
                "{}: TLS handshake failed: the client spoke plain HTTP; answered 400",
                info.addr
            );
            io.tls = None;
            return Turn::Answer(crate::tls::NOT_TLS_ANSWER.to_vec());
        }
        Ok(tls) => log::info!("{}: TLS handshake failed: {tls}", info.addr),
        Err(e) => log::debug!("{}: read failed: {e}", info.addr),
    }
    #[cfg(not(feature = "tls"))]
    let _ = (e, io, info);
    Turn::Gone
}

/// Routes a valid upgrade request: the application's hook decides, the route's
/// factory makes the handler.
fn upgrade(request: &UpgradeRequest, info: &ConnInfo, env: &mut Env<'_>) -> Turn {
    let (decision, route) = env.app.routes.decide(request);
    match (
        request.answer_with(&decision, env.app.config.deflate.as_ref()),
        route,
    ) {
        (Answer::Upgrade(accepted), Some(factory)) => {
            let preface = Unsent::new(accepted.response().to_bytes());
            let handler = factory(request);
            let ws = accepted.into_connection(env.app.config.clone());
            Turn::Open(Open::start(ws, handler, preface, None, info, env))
        }
        (Answer::Refuse(response) | Answer::Invalid(_, response), _) => {
            Turn::Answer(response.to_bytes())
        }
        // Not reached: every accepting decision comes with its route.
        (Answer::Upgrade(_), None) => Turn::Answer(NOT_FOUND.to_vec()),
    }
}

/// Answers a plain HTTP request: a page, or why there is none.
fn page(request: &HttpRequest, app: &App) -> Vec<u8> {
    app.pages
        .answer(request, app.routes.contains(request.path()))
}
