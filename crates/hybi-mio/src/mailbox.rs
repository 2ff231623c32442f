//! A worker's mailbox: what other threads, and the worker's own handlers, post to its
//! event loop (letters for its connections, orders for the worker itself), and the
//! `mio::Waker` that rouses the loop when something arrives.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::outgoing::{Completion, Task};

/// A message (or a closure to run) for one of the worker's connections, posted by a
/// [`Sender`](crate::Sender).
pub(crate) struct Letter {
    pub(crate) target: Target,
    /// The connection's serial: a letter for a connection that is gone never reaches
    /// the one that took its slot.
    pub(crate) serial: u64,
    pub(crate) task: Task,
    pub(crate) done: Option<Completion>,
}

/// Which slot of the worker's slab a letter is for: known at once for a connection
/// the worker accepted, or filled in by the worker when it registers a client
/// connection (its order is posted before any letter to it, and the mailbox keeps
/// the order).
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

/// What a mailbox holds, in the order it was posted.
pub(crate) enum Item<O> {
    Letter(Letter),
    /// One of the worker's own orders (`O`: connect, adopt, shut down).
    Order(O),
}

/// The queue of one worker and the waker of its loop.
pub(crate) struct Mailbox<O> {
    id: usize,
    queue: Mutex<Queue<O>>,
    waker: mio::Waker,
    serials: AtomicU64,
}

struct Queue<O> {
    items: Vec<Item<O>>,
    /// False once the worker has stopped: posting gives the item back.
    open: bool,
}

thread_local! {
    /// The id of the worker running on this thread, if any.
    static CURRENT_WORKER: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_WORKER_ID: AtomicUsize = AtomicUsize::new(0);

impl<O> Mailbox<O> {
    pub(crate) fn new(waker: mio::Waker) -> Mailbox<O> {
        Mailbox {
            id: NEXT_WORKER_ID.fetch_add(1, Ordering::Relaxed),
            queue: Mutex::new(Queue {
                items: Vec::new(),
                open: true,
            }),
            waker,
            serials: AtomicU64::new(1),
        }
    }

    /// A number for a new connection, never reused on this worker.
    pub(crate) fn new_serial(&self) -> u64 {
        self.serials.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Queue<O>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the calling thread as this worker's.
    pub(crate) fn enter(&self) {
        CURRENT_WORKER.with(|c| c.set(self.id));
    }

    /// Queues `item`; wakes the loop unless called from the loop's own thread (which
    /// runs what its handlers posted before it sleeps again). Gives the item back if
    /// the worker has stopped.
    pub(crate) fn post(&self, item: Item<O>) -> Result<(), Item<O>> {
        self.push(item, |item| item)
    }

    /// Queues `wrap(value)`, or gives `value` back if the worker has stopped.
    fn push<T>(&self, value: T, wrap: impl FnOnce(T) -> Item<O>) -> Result<(), T> {
        let was_empty = {
            let mut q = self.lock();
            if !q.open {
                return Err(value);
            }
            let was_empty = q.items.is_empty();
            q.items.push(wrap(value));
            was_empty
        };
        self.wake(was_empty);
        Ok(())
    }

    /// Wakes the loop for what was just posted, unless it was already woken (the
    /// queue was not empty) or this is its own thread.
    fn wake(&self, was_empty: bool) {
        if was_empty && CURRENT_WORKER.with(Cell::get) != self.id {
            if let Err(e) = self.waker.wake() {
                log::error!("cannot wake worker {}: {e}", self.id);
            }
        }
    }

    /// True if nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    /// Moves what waits into `into` (which should be empty).
    pub(crate) fn take(&self, into: &mut Vec<Item<O>>) {
        std::mem::swap(&mut self.lock().items, into);
    }

    /// Stops taking posts and returns what still waits.
    pub(crate) fn close(&self) -> Vec<Item<O>> {
        let mut q = self.lock();
        q.open = false;
        std::mem::take(&mut q.items)
    }
}

/// The part of a mailbox a [`Sender`](crate::Sender) uses: posting letters. Senders
/// hold it as a trait object, so they need not know the worker's orders (which carry
/// handlers, whose callbacks hand out senders).
pub(crate) trait Letterbox: Send + Sync {
    /// The worker's id, unique in the process.
    fn id(&self) -> usize;
    /// Posts `letter` (see [`Mailbox::post`]); gives it back if the worker stopped.
    fn post_letter(&self, letter: Letter) -> Result<(), Letter>;
}

impl<O: Send> Letterbox for Mailbox<O> {
    fn id(&self) -> usize {
        self.id
    }

    fn post_letter(&self, letter: Letter) -> Result<(), Letter> {
        self.push(letter, Item::Letter)
    }
}
