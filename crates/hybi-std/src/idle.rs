//! Connection threads that outlive their connection: a thread that finished one
//! waits a while for the next instead of exiting, so a server taking many short
//! connections hands each to a waiting thread (a lock and a wake-up) instead of
//! starting a thread for it (a stack to map, a dozen system calls, a scheduler
//! round trip).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Threads that wait for work, and the work handed to them.
pub(crate) struct Idle<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    /// At most this many threads wait at once; others exit.
    keep: usize,
    /// How long a thread waits before it exits.
    linger: Duration,
}

struct State<T> {
    /// Threads in [`Idle::wait`].
    waiting: usize,
    /// Work handed over and not yet taken; never longer than `waiting`, so every
    /// piece has a thread that takes it.
    queue: VecDeque<T>,
    closed: bool,
}

impl<T> Idle<T> {
    pub(crate) fn new(keep: usize, linger: Duration) -> Idle<T> {
        Idle {
            state: Mutex::new(State {
                waiting: 0,
                queue: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            keep,
            linger,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is consistent between statements: a panic elsewhere leaves it so.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives `work` to a waiting thread, or returns it if none is free (the caller
    /// starts a thread for it).
    pub(crate) fn hand_over(&self, work: T) -> Option<T> {
        let mut state = self.lock();
        if state.closed || state.queue.len() >= state.waiting {
            return Some(work);
        }
        state.queue.push_back(work);
        drop(state);
        self.ready.notify_one();
        None
    }

    /// Called by a thread whose work is done: the next piece of work, or `None` if
    /// none came within the linger time (or enough threads wait already, or the
    /// server stopped): the thread should then exit.
    pub(crate) fn wait(&self) -> Option<T> {
        let mut state = self.lock();
        if state.closed || state.waiting >= self.keep {
            return None;
        }
        state.waiting += 1;
        let until = Instant::now() + self.linger;
        loop {
            if let Some(work) = state.queue.pop_front() {
                state.waiting -= 1;
                return Some(work);
            }
            let left = until.saturating_duration_since(Instant::now());
            if state.closed || left.is_zero() {
                state.waiting -= 1;
                return None;
            }
            state = match self.ready.wait_timeout(state, left) {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Wakes every waiting thread to exit; work handed over before still runs.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::thread;

    /// Starts a worker thread like the server does: it runs its first job, then
    /// whatever it is handed, reporting (job, thread) for each.
    fn worker(idle: &Arc<Idle<u32>>, first: u32, done: &mpsc::Sender<(u32, thread::ThreadId)>) {
        let idle = Arc::clone(idle);
        let done = done.clone();
        thread::spawn(move || {
            let mut job = first;
            loop {
                let _ = done.send((job, thread::current().id()));
                match idle.wait() {
                    Some(next) => job = next,
                    None => return,
                }
            }
        });
    }

    /// Waits (at most 10 s) until the number of waiting threads satisfies `ok`.
    fn wait_for(idle: &Idle<u32>, ok: impl Fn(usize) -> bool, what: &str) {
        let start = Instant::now();
        while !ok(idle.lock().waiting) {
            assert!(start.elapsed() < Duration::from_secs(10), "{what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn work_goes_to_a_waiting_thread_and_is_returned_when_none_waits() {
        let idle = Arc::new(Idle::new(4, Duration::from_secs(30)));
        let (tx, rx) = mpsc::channel();
        assert_eq!(idle.hand_over(1), Some(1), "no thread waits yet");
        worker(&idle, 1, &tx);
        let (job, first_thread) = rx.recv().unwrap();
        assert_eq!(job, 1);
        wait_for(&idle, |n| n >= 1, "no thread waits");
        assert_eq!(idle.hand_over(2), None);
        let (job, thread) = rx.recv().unwrap();
        assert_eq!((job, thread), (2, first_thread), "the same thread ran it");
        idle.close();
    }

    #[test]
    fn no_more_work_is_queued_than_threads_wait() {
        let idle = Idle::new(4, Duration::from_secs(30));
        idle.lock().waiting = 2;
        assert_eq!(idle.hand_over(1), None);
        assert_eq!(idle.hand_over(2), None);
        assert_eq!(idle.hand_over(3), Some(3), "both waiting threads have work");
        assert_eq!(idle.lock().queue, [1, 2]);
    }

    #[test]
    fn threads_beyond_the_limit_and_after_the_linger_exit() {
        let idle = Arc::new(Idle::new(2, Duration::from_secs(1)));
        let (tx, rx) = mpsc::channel();
        for job in 0..3 {
            worker(&idle, job, &tx);
        }
        for _ in 0..3 {
            rx.recv().unwrap();
        }
        wait_for(&idle, |n| n >= 2, "no thread waits");
        thread::sleep(Duration::from_millis(50));
        assert_eq!(idle.lock().waiting, 2, "the third thread exited");
        wait_for(&idle, |n| n == 0, "threads linger on");
        assert_eq!(idle.hand_over(9), Some(9), "nobody waits any more");
    }

    #[test]
    fn close_wakes_every_waiting_thread() {
        let idle = Arc::new(Idle::new(8, Duration::from_secs(60)));
        let (tx, rx) = mpsc::channel();
        for job in 0..3 {
            worker(&idle, job, &tx);
        }
        wait_for(&idle, |n| n >= 3, "no thread waits");
        idle.close();
        wait_for(&idle, |n| n == 0, "close woke nobody");
        assert_eq!(idle.hand_over(7), Some(7));
        drop(tx);
        assert_eq!(rx.iter().count(), 3, "no job ran twice");
    }
}
