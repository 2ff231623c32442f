//! The engine's time, read from the std monotonic clock.

use std::sync::OnceLock;
use std::time::Duration;
use std::time::Instant as StdInstant;

fn epoch() -> StdInstant {
    static EPOCH: OnceLock<StdInstant> = OnceLock::new();
    *EPOCH.get_or_init(StdInstant::now)
}

/// Now, on the engine's scale (time since the first call in this process).
pub(crate) fn now() -> hybi::Instant {
    hybi::Instant::from_duration(epoch().elapsed())
}

/// An engine instant as a std instant.
pub(crate) fn to_std(t: hybi::Instant) -> StdInstant {
    epoch() + t.as_duration()
}

/// When a blocked reader must wake up: the engine's next timer or the caller's read
/// deadline, whichever comes first.
pub(crate) fn wake_at(conn: &hybi::Connection, deadline: Option<StdInstant>) -> Option<StdInstant> {
    let timer = conn.poll_timeout().map(to_std);
    match (timer, deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The read timeout last set on a socket, so that a read sets it again (a syscall)
/// only when it must.
#[derive(Debug, Default)]
pub(crate) struct ReadTimeout(Option<Option<Duration>>);

impl ReadTimeout {
    /// The socket is known to have no read timeout.
    pub(crate) fn none() -> ReadTimeout {
        ReadTimeout(Some(None))
    }

    /// A read must return within `left` (`None`: it may block forever). Returns the
    /// timeout to set on the socket first, or `None` if the one set will do: one that
    /// fires no later than `left`, and not much sooner (waking early only costs the
    /// caller's loop one more turn).
    ///
    /// A new timeout is set a little short of `left` (15/16), so that the reads of a
    /// busy connection, whose next timer moves a little later with every message,
    /// keep it.
    pub(crate) fn change(&mut self, left: Option<Duration>) -> Option<Option<Duration>> {
        let keep = match (self.0, left) {
            (Some(None), None) => true,
            (Some(Some(set)), Some(left)) => set <= left && set >= left / 4 * 3,
            _ => false,
        };
        if keep {
            return None;
        }
        let set = left.map(|left| {
            if left < Duration::from_millis(16) {
                left
            } else {
                left / 16 * 15
            }
        });
        self.0 = Some(set);
        Some(set)
    }

    /// The socket's timeout was changed elsewhere: set it on the next read.
    pub(crate) fn forget(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_timeout_is_set_only_when_it_must_change() {
        let mut t = ReadTimeout::default();
        assert_eq!(t.change(None), Some(None), "unknown at first");
        assert_eq!(t.change(None), None);
        let s = Duration::from_secs(1);
        assert_eq!(t.change(Some(s * 30)), Some(Some(s * 30 / 16 * 15)));
        // A busy connection: the next timer stays about 30 s away.
        assert_eq!(t.change(Some(s * 30)), None);
        assert_eq!(t.change(Some(s * 29)), None);
        // Would wake too late: set again.
        assert_eq!(t.change(Some(s * 20)), Some(Some(s * 20 / 16 * 15)));
        // Would wake much too early: set again.
        assert_eq!(t.change(Some(s * 60)), Some(Some(s * 60 / 16 * 15)));
        // Short timeouts are exact.
        let ms = Duration::from_millis(5);
        assert_eq!(t.change(Some(ms)), Some(Some(ms)));
        assert_eq!(t.change(None), Some(None));
        t.forget();
        assert_eq!(t.change(None), Some(None));
        assert_eq!(ReadTimeout::none().change(None), None);
    }
}
