//! An open connection: the engine and the handler, and the one loop that drives them
//! on [`Connection::next`] ([`Open::turn`]).

use std::collections::VecDeque;
use std::io;

use hybi::{CloseCode, Closed, Connection, Event, Instant, Next};

use crate::Response;
use crate::app::SlowPeer;
use crate::env::Env;
use crate::handler::{ConnInfo, Context, Handler};
use crate::outgoing::{Completion, Errand, Outgoing, SendFailure, Task};
use crate::pool::Pool;
use crate::socket::{Io, Unsent};

/// Reads per turn before the other connections get theirs.
const READ_BUDGET: usize = 16;

/// Replies wait for the end of a read burst, unless this much is queued: a flood of
/// requests does not pile up replies until its input runs dry.
const FLUSH_AT: usize = 64 << 10;

/// The same, after pings: the engine answers them one for one while less than this is
/// queued and keeps only the latest answer above it, but queues that answer whenever
/// its events run out, so a peer that floods pings without reading would add one to
/// the queue per read if the replies waited for the end of the burst.
const FLUSH_AT_AFTER_PINGS: usize = 8 << 10;

/// A WebSocket that is open, or closing: it always has its engine and its handler.
pub(crate) struct Open {
    ws: Connection,
    handler: Box<dyn Handler>,
    /// The 101 response, written before anything the engine queues (server only).
    preface: Unsent,
    /// Reading is stopped: the output is over the high-water mark ([`SlowPeer::Pause`]).
    paused: bool,
    /// The input ended (a read of 0; the engine knows): nothing more to read.
    input_ended: bool,
    /// Tracked sends: (stream position after the message, completion).
    completions: VecDeque<(u64, Completion)>,
}

/// How a turn leaves the connection.
pub(crate) enum Turn {
    /// Still open: wait for readiness, or until the deadline.
    Wait(Box<Open>, Option<Instant>),
    /// Over; the handler has heard (`on_close`). `drain`: the transport is sound and
    /// the peer's input has not ended, so our side is to be shut and its end awaited.
    Over { drain: bool },
}

/// What the loop does after asking the engine.
enum Act {
    Read,
    Write,
    /// The transport is broken: drop what is queued.
    Discard,
    Close(CloseCode, String),
}

impl Open {
    /// The connection has just opened: the handler hears it (`on_open`).
    pub(crate) fn start(
        mut ws: Connection,
        mut handler: Box<dyn Handler>,
        preface: Unsent,
        response: Option<&Response>,
        info: &ConnInfo,
        env: &mut Env<'_>,
    ) -> Box<Open> {
        ws.handle_timeout(env.now);
        env.pool.lend_write(&mut ws);
        let mut ctx = match response {
            Some(response) => Context::opened(ws.outbox(), info, response),
            None => Context::open(ws.outbox(), info),
        };
        handler.on_open(&mut ctx);
        Box::new(Open {
            ws,
            handler,
            preface,
            paused: false,
            input_ended: false,
            completions: VecDeque::new(),
        })
    }

    /// The one loop: ask the engine what to do next and do it. Events go to the
    /// handler; output waits while the socket still has input within the read budget
    /// (events always come first, so replies to a burst go out in one write at its
    /// end, or every [`FLUSH_AT`]); reads go straight into the engine; the engine's
    /// deadline is the worker's timer; its close ends the turn, and the connection.
    pub(crate) fn turn(
        mut self: Box<Self>,
        io: &mut Io,
        info: &ConnInfo,
        env: &mut Env<'_>,
    ) -> Turn {
        self.ws.handle_timeout(env.now);
        env.pool.lend_write(&mut self.ws);
        let high_water = env.app.high_water;
        let (mut reads, mut blocked, mut broken, mut flush_at) = (0, false, false, FLUSH_AT);
        let deadline = loop {
            let reading = io.readable
                && !(self.input_ended || self.paused || broken)
                && reads < READ_BUDGET
                && self.ws.buffered_output() <= high_water;
            let act = match self.ws.next() {
                Next::Event(event, out) => {
                    if let Event::Ping(_) = event {
                        flush_at = FLUSH_AT_AFTER_PINGS;
                    }
                    deliver(&mut *self.handler, event, &mut Context::open(out, info));
                    continue;
                }
                Next::Write(out) if reading && (blocked || out.len() < flush_at) => Act::Read,
                Next::Write(_) if broken => Act::Discard,
                // Waiting for the socket, and for the engine's timers (a close or pong
                // timeout gives up on a peer that reads nothing).
                Next::Write(out) if blocked => break out.deadline(),
                Next::Write(_) => Act::Write,
                Next::Wait(_) if reading => Act::Read,
                // The 101 goes out even when the engine has nothing to add to it.
                Next::Wait(_) if !(self.preface.is_done() || blocked || broken) => Act::Write,
                Next::Wait(deadline) => break deadline,
                Next::Close(closed) => {
                    let (code, reason) = ending(&closed);
                    Act::Close(code, reason)
                }
            };
            match act {
                Act::Read => {
                    reads += 1;
                    // The peer may have read meanwhile: the next write is worth a try.
                    blocked = false;
                    broken = self.read(io, env.pool).is_err();
                }
                Act::Write => match self.flush(io) {
                    Ok(done) => blocked = !done,
                    Err(e) => {
                        log::debug!("{}: write failed: {e}", info.addr);
                        self.ws.receive_eof();
                        broken = true;
                    }
                },
                Act::Discard => self.discard(),
                Act::Close(code, reason) => {
                    let drain = !(broken || self.input_ended);
                    return self.end(info, env.pool, code, &reason, drain);
                }
            }
        };
        if io.readable && reads == READ_BUDGET {
            // Input possibly left: come back on the next turn.
            env.again.push(info.token);
        }
        self.backpressure(io, info, env, deadline)
    }

    /// Applies the [`SlowPeer`] policy once the turn's output is out, and gives the
    /// buffers the connection does not hold anything in back to the pool.
    fn backpressure(
        mut self: Box<Self>,
        io: &Io,
        info: &ConnInfo,
        env: &mut Env<'_>,
        deadline: Option<Instant>,
    ) -> Turn {
        let buffered = self.ws.buffered_output();
        let high = env.app.high_water;
        if !self.paused && buffered > high {
            if env.app.slow_peer == SlowPeer::Drop {
                let why = "dropped: output over the high-water mark";
                return self.end(info, env.pool, CloseCode::ABNORMAL, why, false);
            }
            self.paused = true;
            self.notify_backpressure(info, true);
        } else if self.paused && buffered <= high / 2 {
            self.paused = false;
            self.notify_backpressure(info, false);
            if io.readable {
                env.again.push(info.token);
            }
        }
        env.pool.reclaim(&mut self.ws);
        Turn::Wait(self, deadline)
    }

    fn notify_backpressure(&mut self, info: &ConnInfo, paused: bool) {
        let mut ctx = Context::open(self.ws.outbox(), info);
        self.handler.on_backpressure(&mut ctx, paused);
    }

    /// Reads once, straight into the engine (with a pooled buffer). An error: the
    /// transport is broken, and the engine has been told its input ended.
    fn read(&mut self, io: &mut Io, pool: &mut Pool) -> io::Result<()> {
        pool.lend_read(&mut self.ws);
        match self.ws.read_from(io) {
            Ok(0) => {
                // The peer half-closed, or closed: what it sent is still delivered,
                // and what it is owed still written.
                io.readable = false;
                self.input_ended = true;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.readable = false,
            Err(e) => {
                io.readable = false;
                self.ws.receive_eof();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Writes the preface, then what the engine has queued, until done or the socket
    /// takes no more (`Ok(false)`), and resolves the completions of what got written.
    pub(crate) fn flush(&mut self, io: &mut Io) -> io::Result<bool> {
        let mut done = self.preface.write_to(io)?;
        while done {
            let Some(output) = self.ws.transmit() else {
                break;
            };
            match output.write_to(io) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => done = false,
                Err(e) => return Err(e),
            }
        }
        let written = self.ws.output_written();
        while self
            .completions
            .front()
            .is_some_and(|(at, _)| *at <= written)
        {
            if let Some((_, done)) = self.completions.pop_front() {
                done.complete(Ok(()));
            }
        }
        Ok(done)
    }

    /// The transport is broken: what is queued will never be written.
    fn discard(&mut self) {
        for (_, done) in self.completions.drain(..) {
            done.complete(Err(SendFailure::Gone));
        }
        while let Some(output) = self.ws.transmit() {
            let n = output.len();
            output.consume(n);
        }
    }

    /// The connection is over: what was written is complete, the rest is not, the
    /// buffers go back to the pool, and the handler hears it.
    fn end(
        mut self: Box<Self>,
        info: &ConnInfo,
        pool: &mut Pool,
        code: CloseCode,
        reason: &str,
        drain: bool,
    ) -> Turn {
        pool.reclaim(&mut self.ws);
        self.abort(info, code, reason);
        Turn::Over { drain }
    }

    /// Ends the connection without the engine's word (the worker drops it): the
    /// handler hears `code` and `reason`, and sends not yet written fail.
    pub(crate) fn abort(mut self: Box<Self>, info: &ConnInfo, code: CloseCode, reason: &str) {
        let written = self.ws.output_written();
        for (at, done) in self.completions.drain(..) {
            done.complete(if at <= written {
                Ok(())
            } else {
                Err(SendFailure::Gone)
            });
        }
        self.handler
            .on_close(&mut Context::closed(info), code, reason);
    }

    /// Does what a [`Sender`](crate::Sender) posted: queues its message, or runs its
    /// closure.
    pub(crate) fn take(
        &mut self,
        task: Task,
        done: Option<Completion>,
        io: &mut Io,
        info: &ConnInfo,
        pool: &mut Pool,
    ) {
        match task {
            Task::Send(message) => self.post(message, done, io, info, pool),
            Task::Run(errand) => self.run(errand, done, info, pool),
        }
    }

    /// Runs a closure posted with [`Sender::run`](crate::Sender::run), as a callback:
    /// its completion says it ran.
    fn run(&mut self, errand: Errand, done: Option<Completion>, info: &ConnInfo, pool: &mut Pool) {
        pool.lend_write(&mut self.ws);
        errand(&mut Context::open(self.ws.outbox(), info));
        if let Some(done) = done {
            done.complete(Ok(()));
        }
    }

    /// Queues a message posted through a [`Sender`](crate::Sender).
    fn post(
        &mut self,
        message: Outgoing,
        done: Option<Completion>,
        io: &mut Io,
        info: &ConnInfo,
        pool: &mut Pool,
    ) {
        let fail = |done: Option<Completion>, why| {
            if let Some(d) = done {
                d.complete(Err(why));
            }
        };
        if self.ws.buffered_output() > info.limit {
            // Over the limit: refuse only if the transport cannot take the backlog. (A
            // write that fails here fails again in the connection's next turn, which
            // follows at once and ends it.)
            let _ = self.flush(io);
            if self.ws.buffered_output() > info.limit {
                return fail(done, SendFailure::Backpressure);
            }
        }
        pool.lend_write(&mut self.ws);
        let ws = &mut self.ws;
        let sent = match message {
            Outgoing::Text(t) => ws.send_text_owned(t),
            Outgoing::Binary(b) => ws.send_binary_owned(b),
            Outgoing::SharedText(t) => ws.send_text(&t),
            Outgoing::SharedBinary(b) => ws.send_binary(&b),
            Outgoing::Ping(p) => ws.send_ping(&p),
            Outgoing::Pong(p) => ws.send_pong(&p),
            Outgoing::Fragment { kind, data, fin } => ws.send_fragment(kind, &data, fin),
            Outgoing::Close(code, reason) => ws.close(code, &reason),
        };
        match (sent, done) {
            (Err(e), done) => fail(done, SendFailure::Refused(e)),
            (Ok(()), Some(done)) => self.completions.push_back((ws.output_queued(), done)),
            (Ok(()), None) => {}
        }
    }

    /// Starts the closing handshake with 1001 (the server is shutting down).
    pub(crate) fn going_away(&mut self) {
        let _ = self.ws.close(CloseCode::GOING_AWAY, "server shutting down");
    }

    /// True while bytes wait for the socket: write readiness is wanted.
    pub(crate) fn wants_write(&self) -> bool {
        !self.preface.is_done() || self.ws.buffered_output() > 0
    }
}

/// Hands an event to the handler. A close frame has no callback of its own: the
/// handler hears of it in `on_close`, once the connection is over.
fn deliver(handler: &mut dyn Handler, event: Event<'_>, ctx: &mut Context<'_>) {
    match event {
        Event::Text(text) => handler.on_text(ctx, text),
        Event::Binary(data) => handler.on_binary(ctx, data),
        Event::Fragment(fragment) => handler.on_fragment(ctx, fragment),
        Event::Ping(payload) => handler.on_ping(ctx, payload),
        Event::Pong(payload) => handler.on_pong(ctx, payload),
        Event::Close(_) => {}
    }
}

/// What `on_close` is told: the code that sums up the ending, and the peer's reason or
/// what went wrong.
fn ending(closed: &Closed<'_>) -> (CloseCode, String) {
    let reason = match (closed.error, closed.peer) {
        (Some(error), _) => error.to_string(),
        (None, Some(frame)) => frame.reason.to_owned(),
        (None, None) => String::new(),
    };
    (closed.code(), reason)
}
