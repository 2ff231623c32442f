//! One event loop: a mio `Poll`, its listener, its connections, its timers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hybi::Instant;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::client::PendingConnect;
use crate::clock;
use crate::conn::{Conn, Env};
use crate::handler::ConnInfo;
use crate::pool::Pool;
use crate::sender::{Command, SendFailure, WorkerShared, fail_command};
use crate::server::App;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

/// How long to wait before accepting again when the system is out of a resource
/// (file descriptors, socket buffers, memory).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

pub(crate) struct Worker {
    poll: Poll,
    events: Events,
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    shared: Arc<WorkerShared>,
    app: Arc<App>,
    pool: Pool,
    /// (deadline, token, generation); stale entries are skipped when they fire.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    touched: Vec<usize>,
    again: Vec<usize>,
    commands: Vec<Command>,
    /// Connections allowed on this worker.
    max_connections: usize,
    /// Shutting down: stop when every connection is gone or at this instant.
    stopping: Option<Instant>,
    /// Accepting failed for want of a resource: try again at this instant. Readiness
    /// is edge-triggered, so connections already queued would otherwise wait for the
    /// next one to arrive.
    accept_retry: Option<Instant>,
}

impl Worker {
    pub(crate) fn new(
        app: Arc<App>,
        mut listener: Option<TcpListener>,
        max_connections: usize,
    ) -> io::Result<Worker> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        if let Some(l) = listener.as_mut() {
            poll.registry().register(l, LISTENER, Interest::READABLE)?;
        }
        Ok(Worker {
            poll,
            events: Events::with_capacity(1024),
            listener,
            conns: Slab::new(),
            shared: Arc::new(WorkerShared::new(waker)),
            app,
            pool: Pool::default(),
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            again: Vec::new(),
            commands: Vec::new(),
            max_connections,
            stopping: None,
            accept_retry: None,
        })
    }

    pub(crate) fn shared(&self) -> Arc<WorkerShared> {
        Arc::clone(&self.shared)
    }

    /// Runs the loop until shutdown.
    pub(crate) fn run(mut self) {
        self.shared.enter();
        loop {
            let now = clock::now();
            let timeout = if self.again.is_empty() && !self.shared.has_commands() {
                // The next connection timer, accept retry, or end of the shutdown's
                // grace period.
                [
                    self.timers.peek().map(|Reverse((at, _, _))| *at),
                    self.accept_retry,
                    self.stopping,
                ]
                .into_iter()
                .flatten()
                .min()
                .map(|at| clock::until(now, at))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut self.events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("poll failed: {e}");
                break;
            }
            let now = clock::now();
            let mut accept = self.accept_retry.is_some_and(|at| now >= at);
            for event in self.events.iter() {
                match event.token() {
                    LISTENER => accept = true,
                    WAKER => {}
                    Token(t) => {
                        if let Some(conn) = self.conns.get_mut(t) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                conn.readable = true;
                            }
                            if event.is_writable() || event.is_write_closed() {
                                conn.writable = true;
                            }
                            if !conn.touched {
                                conn.touched = true;
                                self.touched.push(t);
                            }
                        }
                    }
                }
            }
            if accept {
                self.accept(now);
            }
            self.run_commands(now);
            self.fire_timers(now);
            for t in std::mem::take(&mut self.again) {
                self.touch(t);
            }
            self.drive_touched(now);
            // Commands posted from this thread while driving (a handler broadcasting
            // to its room) post no wake-up: run them now rather than after a sleep.
            for _ in 0..8 {
                if !self.shared.has_commands() {
                    break;
                }
                self.run_commands(now);
                self.drive_touched(now);
            }
            if let Some(deadline) = self.stopping {
                if self.conns.is_empty() || now >= deadline {
                    break;
                }
            }
        }
        self.stop();
    }

    fn touch(&mut self, token: usize) {
        if let Some(conn) = self.conns.get_mut(token) {
            if !conn.touched {
                conn.touched = true;
                self.touched.push(token);
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                self.accept_retry = None;
                return;
            };
            let (mut socket, addr) = match listener.accept() {
                Ok(pair) => {
                    if self.accept_retry.take().is_some() {
                        log::info!("accepting again");
                    }
                    pair
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_retry = None;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // One queued connection failed (Linux reports its pending network
                // error on accept): it is gone, the next may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::NetworkDown
                            | io::ErrorKind::NetworkUnreachable
                            | io::ErrorKind::HostUnreachable
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    // Out of file descriptors (EMFILE, ENFILE), buffers or memory:
                    // the connection stays queued, and the readiness that announced
                    // it will not come again. Retry on a timer; log once per episode.
                    if self.accept_retry.is_none() {
                        log::warn!(
                            "accept failed: {e}; retrying every {} ms",
                            ACCEPT_RETRY.as_millis()
                        );
                    }
                    self.accept_retry = Some(now + ACCEPT_RETRY);
                    return;
                }
            };
            if self.conns.len() >= self.max_connections {
                log::warn!("{addr}: refused, {} connections open", self.conns.len());
                continue;
            }
            let _ = socket.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let token = entry.key();
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut socket, Token(token), Interest::READABLE)
            {
                log::warn!("{addr}: cannot register: {e}");
                continue;
            }
            let info = ConnInfo {
                shared: Arc::clone(&self.shared),
                token,
                serial: self.shared.new_gen(),
                addr,
                limit: self.app.send_limit(),
            };
            let env = Env {
                now,
                pool: &mut self.pool,
                app: &self.app,
                again: &mut self.again,
            };
            let mut conn = Conn::accepted(socket, info, &env);
            // The request may already be waiting.
            conn.readable = true;
            conn.touched = true;
            entry.insert(conn);
            self.touched.push(token);
        }
    }

    fn run_commands(&mut self, now: Instant) {
        let mut commands = std::mem::take(&mut self.commands);
        self.shared.take(&mut commands);
        for command in commands.drain(..) {
            match command {
                Command::Send {
                    target,
                    serial,
                    message,
                    done,
                } => {
                    let conn = target
                        .token()
                        .and_then(|t| self.conns.get_mut(t).map(|c| (t, c)))
                        .filter(|(_, c)| c.info.serial == serial);
                    match conn {
                        Some((token, conn)) => {
                            let mut env = Env {
                                now,
                                pool: &mut self.pool,
                                app: &self.app,
                                again: &mut self.again,
                            };
                            conn.post(message, done, &mut env);
                            if !conn.touched {
                                conn.touched = true;
                                self.touched.push(token);
                            }
                        }
                        None => {
                            if let Some(done) = done {
                                done.complete(Err(SendFailure::Gone));
                            }
                        }
                    }
                }
                Command::Connect(pending) => self.connect(*pending, now),
                Command::Shutdown { grace } => self.begin_shutdown(now, grace),
            }
        }
        self.commands = commands;
    }

    fn connect(&mut self, pending: PendingConnect, now: Instant) {
        if self.stopping.is_some() {
            pending.fail(&self.shared, "the event loop is shutting down");
            return;
        }
        let PendingConnect {
            mut socket,
            addr,
            handshake,
            config,
            handler,
            serial,
            token_cell,
            handshake_timeout,
        } = pending;
        let entry = self.conns.vacant_entry();
        let token = entry.key();
        if let Err(e) = self.poll.registry().register(
            &mut socket,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            let mut handler = handler;
            crate::client::report_failure(
                &mut *handler,
                &self.shared,
                addr,
                serial,
                &format!("cannot register: {e}"),
            );
            return;
        }
        let _ = token_cell.set(token);
        let info = ConnInfo {
            shared: Arc::clone(&self.shared),
            token,
            serial,
            addr,
            limit: self.app.send_limit(),
        };
        let mut conn = Conn::connecting(
            socket,
            info,
            handshake,
            config,
            handler,
            now + handshake_timeout,
        );
        conn.wants_write = true;
        conn.touched = true;
        entry.insert(conn);
        self.touched.push(token);
    }

    fn begin_shutdown(&mut self, now: Instant, grace: Duration) {
        if self.stopping.is_none() {
            self.stopping = Some(now + grace);
        }
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let tokens: Vec<usize> = self.conns.iter().map(|(t, _)| t).collect();
        for token in tokens {
            let keep = self.conns.get_mut(token).is_some_and(Conn::shutdown);
            if keep {
                self.touch(token);
            } else {
                self.remove(token, "server shutting down");
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, token, serial))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(conn) = self.conns.get_mut(token) {
                if conn.info.serial == serial && conn.scheduled == Some(at) {
                    conn.scheduled = None;
                    self.touch(token);
                }
            }
        }
    }

    fn drive_touched(&mut self, now: Instant) {
        let mut touched = std::mem::take(&mut self.touched);
        for &token in &touched {
            let Some(conn) = self.conns.get_mut(token) else {
                continue;
            };
            conn.touched = false;
            let mut env = Env {
                now,
                pool: &mut self.pool,
                app: &self.app,
                again: &mut self.again,
            };
            if conn.drive(&mut env) {
                self.update(token);
            } else {
                self.remove(token, "connection closed");
            }
        }
        touched.clear();
        // Connections touched while driving (none today) keep their place.
        touched.append(&mut self.touched);
        self.touched = touched;
    }

    /// Re-registers write interest and schedules the next deadline.
    fn update(&mut self, token: usize) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        let want_write = conn.needs_write();
        if want_write != conn.wants_write {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match self
                .poll
                .registry()
                .reregister(&mut conn.socket, Token(token), interest)
            {
                Ok(()) => conn.wants_write = want_write,
                Err(e) => log::warn!("reregister failed: {e}"),
            }
        }
        // Only an earlier deadline needs a new heap entry: a later one is picked up
        // when the earlier entry fires and finds nothing due.
        if let Some(next) = conn.next_deadline() {
            if conn.scheduled.is_none_or(|s| next < s) {
                conn.scheduled = Some(next);
                self.timers.push(Reverse((next, token, conn.info.serial)));
            }
        }
    }

    fn remove(&mut self, token: usize, reason: &str) {
        if !self.conns.contains(token) {
            return;
        }
        let mut conn = self.conns.remove(token);
        conn.finish(reason);
        let _ = self.poll.registry().deregister(&mut conn.socket);
    }

    /// Ends the loop: every connection still open is dropped, and queued commands fail.
    fn stop(&mut self) {
        let tokens: Vec<usize> = self.conns.iter().map(|(t, _)| t).collect();
        for token in tokens {
            self.remove(token, "server stopped");
        }
        for command in self.shared.close() {
            fail_command(command, &self.shared);
        }
    }
}
