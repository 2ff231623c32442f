//! Sending to a connection from any thread: [`Sender`], [`Outgoing`], [`Completion`].

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use hybi::CloseCode;

use crate::client::PendingConnect;

/// A message for a connection, queued through a [`Sender`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A text message shared between many recipients (a broadcast) without a copy each.
    SharedText(Arc<str>),
    /// A binary message shared between many recipients.
    SharedBinary(Arc<[u8]>),
    /// A ping with this payload (at most 125 bytes).
    Ping(Vec<u8>),
    /// Start the closing handshake with this code and reason.
    Close(CloseCode, String),
}

impl From<&str> for Outgoing {
    fn from(text: &str) -> Outgoing {
        Outgoing::Text(text.to_owned())
    }
}

impl From<String> for Outgoing {
    fn from(text: String) -> Outgoing {
        Outgoing::Text(text)
    }
}

impl From<Arc<str>> for Outgoing {
    fn from(text: Arc<str>) -> Outgoing {
        Outgoing::SharedText(text)
    }
}

impl From<&[u8]> for Outgoing {
    fn from(data: &[u8]) -> Outgoing {
        Outgoing::Binary(data.to_vec())
    }
}

impl From<Vec<u8>> for Outgoing {
    fn from(data: Vec<u8>) -> Outgoing {
        Outgoing::Binary(data)
    }
}

impl From<Arc<[u8]>> for Outgoing {
    fn from(data: Arc<[u8]>) -> Outgoing {
        Outgoing::SharedBinary(data)
    }
}

/// Why a message did not reach the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// The connection is gone (closed, failed, or never opened), or its event loop
    /// stopped.
    Gone,
    /// The connection's queued output is over its limit (a slow reader); the message
    /// was dropped. See [`ServerBuilder::high_water`](crate::ServerBuilder::high_water).
    Backpressure,
    /// The engine refused it (e.g. after the closing handshake started, or a ping
    /// longer than 125 bytes).
    Refused(hybi::SendError),
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFailure::Gone => f.write_str("the connection is gone"),
            SendFailure::Backpressure => f.write_str("the connection's output is over its limit"),
            SendFailure::Refused(e) => write!(f, "refused: {e}"),
        }
    }
}

impl std::error::Error for SendFailure {}

/// Identifies a connection within a process (stable for its whole life, never
/// reused), e.g. as a key for a chat room's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) worker: usize,
    pub(crate) serial: u64,
}

type Outcome = Result<(), SendFailure>;

#[derive(Default)]
struct Slot {
    outcome: Mutex<Option<Outcome>>,
    ready: Condvar,
}

/// The outcome of a tracked send: resolved when the message has been written to the
/// transport (handed to the kernel), or when it cannot be.
#[derive(Clone, Default)]
pub struct Completion {
    slot: Arc<Slot>,
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("outcome", &self.try_result())
            .finish()
    }
}

impl Completion {
    fn lock(&self) -> MutexGuard<'_, Option<Outcome>> {
        self.slot.outcome.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn complete(&self, outcome: Outcome) {
        let mut slot = self.lock();
        if slot.is_none() {
            *slot = Some(outcome);
            self.slot.ready.notify_all();
        }
    }

    /// The outcome, if known yet.
    pub fn try_result(&self) -> Option<Result<(), SendFailure>> {
        *self.lock()
    }

    /// Blocks until the outcome is known.
    pub fn wait(&self) -> Result<(), SendFailure> {
        let mut slot = self.lock();
        loop {
            if let Some(outcome) = *slot {
                return outcome;
            }
            slot = self
                .slot
                .ready
                .wait(slot)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Blocks until the outcome is known or `timeout` passes (`None`).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<(), SendFailure>> {
        let slot = self.lock();
        let (slot, _) = self
            .slot
            .ready
            .wait_timeout_while(slot, timeout, |s| s.is_none())
            .unwrap_or_else(|p| p.into_inner());
        *slot
    }
}

/// Which connection a [`Sender`] addresses: its slab token, known at once for
/// connections the loop accepted, or filled in by the loop for a client connection
/// it registers later (its `Connect` command is queued before any send).
#[derive(Clone)]
pub(crate) enum Target {
    Known(usize),
    Pending(Arc<OnceLock<usize>>),
}

impl Target {
    pub(crate) fn token(&self) -> Option<usize> {
        match self {
            Target::Known(t) => Some(*t),
            Target::Pending(cell) => cell.get().copied(),
        }
    }
}

/// Work posted to a worker's event loop.
pub(crate) enum Command {
    Send {
        target: Target,
        serial: u64,
        message: Outgoing,
        done: Option<Completion>,
    },
    Connect(Box<PendingConnect>),
    Shutdown {
        grace: Duration,
    },
}

/// What a worker shares with other threads: its command queue and the waker of its
/// event loop.
pub(crate) struct WorkerShared {
    pub(crate) id: usize,
    queue: Mutex<Queue>,
    waker: mio::Waker,
    next_gen: AtomicU64,
}

struct Queue {
    commands: Vec<Command>,
    open: bool,
}

thread_local! {
    /// The id of the worker running on this thread, if any.
    static CURRENT_WORKER: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_WORKER_ID: AtomicUsize = AtomicUsize::new(0);

impl WorkerShared {
    pub(crate) fn new(waker: mio::Waker) -> WorkerShared {
        WorkerShared {
            id: NEXT_WORKER_ID.fetch_add(1, Ordering::Relaxed),
            queue: Mutex::new(Queue {
                commands: Vec::new(),
                open: true,
            }),
            waker,
            next_gen: AtomicU64::new(1),
        }
    }

    /// A number for a new connection, never reused on this worker.
    pub(crate) fn new_gen(&self) -> u64 {
        self.next_gen.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the calling thread as this worker's.
    pub(crate) fn enter(&self) {
        CURRENT_WORKER.with(|c| c.set(self.id));
    }

    /// Queues a command; wakes the loop unless called from the loop's own thread
    /// (which runs what its handlers queued before it sleeps again). Gives the
    /// command back if the worker has stopped.
    pub(crate) fn post(&self, command: Command) -> Result<(), Command> {
        let was_empty = {
            let mut q = self.lock();
            if !q.open {
                return Err(command);
            }
            let was_empty = q.commands.is_empty();
            q.commands.push(command);
            was_empty
        };
        if was_empty && CURRENT_WORKER.with(Cell::get) != self.id {
            if let Err(e) = self.waker.wake() {
                log::error!("cannot wake worker {}: {e}", self.id);
            }
        }
        Ok(())
    }

    /// True if commands are waiting.
    pub(crate) fn has_commands(&self) -> bool {
        !self.lock().commands.is_empty()
    }

    /// Moves the queued commands into `into` (which should be empty).
    pub(crate) fn take(&self, into: &mut Vec<Command>) {
        std::mem::swap(&mut self.lock().commands, into);
    }

    /// Stops accepting commands and returns those still queued.
    pub(crate) fn close(&self) -> Vec<Command> {
        let mut q = self.lock();
        q.open = false;
        std::mem::take(&mut q.commands)
    }
}

/// Fails a command that will never run.
pub(crate) fn fail_command(command: Command, shared: &Arc<WorkerShared>) {
    match command {
        Command::Send { done: Some(c), .. } => c.complete(Err(SendFailure::Gone)),
        Command::Connect(pending) => pending.fail(shared, "the event loop stopped"),
        _ => {}
    }
}

/// A handle to one connection, usable from any thread: send text, binary, pings, or
/// close. Cheap to clone; holding one does not keep the connection open.
///
/// Sends are queued to the connection's event loop (waking it through a
/// `mio::Waker`). [`send`](Self::send) is fire-and-forget;
/// [`send_tracked`](Self::send_tracked) returns a [`Completion`] that resolves once
/// the message is written to the transport, or fails if the connection is gone.
#[derive(Clone)]
pub struct Sender {
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) target: Target,
    pub(crate) serial: u64,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("id", &self.id()).finish()
    }
}

impl Sender {
    /// The connection's id.
    pub fn id(&self) -> ConnId {
        ConnId {
            worker: self.shared.id,
            serial: self.serial,
        }
    }

    fn post(&self, message: Outgoing, done: Option<Completion>) -> Result<(), SendFailure> {
        self.shared
            .post(Command::Send {
                target: self.target.clone(),
                serial: self.serial,
                message,
                done,
            })
            .map_err(|command| {
                fail_command(command, &self.shared);
                SendFailure::Gone
            })
    }

    /// Queues `message` for the connection. An error means its event loop has
    /// stopped; a connection that closed meanwhile drops the message silently (use
    /// [`send_tracked`](Self::send_tracked) to know).
    pub fn send(&self, message: impl Into<Outgoing>) -> Result<(), SendFailure> {
        self.post(message.into(), None)
    }

    /// Queues `message` and returns its [`Completion`].
    pub fn send_tracked(&self, message: impl Into<Outgoing>) -> Completion {
        let done = Completion::default();
        let _ = self.post(message.into(), Some(done.clone()));
        done
    }

    /// Queues a text message.
    pub fn send_text(&self, text: &str) -> Result<(), SendFailure> {
        self.send(text)
    }

    /// Queues a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), SendFailure> {
        self.send(data)
    }

    /// Queues a ping.
    pub fn ping(&self, payload: &[u8]) -> Result<(), SendFailure> {
        self.send(Outgoing::Ping(payload.to_vec()))
    }

    /// Starts the closing handshake.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), SendFailure> {
        self.send(Outgoing::Close(code, reason.to_owned()))
    }
}
