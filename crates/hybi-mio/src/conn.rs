//! One connection on an event loop: its socket, phase, engine and handler, and how it
//! moves bytes when the loop says the socket is ready.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use hybi::handshake::{
    Answer, ClientHandshake, HttpRequest, Incoming, Response, ServerHandshake, UpgradeRequest,
};
use hybi::{CloseCode, Config, Connection, Event, Instant};
use mio::net::TcpStream;

use crate::app::{App, SlowPeer};
use crate::handler::{ConnInfo, Context, Handler};
use crate::outgoing::{Completion, Outgoing, SendFailure};
use crate::pool::Pool;

/// Reads per wake-up before other connections get their turn.
const READ_BUDGET: usize = 16;

/// Flush while reading once this much output is queued, so a flood of requests does
/// not pile up replies until the input runs dry.
const FLUSH_AT: usize = 64 << 10;

/// How long a closed connection waits for the peer's end of input before the socket
/// is dropped anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// Where a connection is in its life.
pub(crate) enum Phase {
    /// Server: reading the upgrade request.
    Accepting(Box<ServerHandshake>),
    /// Client: connecting, writing the request, reading the response.
    Connecting(Box<(ClientHandshake, Config)>),
    /// The WebSocket is open (or closing): the engine runs.
    Open,
    /// Writing an HTTP refusal; then the socket closes.
    Refusing,
    /// Closing: writing what is still queued, then shutting our side down and waiting
    /// (briefly) for the peer to close its side.
    Draining,
}

pub(crate) struct Conn {
    pub(crate) socket: TcpStream,
    pub(crate) info: ConnInfo,
    pub(crate) phase: Phase,
    pub(crate) ws: Option<Connection>,
    pub(crate) handler: Option<Box<dyn Handler>>,
    /// Bytes to write before the engine's output: the 101, a refusal, a request.
    preface: Vec<u8>,
    preface_pos: usize,
    /// Handshake or drain deadline.
    pub(crate) deadline: Option<Instant>,
    /// The deadline currently in the worker's timer heap.
    pub(crate) scheduled: Option<Instant>,
    /// The socket may have more to read (edge-triggered readiness not yet drained).
    pub(crate) readable: bool,
    /// The socket may accept more bytes.
    pub(crate) writable: bool,
    /// Registered for write readiness.
    pub(crate) wants_write: bool,
    /// Reading is paused: the output is over the high-water mark.
    paused: bool,
    /// The transport failed (a read or write error): nothing more can be read or
    /// written.
    dead: bool,
    /// The peer ended its input (it half-closed, or closed): nothing more to read, but
    /// what is queued for it can still be written.
    eof: bool,
    /// Our sending side is shut down.
    shut: bool,
    /// `on_close` was called.
    closed_reported: bool,
    /// Tracked sends: (stream position after the message, completion).
    completions: VecDeque<(u64, Completion)>,
    /// Queued in the worker's list of connections to drive.
    pub(crate) touched: bool,
}

/// One non-blocking read of the socket.
enum ReadResult {
    /// This many bytes arrived.
    Data(usize),
    /// Nothing more for now (the readiness is used up).
    Drained,
    /// End of input, or the socket failed (with the error).
    End(Option<io::Error>),
}

/// What a connection needs from its worker while it runs.
pub(crate) struct Env<'a> {
    pub(crate) now: Instant,
    pub(crate) pool: &'a mut Pool,
    pub(crate) app: &'a App,
    /// Connections to drive again on the next turn without waiting for readiness.
    pub(crate) again: &'a mut Vec<usize>,
}

impl Conn {
    fn new(socket: TcpStream, info: ConnInfo, phase: Phase) -> Conn {
        Conn {
            socket,
            info,
            phase,
            ws: None,
            handler: None,
            preface: Vec::new(),
            preface_pos: 0,
            deadline: None,
            scheduled: None,
            readable: false,
            writable: false,
            wants_write: false,
            paused: false,
            dead: false,
            eof: false,
            shut: false,
            closed_reported: false,
            completions: VecDeque::new(),
            touched: false,
        }
    }

    /// A server-side connection that has just been accepted.
    pub(crate) fn accepted(socket: TcpStream, info: ConnInfo, env: &Env<'_>) -> Conn {
        let handshake = ServerHandshake::with_limits(env.app.limits);
        let mut conn = Conn::new(socket, info, Phase::Accepting(Box::new(handshake)));
        conn.deadline = Some(env.now + env.app.handshake_timeout);
        conn
    }

    /// A client connection whose TCP connect is under way.
    pub(crate) fn connecting(
        socket: TcpStream,
        info: ConnInfo,
        handshake: ClientHandshake,
        config: Config,
        handler: Box<dyn Handler>,
        deadline: Instant,
    ) -> Conn {
        let preface = handshake.request().to_vec();
        let mut conn = Conn::new(
            socket,
            info,
            Phase::Connecting(Box::new((handshake, config))),
        );
        conn.preface = preface;
        conn.handler = Some(handler);
        conn.deadline = Some(deadline);
        conn
    }

    /// The next instant this connection needs the clock.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let engine = match (&self.phase, &self.ws) {
            (Phase::Open, Some(ws)) => ws.poll_timeout(),
            _ => None,
        };
        match (engine, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True if the socket should be registered for write readiness.
    pub(crate) fn needs_write(&self) -> bool {
        self.output_pending() || matches!(self.phase, Phase::Connecting(_))
    }

    /// True while bytes are queued: the preface or the engine's output.
    fn output_pending(&self) -> bool {
        self.preface_pos < self.preface.len()
            || self.ws.as_ref().is_some_and(Connection::has_output)
    }

    /// Runs the connection after readiness, a timer, or a queued command. Returns
    /// false when it is finished and should be removed.
    pub(crate) fn drive(&mut self, env: &mut Env<'_>) -> bool {
        if self.deadline.is_some_and(|d| env.now >= d) && !matches!(self.phase, Phase::Open) {
            if matches!(self.phase, Phase::Connecting(_)) {
                self.report_close(CloseCode::ABNORMAL, "handshake timed out");
            }
            return false;
        }
        if let Some(ws) = self.ws.as_mut() {
            ws.handle_timeout(env.now);
            // Replies from the handler (or the engine's pongs) go into a pooled buffer.
            env.pool.lend_write(ws);
        }
        if self.eof {
            // Readiness after the end of input has nothing more to read.
            self.readable = false;
        }

        // Input.
        if matches!(self.phase, Phase::Connecting(_)) {
            self.connect_progress(env);
        }
        if matches!(self.phase, Phase::Accepting(_)) && self.readable {
            self.read_request(env);
        }
        if matches!(self.phase, Phase::Open) {
            if self.readable && !self.paused {
                self.read_frames(env);
            }
            self.dispatch();
        }
        if matches!(self.phase, Phase::Refusing | Phase::Draining) && self.readable {
            self.discard_input();
        }

        // Output.
        if let Err(e) = self.flush() {
            log::debug!("{}: write failed: {e}", self.info.addr);
            self.transport_failed();
        }

        self.lifecycle(env)
    }

    /// Starts closing: what is queued is written, then the socket's sending side is
    /// shut down, and the peer's end awaited, all within [`DRAIN_TIMEOUT`].
    fn start_draining(&mut self, env: &Env<'_>) {
        self.phase = Phase::Draining;
        self.deadline = Some(env.now + DRAIN_TIMEOUT);
    }

    /// Draining: shuts the sending side once everything queued is written. False when
    /// the connection is done: both sides ended, or the transport failed.
    fn drain(&mut self, env: &mut Env<'_>) -> bool {
        if self.dead {
            return false;
        }
        if !self.shut && !self.output_pending() {
            let _ = self.socket.shutdown(Shutdown::Write);
            self.shut = true;
            if let Some(ws) = self.ws.as_mut() {
                env.pool.reclaim(ws);
            }
        }
        !(self.shut && self.eof)
    }

    /// After input and output: close, pause, resume, or keep going.
    fn lifecycle(&mut self, env: &mut Env<'_>) -> bool {
        match self.phase {
            Phase::Open => {}
            Phase::Refusing => {
                if self.dead {
                    return false;
                }
                if self.preface_pos < self.preface.len() {
                    // Still writing the answer, even if the peer has ended its input.
                    return true;
                }
                self.start_draining(env);
                return self.drain(env);
            }
            Phase::Draining => return self.drain(env),
            Phase::Accepting(_) | Phase::Connecting(_) => return !(self.dead || self.eof),
        }
        let Some(ws) = self.ws.as_mut() else {
            return false;
        };
        // At the end of input the engine has seen its last bytes: after the dispatch
        // below it has either the peer's close (and its reply queued) or has reported
        // the abnormal end. What is left is writing what is queued.
        if self.dead || self.eof || ws.should_close_transport() {
            self.dispatch();
            if self.dead {
                // Completions still pending fail when the worker removes the
                // connection.
                return false;
            }
            if let Some(ws) = self.ws.as_mut() {
                env.pool.reclaim(ws);
            }
            self.start_draining(env);
            return self.drain(env);
        }
        // Backpressure.
        let buffered = ws.buffered_output();
        let high = env.app.high_water;
        if !self.paused && buffered > high {
            match env.app.slow_peer {
                SlowPeer::Pause => {
                    self.paused = true;
                    self.notify_backpressure(true);
                }
                SlowPeer::Drop => {
                    self.report_close(
                        CloseCode::ABNORMAL,
                        "dropped: output over the high-water mark",
                    );
                    self.fail_completions(SendFailure::Gone);
                    return false;
                }
            }
        } else if self.paused && buffered <= high / 2 {
            self.paused = false;
            self.notify_backpressure(false);
            if self.readable {
                env.again.push(self.info.token);
            }
        }
        if let Some(ws) = self.ws.as_mut() {
            env.pool.reclaim(ws);
        }
        true
    }

    /// The socket broke: the engine learns of the end of input.
    fn transport_failed(&mut self) {
        self.dead = true;
        self.readable = false;
        if let Some(ws) = self.ws.as_mut() {
            ws.receive_eof();
        }
    }

    /// Reads into `buf`, retrying interrupted reads; a `WouldBlock` uses up the
    /// readiness, the end of input is noted (writing may go on), an error marks the
    /// connection dead.
    fn read_some(&mut self, buf: &mut [u8]) -> ReadResult {
        loop {
            return match self.socket.read(buf) {
                Ok(0) => {
                    self.eof = true;
                    self.readable = false;
                    ReadResult::End(None)
                }
                Ok(n) => ReadResult::Data(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    ReadResult::Drained
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.dead = true;
                    self.readable = false;
                    ReadResult::End(Some(e))
                }
            };
        }
    }

    // ------------------------------------------------------------ handshakes

    fn read_request(&mut self, env: &mut Env<'_>) {
        let mut buf = [0u8; 4096];
        loop {
            let ReadResult::Data(n) = self.read_some(&mut buf) else {
                return;
            };
            let Phase::Accepting(handshake) = &mut self.phase else {
                return;
            };
            match handshake.receive_any(&buf[..n]) {
                Ok(None) => {}
                Ok(Some(Incoming::Upgrade(request))) => {
                    self.upgrade(&request, env);
                    return;
                }
                Ok(Some(Incoming::Http(request))) => {
                    self.answer_http(&request, env.app);
                    return;
                }
                Err(e) => {
                    log::debug!("{}: bad request: {e}", self.info.addr);
                    self.refuse(e.response().to_bytes());
                    return;
                }
            }
        }
    }

    /// Routes a valid upgrade request: the application's hook decides, the route's
    /// factory makes the handler.
    fn upgrade(&mut self, request: &UpgradeRequest, env: &mut Env<'_>) {
        let app = env.app;
        let (decision, route) = app.routes.decide(request);
        match (request.answer(&decision), route) {
            (Answer::Upgrade(accepted), Some(factory)) => {
                self.preface = accepted.response().to_bytes();
                self.preface_pos = 0;
                self.handler = Some(factory(request));
                let mut ws = accepted.into_connection(app.config.clone());
                ws.handle_timeout(env.now);
                self.ws = Some(ws);
                self.phase = Phase::Open;
                self.deadline = None;
                self.open();
            }
            (Answer::Refuse(response) | Answer::Invalid(_, response), _) => {
                self.refuse(response.to_bytes());
            }
            (Answer::Upgrade(_), None) => {
                // Unreachable: without a route the decision is a 404.
                self.refuse(NOT_FOUND.to_vec());
            }
        }
    }

    /// Answers a plain HTTP request: a page, or why there is none.
    fn answer_http(&mut self, request: &HttpRequest, app: &App) {
        let page = app.pages.get(request.path());
        let response = match (request.method(), page) {
            ("GET" | "HEAD", Some((content_type, body))) => {
                let body: &[u8] = if request.method() == "HEAD" {
                    &[]
                } else {
                    body
                };
                Response::reject(200, &[("Content-Type", content_type.as_str())], body)
            }
            (_, Some(_)) => Response::reject(405, &[("Allow", "GET, HEAD")], b""),
            (_, None) if app.routes.contains(request.path()) => Response::reject(
                426,
                &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
                b"this is a WebSocket endpoint\n",
            ),
            (_, None) => Response::reject(404, &[("Content-Type", "text/plain")], b"not found\n"),
        };
        match response {
            Ok(r) => self.refuse(r.to_bytes()),
            Err(_) => self.refuse(NOT_FOUND.to_vec()),
        }
    }

    fn refuse(&mut self, bytes: Vec<u8>) {
        self.preface = bytes;
        self.preface_pos = 0;
        self.phase = Phase::Refusing;
    }

    /// Client: finish the TCP connect, write the request, read the response.
    fn connect_progress(&mut self, env: &mut Env<'_>) {
        if !(self.readable || self.writable) {
            return;
        }
        if let Ok(Some(e)) | Err(e) = self.socket.take_error() {
            self.report_close(CloseCode::ABNORMAL, &format!("connect failed: {e}"));
            self.dead = true;
            return;
        }
        if self.socket.peer_addr().is_err() {
            // Not connected yet.
            return;
        }
        if let Err(e) = self.flush() {
            self.report_close(CloseCode::ABNORMAL, &format!("connect failed: {e}"));
            self.dead = true;
            return;
        }
        if !self.readable {
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            let n = match self.read_some(&mut buf) {
                ReadResult::Data(n) => n,
                ReadResult::Drained => return,
                ReadResult::End(None) => {
                    self.report_close(
                        CloseCode::ABNORMAL,
                        "connection closed during the handshake",
                    );
                    return;
                }
                ReadResult::End(Some(e)) => {
                    self.report_close(CloseCode::ABNORMAL, &format!("handshake failed: {e}"));
                    return;
                }
            };
            let Phase::Connecting(state) = &mut self.phase else {
                return;
            };
            match state.0.receive(&buf[..n]) {
                Ok(None) => {}
                Ok(Some(accepted)) => {
                    let config = state.1.clone();
                    let mut ws = accepted.into_connection(config, hybi_std::adapter::mask_rng());
                    ws.handle_timeout(env.now);
                    self.ws = Some(ws);
                    self.phase = Phase::Open;
                    self.deadline = None;
                    self.open();
                    return;
                }
                Err(e) => {
                    self.report_close(CloseCode::ABNORMAL, &format!("handshake failed: {e}"));
                    self.dead = true;
                    return;
                }
            }
        }
    }

    fn open(&mut self) {
        let (Some(ws), Some(handler)) = (self.ws.as_mut(), self.handler.as_mut()) else {
            return;
        };
        handler.on_open(&mut Context::open(ws.outbox(), &self.info));
    }

    // ----------------------------------------------------------- open phase

    fn read_frames(&mut self, env: &mut Env<'_>) {
        for _ in 0..READ_BUDGET {
            let Some(ws) = self.ws.as_mut() else { return };
            env.pool.lend_read(ws);
            let buf = ws.read_buf();
            if buf.is_empty() {
                // Events not yet drained hold the buffer; reading into an empty
                // slice would return 0, which means end of input.
                self.dispatch();
                continue;
            }
            let result = self.socket.read(buf);
            match result {
                Ok(0) => {
                    // The peer half-closed (or closed): what it sent is still
                    // delivered, and what it is owed still written.
                    ws.receive_eof();
                    self.readable = false;
                    self.eof = true;
                    return;
                }
                Ok(n) => ws.commit(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.transport_failed();
                    return;
                }
            }
            self.dispatch();
            let Some(ws) = self.ws.as_mut() else { return };
            if ws.buffered_output() >= FLUSH_AT {
                if let Err(e) = self.flush() {
                    log::debug!("{}: write failed: {e}", self.info.addr);
                    self.transport_failed();
                    return;
                }
                let buffered = self.ws.as_ref().map_or(0, Connection::buffered_output);
                if buffered > env.app.high_water {
                    // Let the lifecycle apply the backpressure policy first.
                    env.again.push(self.info.token);
                    return;
                }
            }
        }
        // Budget spent with input possibly left: come back on the next turn.
        env.again.push(self.info.token);
    }

    /// Hands every ready event to the handler.
    fn dispatch(&mut self) {
        let Conn {
            ws,
            handler,
            info,
            closed_reported,
            ..
        } = self;
        let (Some(ws), Some(handler)) = (ws.as_mut(), handler.as_mut()) else {
            return;
        };
        loop {
            match ws.poll_event_with_outbox() {
                Ok(Some((event, out))) => {
                    let mut ctx = Context::open(out, info);
                    match event {
                        Event::Text(t) => handler.on_text(&mut ctx, t),
                        Event::Binary(b) => handler.on_binary(&mut ctx, b),
                        Event::Fragment(f) => handler.on_fragment(&mut ctx, f),
                        Event::Ping(p) => handler.on_ping(&mut ctx, p),
                        Event::Pong(p) => handler.on_pong(&mut ctx, p),
                        Event::Close(frame) => {
                            if !*closed_reported {
                                *closed_reported = true;
                                handler.on_close(&mut ctx, frame.code, frame.reason);
                            }
                        }
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    if !*closed_reported {
                        *closed_reported = true;
                        let mut ctx = Context::open(ws.outbox(), info);
                        handler.on_close(&mut ctx, e.close_code(), &e.to_string());
                    }
                    return;
                }
            }
        }
    }

    fn notify_backpressure(&mut self, paused: bool) {
        let (Some(ws), Some(handler)) = (self.ws.as_mut(), self.handler.as_mut()) else {
            return;
        };
        handler.on_backpressure(&mut Context::open(ws.outbox(), &self.info), paused);
    }

    /// Calls `on_close` if it has not been called.
    pub(crate) fn report_close(&mut self, code: CloseCode, reason: &str) {
        if self.closed_reported {
            return;
        }
        self.closed_reported = true;
        let Some(handler) = self.handler.as_mut() else {
            return;
        };
        match self.ws.as_mut() {
            Some(ws) => handler.on_close(&mut Context::open(ws.outbox(), &self.info), code, reason),
            // A client that never opened: sends are refused.
            None => handler.on_close(&mut Context::closed(&self.info), code, reason),
        }
    }

    fn discard_input(&mut self) {
        let mut scratch = [0u8; 4096];
        while let ReadResult::Data(_) = self.read_some(&mut scratch) {}
    }

    // ---------------------------------------------------------------- output

    /// Writes the preface, then the engine's output, until done or `WouldBlock`, and
    /// resolves the completions of what got written.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.dead {
            return Ok(());
        }
        while self.preface_pos < self.preface.len() {
            match self.socket.write(&self.preface[self.preface_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.preface_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.preface.is_empty() && !matches!(self.phase, Phase::Refusing) {
            self.preface = Vec::new();
            self.preface_pos = 0;
        }
        let Some(ws) = self.ws.as_mut() else {
            return Ok(());
        };
        while ws.has_output() {
            let mut slices: [&[u8]; 8] = [&[]; 8];
            let count = ws.pending_output_vectored(&mut slices);
            let written = if count == 1 {
                // One piece (small frames are encoded whole): a plain write, which
                // costs the kernel less than a one-element writev.
                self.socket.write(slices[0])
            } else {
                self.socket
                    .write_vectored(&slices.map(IoSlice::new)[..count])
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => ws.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let written = ws.output_written();
        while self
            .completions
            .front()
            .is_some_and(|(at, _)| *at <= written)
        {
            if let Some((_, done)) = self.completions.pop_front() {
                done.complete(Ok(()));
            }
        }
        Ok(())
    }

    fn fail_completions(&mut self, why: SendFailure) {
        for (_, done) in self.completions.drain(..) {
            done.complete(Err(why));
        }
    }

    /// Queues a message posted through a [`Sender`](crate::Sender).
    pub(crate) fn post(&mut self, message: Outgoing, done: Option<Completion>, env: &mut Env<'_>) {
        let fail = |done: Option<Completion>, why| {
            if let Some(d) = done {
                d.complete(Err(why));
            }
        };
        if !matches!(self.phase, Phase::Open) || self.ws.is_none() {
            return fail(done, SendFailure::Gone);
        }
        if self
            .ws
            .as_ref()
            .is_some_and(|ws| ws.buffered_output() > self.info.limit)
        {
            // Over the limit: refuse only if the transport cannot take the backlog.
            if self.flush().is_err() {
                self.transport_failed();
            }
            if self
                .ws
                .as_ref()
                .is_some_and(|ws| ws.buffered_output() > self.info.limit)
            {
                return fail(done, SendFailure::Backpressure);
            }
        }
        let Some(ws) = self.ws.as_mut() else {
            return fail(done, SendFailure::Gone);
        };
        env.pool.lend_write(ws);
        let result = match message {
            Outgoing::Text(t) => ws.send_text_owned(t),
            Outgoing::Binary(b) => ws.send_binary_owned(b),
            Outgoing::SharedText(t) => ws.send_text(&t),
            Outgoing::SharedBinary(b) => ws.send_binary(&b),
            Outgoing::Ping(p) => ws.send_ping(&p),
            Outgoing::Close(code, reason) => ws.close(code, &reason),
        };
        match (result, done) {
            (Err(e), done) => fail(done, SendFailure::Refused(e)),
            (Ok(()), Some(done)) => self.completions.push_back((ws.output_queued(), done)),
            (Ok(()), None) => {}
        }
    }

    /// Starts the closing handshake for a server shutdown; false if the connection
    /// is not open and can simply be dropped.
    pub(crate) fn shutdown(&mut self) -> bool {
        match (&self.phase, self.ws.as_mut()) {
            (Phase::Open, Some(ws)) => {
                let _ = ws.close(CloseCode::GOING_AWAY, "server shutting down");
                true
            }
            (Phase::Draining | Phase::Refusing, _) => true,
            _ => false,
        }
    }

    /// The connection is being dropped: tell the handler (if it has not heard) and
    /// fail what is still pending.
    pub(crate) fn finish(&mut self, reason: &str) {
        self.report_close(CloseCode::ABNORMAL, reason);
        self.fail_completions(SendFailure::Gone);
    }
}
