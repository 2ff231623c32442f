//! Spreading connections over a server's workers: how many each holds ([`Loads`]),
//! and which of them a connection just accepted goes to.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The number of connections each worker holds (or has been handed and not yet
/// registered), shared by the workers.
pub(crate) struct Loads {
    held: Box<[AtomicUsize]>,
}

impl Loads {
    pub(crate) fn new(workers: usize) -> Loads {
        Loads {
            held: (0..workers.max(1)).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// Counts one more connection for worker `i`.
    pub(crate) fn add(&self, i: usize) {
        if let Some(n) = self.held.get(i) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one connection fewer for worker `i`.
    pub(crate) fn remove(&self, i: usize) {
        if let Some(n) = self.held.get(i) {
            let _ = n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Connections over all workers.
    pub(crate) fn total(&self) -> usize {
        self.held.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }

    /// Where a connection that worker `me` accepted goes: to `me`, unless another
    /// worker holds fewer connections; then to the one that holds fewest (the first
    /// of equals). The counts may be a moment old; the next connection corrects it.
    pub(crate) fn home(&self, me: usize) -> usize {
        let mine = self.held.get(me).map_or(0, |n| n.load(Ordering::Relaxed));
        let mut best = (mine, me);
        for (i, n) in self.held.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            if n < best.0 {
                best = (n, i);
            }
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_stays_with_its_acceptor_unless_another_worker_holds_fewer() {
        let loads = Loads::new(3);
        assert_eq!(loads.home(1), 1, "all equal: no hand-off");
        loads.add(1);
        assert_eq!(loads.home(1), 0, "the first of the least loaded");
        loads.add(0);
        loads.add(2);
        assert_eq!(loads.home(2), 2);
        loads.add(2);
        assert_eq!(loads.home(2), 0);
        loads.remove(0);
        loads.remove(0); // never below zero
        assert_eq!(loads.total(), 3);
        assert_eq!(loads.home(1), 0);
    }

    #[test]
    fn placing_every_connection_by_home_splits_a_burst_evenly() {
        // One worker accepts a burst of 64: each connection goes where `home` says.
        let loads = Loads::new(2);
        for _ in 0..64 {
            loads.add(loads.home(0));
        }
        assert_eq!(loads.held[0].load(Ordering::Relaxed), 32);
        assert_eq!(loads.held[1].load(Ordering::Relaxed), 32);
    }
}
