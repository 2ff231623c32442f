//! One event loop: a mio `Poll`, its listener, its connections, its timers, and the
//! orders it takes through its mailbox.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hybi::Instant;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use hybi_std::AcceptBackoff;

use crate::app::App;
use crate::balance::Loads;
use crate::client::{ConnectError, PendingConnect};
use crate::conn::Conn;
use crate::env::Env;
use crate::handler::ConnInfo;
use crate::mailbox::{Item, Letter, Letterbox, Mailbox};
use crate::outgoing::SendFailure;
use crate::pool::Pool;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

/// Buffers up to this size should come from the allocator's heap, not from a mapping
/// of their own: see [`settle_allocator`].
const HEAP_BUFFERS_UP_TO: usize = 1 << 20;

/// Allocates and frees one block of [`HEAP_BUFFERS_UP_TO`], before any buffer.
///
/// glibc's malloc maps each block over 128 KiB on pages of its own (at a page start
/// plus 16 bytes) until a mapped block is freed; from then on blocks up to the freed
/// one's size come from its heap, at addresses unrelated to page boundaries. Without
/// this, a worker's receive buffers (256 KiB) and its output buffer are all mapped, so
/// an echoed payload is copied between addresses a few bytes apart modulo 4 KiB (a
/// client frame's header is 4 bytes longer than the server's), and glibc's `rep movsb`
/// copy was several times slower there on the AMD EPYC measured: with 64 KiB echoes
/// over 64 connections the copy took 41% of the worker's time instead of 8%, 48 µs of
/// CPU per message instead of 29 (with the copy done by glibc's vector loop instead,
/// or with heap buffers, the difference is gone). glibc raises the threshold this way
/// the first time the program frees any mapped block anyway; this only stops the
/// speed from depending on when that happens. Other allocators ignore it.
fn settle_allocator() {
    drop(std::hint::black_box(vec![0u8; HEAP_BUFFERS_UP_TO]));
}

/// What a worker is told to do, besides delivering letters to its connections.
pub(crate) enum Order {
    /// Register a client connection and run its handshake.
    Connect(Box<PendingConnect>),
    /// Take a connection another worker accepted (this one held fewer).
    Adopt { socket: TcpStream, addr: SocketAddr },
    /// Stop accepting, close every connection with 1001, stop within `grace`.
    Shutdown { grace: Duration },
}

/// A worker's mailbox.
pub(crate) type Inbox = Mailbox<Order>;

/// A worker among the server's workers: its place, how many connections each holds,
/// and their mailboxes (in the same order).
pub(crate) struct Team {
    pub(crate) index: usize,
    pub(crate) loads: Arc<Loads>,
    pub(crate) mailboxes: Arc<[Arc<Inbox>]>,
}

pub(crate) struct Worker {
    poll: Poll,
    events: Events,
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    mailbox: Arc<Inbox>,
    team: Team,
    app: Arc<App>,
    pool: Pool,
    /// (deadline, token, generation); stale entries are skipped when they fire.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    touched: Vec<usize>,
    again: Vec<usize>,
    /// What was taken from the mailbox (kept to reuse its capacity).
    items: Vec<Item<Order>>,
    /// Connections allowed over all the workers.
    max_connections: usize,
    /// Shutting down: stop when every connection is gone or at this instant.
    stopping: Option<Instant>,
    /// Accepting failed for want of a resource: try again at this instant. Readiness
    /// is edge-triggered, so connections already queued would otherwise wait for the
    /// next one to arrive.
    accept_retry: Option<Instant>,
    backoff: AcceptBackoff,
    /// Stop once no connection is left (a [`Client`](crate::Client)'s loop).
    until_idle: bool,
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
        let mailbox = Arc::new(Mailbox::new(waker));
        let team = Team {
            index: 0,
            loads: Arc::new(Loads::new(1)),
            mailboxes: Arc::new([Arc::clone(&mailbox)]),
        };
        Ok(Worker {
            poll,
            events: Events::with_capacity(1024),
            listener,
            conns: Slab::new(),
            mailbox,
            team,
            app,
            pool: Pool::default(),
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            again: Vec::new(),
            items: Vec::new(),
            max_connections,
            stopping: None,
            accept_retry: None,
            backoff: AcceptBackoff::new(),
            until_idle: false,
        })
    }

    pub(crate) fn mailbox(&self) -> Arc<Inbox> {
        Arc::clone(&self.mailbox)
    }

    /// Makes this worker one of `team` (alone until then).
    pub(crate) fn join(mut self, team: Team) -> Worker {
        self.team = team;
        self
    }

    /// Makes the loop stop once it holds no connection (after a turn: what was posted
    /// before it runs, such as the one connection of a [`Client`](crate::Client), is
    /// registered first).
    pub(crate) fn until_idle(mut self) -> Worker {
        self.until_idle = true;
        self
    }

    /// Runs the loop until shutdown (or, [`until_idle`](Self::until_idle), until no
    /// connection is left).
    pub(crate) fn run(mut self) {
        self.mailbox.enter();
        settle_allocator();
        loop {
            let now = Instant::now();
            let timeout = if self.again.is_empty() && self.mailbox.is_empty() {
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
                .map(|at| at.saturating_duration_since(now))
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
            let now = Instant::now();
            let mut accept = self.accept_retry.is_some_and(|at| now >= at);
            for event in self.events.iter() {
                match event.token() {
                    LISTENER => accept = true,
                    WAKER => {}
                    Token(t) => {
                        if let Some(conn) = self.conns.get_mut(t) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                conn.io.readable = true;
                            }
                            if event.is_writable() || event.is_write_closed() {
                                conn.io.writable = true;
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
            self.read_mail(now);
            self.fire_timers(now);
            // Keeps the list's storage: the turns below fill it again.
            let mut again = std::mem::take(&mut self.again);
            for &t in &again {
                self.touch(t);
            }
            again.clear();
            self.again = again;
            self.drive_touched(now);
            // Letters posted from this thread while driving (a handler broadcasting
            // to its room) post no wake-up: run them now rather than after a sleep.
            for _ in 0..8 {
                if self.mailbox.is_empty() {
                    break;
                }
                self.read_mail(now);
                self.drive_touched(now);
            }
            if let Some(deadline) = self.stopping {
                if self.conns.is_empty() || now >= deadline {
                    break;
                }
            }
            if self.until_idle && self.conns.is_empty() {
                break;
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
            let (socket, addr) = match listener.accept() {
                // The backlog is empty: the next connection brings readiness.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_retry = None;
                    return;
                }
                accepted => match self.backoff.assess(accepted) {
                    Ok(Ok(pair)) => {
                        self.accept_retry = None;
                        pair
                    }
                    // A connection that failed before it was taken: the next may be fine.
                    Ok(Err(wait)) if wait.is_zero() => continue,
                    // Out of descriptors, buffers or memory: the connection stays
                    // queued, and the readiness that announced it will not come again.
                    Ok(Err(wait)) => {
                        self.accept_retry = Some(now + wait);
                        return;
                    }
                    // An error that says nothing of how long it lasts: the listener
                    // itself may be broken. Try again now and then.
                    Err(e) => {
                        log::error!("accept failed: {e}; retrying in a second");
                        self.accept_retry = Some(now + Duration::from_secs(1));
                        return;
                    }
                },
            };
            self.place(socket, addr, now);
        }
    }

    /// Puts a connection this worker accepted on the worker that holds fewest: this
    /// one, unless another holds fewer, which is then handed it through its mailbox.
    fn place(&mut self, socket: TcpStream, addr: SocketAddr, now: Instant) {
        let Team {
            index,
            loads,
            mailboxes,
        } = &self.team;
        let held = loads.total();
        if held >= self.max_connections {
            log::warn!("{addr}: refused, {held} connections open");
            return;
        }
        let home = loads.home(*index);
        let (socket, addr) = match mailboxes.get(home).filter(|_| home != *index) {
            None => (socket, addr),
            Some(mailbox) => {
                loads.add(home);
                match mailbox.post(Item::Order(Order::Adopt { socket, addr })) {
                    Ok(()) => return,
                    // That worker has stopped: keep the connection.
                    Err(item) => {
                        loads.remove(home);
                        let Item::Order(Order::Adopt { socket, addr }) = item else {
                            return;
                        };
                        (socket, addr)
                    }
                }
            }
        };
        self.team.loads.add(self.team.index);
        self.adopt(socket, addr, now);
    }

    /// Registers an accepted connection (already counted in this worker's load) and
    /// drives it at once: its request may be waiting.
    fn adopt(&mut self, mut socket: TcpStream, addr: SocketAddr, now: Instant) {
        if self.stopping.is_some() {
            self.team.loads.remove(self.team.index);
            return;
        }
        let _ = socket.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let token = entry.key();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut socket, Token(token), Interest::READABLE)
        {
            log::warn!("{addr}: cannot register: {e}");
            self.team.loads.remove(self.team.index);
            return;
        }
        let info = ConnInfo {
            letterbox: Arc::clone(&self.mailbox) as Arc<dyn Letterbox>,
            token,
            serial: self.mailbox.new_serial(),
            addr,
            limit: self.app.send_limit(),
        };
        let env = Env {
            now,
            pool: &mut self.pool,
            app: &self.app,
            again: &mut self.again,
        };
        let Some(mut conn) = Conn::accepted(socket, info, &env) else {
            self.team.loads.remove(self.team.index);
            return;
        };
        conn.io.readable = true;
        conn.touched = true;
        entry.insert(conn);
        self.touched.push(token);
    }

    /// The mailbox as the connections' [`Sender`](crate::Sender)s see it.
    fn letterbox(&self) -> Arc<dyn Letterbox> {
        Arc::clone(&self.mailbox) as Arc<dyn Letterbox>
    }

    /// Runs what was posted: letters to connections, and orders.
    fn read_mail(&mut self, now: Instant) {
        let mut items = std::mem::take(&mut self.items);
        self.mailbox.take(&mut items);
        for item in items.drain(..) {
            match item {
                Item::Letter(letter) => self.deliver(letter, now),
                Item::Order(Order::Connect(pending)) => self.connect(*pending, now),
                Item::Order(Order::Adopt { socket, addr }) => self.adopt(socket, addr, now),
                Item::Order(Order::Shutdown { grace }) => self.begin_shutdown(now, grace),
            }
        }
        self.items = items;
    }

    /// Hands a letter to its connection, if it is still there.
    fn deliver(&mut self, letter: Letter, now: Instant) {
        let Letter {
            target,
            serial,
            task,
            done,
        } = letter;
        let conn = target
            .token()
            .and_then(|t| self.conns.get_mut(t).map(|c| (t, c)))
            .filter(|(_, c)| c.info.serial == serial);
        let Some((token, conn)) = conn else {
            if let Some(done) = done {
                done.complete(Err(SendFailure::Gone));
            }
            return;
        };
        let mut env = Env {
            now,
            pool: &mut self.pool,
            app: &self.app,
            again: &mut self.again,
        };
        conn.post(task, done, &mut env);
        if !conn.touched {
            conn.touched = true;
            self.touched.push(token);
        }
    }

    fn connect(&mut self, pending: PendingConnect, now: Instant) {
        if self.stopping.is_some() {
            pending.fail(self.letterbox(), ConnectError::Stopped);
            return;
        }
        let mut pending = pending;
        let entry = self.conns.vacant_entry();
        let token = entry.key();
        if let Err(e) = self.poll.registry().register(
            &mut pending.socket,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            pending.fail(self.letterbox(), ConnectError::Connect(e));
            return;
        }
        let PendingConnect {
            socket,
            tls,
            addr,
            handshake,
            config,
            handler,
            serial,
            token_cell,
            handshake_timeout,
        } = pending;
        let _ = token_cell.set(token);
        let info = ConnInfo {
            letterbox: Arc::clone(&self.mailbox) as Arc<dyn Letterbox>,
            token,
            serial,
            addr,
            limit: self.app.send_limit(),
        };
        let mut conn = Conn::connecting(
            socket,
            tls,
            info,
            handshake,
            config,
            handler,
            now + handshake_timeout,
        );
        conn.write_interest = true;
        conn.touched = true;
        entry.insert(conn);
        self.touched.push(token);
        self.team.loads.add(self.team.index);
    }

    fn begin_shutdown(&mut self, now: Instant, grace: Duration) {
        if self.stopping.is_none() {
            self.stopping = Some(now + grace);
        }
        self.deregister_listener();
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
        let want_write = conn.wants_write();
        if want_write != conn.write_interest {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match self
                .poll
                .registry()
                .reregister(&mut conn.io.socket, Token(token), interest)
            {
                Ok(()) => conn.write_interest = want_write,
                Err(e) => log::warn!("reregister failed: {e}"),
            }
        }
        // Only an earlier deadline needs a new heap entry: a later one is picked up
        // when the earlier entry fires and finds nothing due.
        if let Some(next) = conn.deadline {
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
        let _ = self.poll.registry().deregister(&mut conn.io.socket);
        self.team.loads.remove(self.team.index);
    }

    /// Ends the loop: every connection still open is dropped, and queued commands fail.
    fn stop(&mut self) {
        let tokens: Vec<usize> = self.conns.iter().map(|(t, _)| t).collect();
        for token in tokens {
            self.remove(token, "server stopped");
        }
        for item in self.mailbox.close() {
            match item {
                Item::Letter(Letter { done: Some(d), .. }) => d.complete(Err(SendFailure::Gone)),
                Item::Order(Order::Connect(pending)) => {
                    pending.fail(self.letterbox(), ConnectError::Stopped);
                }
                // Counted here when it was handed over; dropping it closes it.
                Item::Order(Order::Adopt { .. }) => self.team.loads.remove(self.team.index),
                Item::Letter(_) | Item::Order(Order::Shutdown { .. }) => {}
            }
        }
    }

    /// Stops accepting.
    fn deregister_listener(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
    }
}
