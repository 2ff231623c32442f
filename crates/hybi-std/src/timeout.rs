//! The read timeout set on a socket, remembered so that a read sets it again only
//! when it must.

use std::time::Duration;

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
        assert_eq!(ReadTimeout::none().change(None), None);
    }
}
