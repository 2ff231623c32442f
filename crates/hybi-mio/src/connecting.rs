//! A client connection before it opens: the TCP connect, the request, the response,
//! and what its [`Sender`](crate::Sender)s post meanwhile.

use std::collections::VecDeque;

use hybi::handshake::{ClientHandshake, Rejected, ResponseError};
use hybi::{Config, Instant};
use hybi_std::Response;
use hybi_std::adapter::mask_rng;

use crate::client::ConnectError;
use crate::env::Env;
use crate::handler::{ConnInfo, Context, Handler};
use crate::open::Open;
use crate::outgoing::{Completion, SendFailure, Task};
use crate::socket::{Io, Read, Unsent};

/// Connecting, writing the request, reading the response, until the deadline. The
/// handler waits here for the connection to open, and so does what its senders post.
pub(crate) struct Connecting {
    handshake: ClientHandshake,
    config: Config,
    handler: Box<dyn Handler>,
    request: Unsent,
    deadline: Instant,
    /// Posted by senders before the open, in order: done once it opens.
    held: VecDeque<(Task, Option<Completion>)>,
    /// What `held` costs ([`Task::cost`]), bounded by the connection's send limit.
    held_cost: usize,
    /// The server refused: the rest of its body is being read (up to 4 KiB, until
    /// the deadline) before the handler hears it.
    rejected: Option<Box<Rejected>>,
}

/// How a turn leaves the connection.
pub(crate) enum Turn {
    /// Still under way: wait for readiness, or until the deadline.
    Wait(Box<Connecting>, Instant),
    /// The server accepted: the connection is open.
    Open(Box<Open>),
    /// It could not be established; the handler has heard why (`on_close`, 1006).
    Failed,
}

impl Connecting {
    pub(crate) fn new(
        handshake: ClientHandshake,
        config: Config,
        handler: Box<dyn Handler>,
        deadline: Instant,
    ) -> Box<Connecting> {
        let request = Unsent::new(handshake.request().to_vec());
        Box::new(Connecting {
            handshake,
            config,
            handler,
            request,
            deadline,
            held: VecDeque::new(),
            held_cost: 0,
            rejected: None,
        })
    }

    /// Holds what a sender posted until the connection opens; refuses it with
    /// `Backpressure` once more than `limit` is held (the limit an open connection's
    /// queued output has).
    pub(crate) fn hold(&mut self, task: Task, done: Option<Completion>, limit: usize) {
        if self.held_cost > limit {
            if let Some(done) = done {
                done.complete(Err(SendFailure::Backpressure));
            }
            return;
        }
        self.held_cost = self.held_cost.saturating_add(task.cost());
        self.held.push_back((task, done));
    }

    /// Finishes the TCP connect, writes the request, reads the response (over TLS,
    /// the TLS handshake runs inside these reads and writes).
    pub(crate) fn turn(
        mut self: Box<Self>,
        io: &mut Io,
        info: &ConnInfo,
        env: &mut Env<'_>,
    ) -> Turn {
        if env.now >= self.deadline {
            if self.rejected.is_some() {
                return self.refused(info);
            }
            return self.fail(info, ConnectError::Timeout);
        }
        let deadline = self.deadline;
        if !(io.readable || io.writable) {
            return Turn::Wait(self, deadline);
        }
        if let Ok(Some(e)) | Err(e) = io.socket.take_error() {
            return self.fail(info, ConnectError::Connect(e));
        }
        if io.socket.peer_addr().is_err() {
            return Turn::Wait(self, deadline); // not connected yet
        }
        // Over TLS the request waits in rustls for the handshake; its records (the
        // ClientHello first) go out as the socket takes them.
        if let Err(e) = self.request.write_to(io).and_then(|_| io.send_pending()) {
            return self.fail(info, ConnectError::from_io(e, ConnectError::Connect));
        }
        let mut buf = [0u8; 4096];
        while io.readable {
            let n = match io.recv(&mut buf) {
                Read::Data(n) => n,
                Read::Drained => break,
                // The end of a refusal's body, or a failure while reading it: the
                // refusal with what came.
                Read::End | Read::Failed(_) if self.rejected.is_some() => {
                    return self.refused(info);
                }
                Read::End => return self.fail(info, ConnectError::Closed),
                Read::Failed(e) => {
                    return self.fail(info, ConnectError::from_io(e, ConnectError::Io));
                }
            };
            if let Some(r) = self.rejected.as_mut() {
                r.extend_body(&buf[..n]);
                if !r.wants_body() {
                    return self.refused(info);
                }
                continue;
            }
            match self.handshake.receive(&buf[..n]) {
                Ok(None) => {}
                Ok(Some(accepted)) => {
                    let Connecting {
                        config,
                        handler,
                        held,
                        ..
                    } = *self;
                    // What followed the response in the same read goes to the engine.
                    let response = Response::from_accepted(&accepted);
                    let ws = accepted.into_connection(config, mask_rng());
                    let preface = Unsent::default();
                    let mut open = Open::start(ws, handler, preface, Some(&response), info, env);
                    // What senders posted meanwhile follows what `on_open` sent.
                    for (task, done) in held {
                        open.take(task, done, io, info, env.pool);
                    }
                    return Turn::Open(open);
                }
                Err(ResponseError::Rejected(r)) => {
                    let done = !r.wants_body();
                    self.rejected = Some(r);
                    if done {
                        return self.refused(info);
                    }
                }
                Err(e) => return self.fail(info, ConnectError::Response(e)),
            }
        }
        Turn::Wait(self, deadline)
    }

    /// The server refused the upgrade: the handler hears its answer, with the body
    /// read so far.
    fn refused(mut self: Box<Self>, info: &ConnInfo) -> Turn {
        let error = match self.rejected.take() {
            Some(r) => ConnectError::Response(ResponseError::Rejected(r)),
            None => ConnectError::Closed,
        };
        self.fail(info, error)
    }

    /// The connection will not open: the handler hears why, and what senders posted
    /// meanwhile fails with `Gone` (closures are dropped unrun).
    fn fail(mut self: Box<Self>, info: &ConnInfo, error: ConnectError) -> Turn {
        self.handler
            .on_connect_error(&mut Context::closed(info), error);
        for (_, done) in self.held.drain(..) {
            if let Some(done) = done {
                done.complete(Err(SendFailure::Gone));
            }
        }
        Turn::Failed
    }

    /// The connection will not open (its event loop is stopping): the handler hears
    /// it ([`ConnectError::Stopped`]), with a context whose sends are refused.
    pub(crate) fn abort(self: Box<Self>, info: &ConnInfo) {
        let _ = self.fail(info, ConnectError::Stopped);
    }
}
