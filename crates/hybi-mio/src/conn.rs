//! One connection on an event loop: its socket, where it is in its life ([`Phase`]),
//! and the turn it takes when the loop says the socket is ready, a timer fired or a
//! letter came.

use std::time::Duration;

use hybi::handshake::ClientHandshake;
use hybi::{CloseCode, Config, Instant};
use mio::net::TcpStream;

use crate::accepting::{self, Accepting};
use crate::connecting::{self, Connecting};
use crate::env::Env;
use crate::handler::{ConnInfo, Handler};
use crate::open::{self, Open};
use crate::outgoing::{Completion, SendFailure, Task};
use crate::socket::{Io, Read, Unsent};
use crate::tls::Tls;

/// How long a connection that is over waits for the peer's end of input before the
/// socket is dropped anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a connection is in its life. Each phase holds what it needs and nothing
/// else: only `Connecting` and `Open` have a handler, only `Open` an engine.
enum Phase {
    /// Server: reading the upgrade request.
    Accepting(Box<Accepting>),
    /// Client: connecting, writing the request, reading the response.
    Connecting(Box<Connecting>),
    /// The WebSocket is open (or closing): the engine runs, the handler hears it.
    Open(Box<Open>),
    /// Writing an HTTP answer (a page, a refusal) until the deadline; then draining.
    Refusing { answer: Unsent, deadline: Instant },
    /// Over, our sending side shut (once TLS records still queued, and then its
    /// `close_notify`, are written: `shut`): reading and dropping what the peer still
    /// sends until its end of input or the deadline (closing a socket with unread
    /// input would reset it, and could destroy what we sent last).
    Draining { deadline: Instant, shut: bool },
    /// Nothing left: the worker removes the connection.
    Closed,
}

/// A connection and the worker's bookkeeping of it.
pub(crate) struct Conn {
    pub(crate) io: Io,
    pub(crate) info: ConnInfo,
    phase: Phase,
    /// When the phase next needs the clock.
    pub(crate) deadline: Option<Instant>,
    /// The deadline of this connection's one live entry in the worker's timer heap.
    pub(crate) scheduled: Option<Instant>,
    /// Registered for write readiness.
    pub(crate) write_interest: bool,
    /// Queued in the worker's list of connections to drive.
    pub(crate) touched: bool,
}

impl Conn {
    fn new(socket: TcpStream, tls: Option<Box<Tls>>, info: ConnInfo, phase: Phase) -> Conn {
        Conn {
            io: Io::new(socket, tls),
            info,
            phase,
            deadline: None,
            scheduled: None,
            write_interest: false,
            touched: false,
        }
    }

    /// A server connection that has just been accepted (over TLS if the server has a
    /// TLS config). `None` if its TLS session cannot be made (logged).
    pub(crate) fn accepted(socket: TcpStream, info: ConnInfo, env: &Env<'_>) -> Option<Conn> {
        #[cfg(feature = "tls")]
        let tls = match &env.app.tls {
            Some(config) => match Tls::server(config) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    log::warn!("{}: cannot start a TLS session: {e}", info.addr);
                    return None;
                }
            },
            None => None,
        };
        #[cfg(not(feature = "tls"))]
        let tls = None;
        let phase = Phase::Accepting(Accepting::new(env));
        Some(Conn::new(socket, tls, info, phase))
    }

    /// A client connection whose TCP connect is under way (and then, with `tls`,
    /// its TLS handshake).
    pub(crate) fn connecting(
        socket: TcpStream,
        tls: Option<Box<Tls>>,
        info: ConnInfo,
        handshake: ClientHandshake,
        config: Config,
        handler: Box<dyn Handler>,
        deadline: Instant,
    ) -> Conn {
        let phase = Phase::Connecting(Connecting::new(handshake, config, handler, deadline));
        Conn::new(socket, tls, info, phase)
    }

    /// Runs the connection's turn, and the next phase's if it moves on. Returns false
    /// when it is finished and should be removed.
    pub(crate) fn drive(&mut self, env: &mut Env<'_>) -> bool {
        let (io, info) = (&mut self.io, &self.info);
        let mut phase = std::mem::replace(&mut self.phase, Phase::Closed);
        if io.wants_write() && !matches!(phase, Phase::Connecting(_)) {
            // TLS records the socket refused before: they go first. (A failure comes
            // again with the phase's next read or write. A client's records wait for
            // its connect: a write before would take the connect's error.)
            let _ = io.send_pending();
        }
        let stay = loop {
            phase = match phase {
                Phase::Accepting(accepting) => match accepting.turn(io, info, env) {
                    accepting::Turn::Wait(a, at) => break (Phase::Accepting(a), Some(at)),
                    accepting::Turn::Open(open) => Phase::Open(open),
                    accepting::Turn::Answer(bytes) => Phase::Refusing {
                        answer: Unsent::new(bytes),
                        deadline: env.now + env.app.handshake_timeout,
                    },
                    accepting::Turn::Gone => return false,
                },
                Phase::Connecting(connecting) => match connecting.turn(io, info, env) {
                    connecting::Turn::Wait(c, at) => break (Phase::Connecting(c), Some(at)),
                    connecting::Turn::Open(open) => Phase::Open(open),
                    connecting::Turn::Failed => return false,
                },
                Phase::Open(open) => match open.turn(io, info, env) {
                    open::Turn::Wait(open, at) => break (Phase::Open(open), at),
                    open::Turn::Over { drain: true } => drain(env.now),
                    open::Turn::Over { drain: false } => return false,
                },
                Phase::Refusing {
                    mut answer,
                    deadline,
                } => match answer.write_to(io) {
                    Ok(true) => drain(env.now),
                    Ok(false) if env.now < deadline => {
                        break (Phase::Refusing { answer, deadline }, Some(deadline));
                    }
                    Ok(false) | Err(_) => return false,
                },
                Phase::Draining { deadline, shut } => {
                    let shut = shut || io.shutdown_write();
                    if env.now >= deadline {
                        return false;
                    }
                    if io.readable {
                        match io.discard_input() {
                            Read::Drained => {}
                            _ => return false,
                        }
                    }
                    break (Phase::Draining { deadline, shut }, Some(deadline));
                }
                Phase::Closed => return false,
            };
        };
        (self.phase, self.deadline) = stay;
        true
    }

    /// True if the socket should be registered for write readiness: output waits
    /// (the phase's, or TLS records), or a client's connect is under way.
    pub(crate) fn wants_write(&self) -> bool {
        self.io.wants_write()
            || match &self.phase {
                Phase::Connecting(_) => true,
                Phase::Open(open) => open.wants_write(),
                Phase::Refusing { answer, .. } => !answer.is_done(),
                Phase::Accepting(_) | Phase::Draining { .. } | Phase::Closed => false,
            }
    }

    /// Does what a [`Sender`](crate::Sender) posted: at once if the connection is
    /// open, once it opens if it is a client's still connecting; otherwise it fails
    /// with `Gone`.
    pub(crate) fn post(&mut self, task: Task, done: Option<Completion>, env: &mut Env<'_>) {
        match &mut self.phase {
            Phase::Open(open) => open.take(task, done, &mut self.io, &self.info, env.pool),
            Phase::Connecting(connecting) => connecting.hold(task, done, self.info.limit),
            _ => {
                if let Some(done) = done {
                    done.complete(Err(SendFailure::Gone));
                }
            }
        }
    }

    /// Starts the closing handshake for a server shutdown; false if the connection
    /// is not open and can simply be dropped.
    pub(crate) fn shutdown(&mut self) -> bool {
        match &mut self.phase {
            Phase::Open(open) => {
                open.going_away();
                true
            }
            Phase::Refusing { .. } | Phase::Draining { .. } => true,
            Phase::Accepting(_) | Phase::Connecting(_) | Phase::Closed => false,
        }
    }

    /// The connection is being dropped: its handler, if it has one, hears `reason`
    /// (1006; a client that was not open yet hears `ConnectError::Stopped`), and
    /// sends still pending fail.
    pub(crate) fn finish(&mut self, reason: &str) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Open(open) => open.abort(&self.info, CloseCode::ABNORMAL, reason),
            Phase::Connecting(connecting) => connecting.abort(&self.info),
            Phase::Accepting(_)
            | Phase::Refusing { .. }
            | Phase::Draining { .. }
            | Phase::Closed => {}
        }
    }
}

/// Shuts our sending side (the peer sees the end of what we sent: over TLS, once the
/// records still queued and a `close_notify` are written) and waits for the peer's
/// end of input.
fn drain(now: Instant) -> Phase {
    Phase::Draining {
        deadline: now + DRAIN_TIMEOUT,
        shut: false,
    }
}
