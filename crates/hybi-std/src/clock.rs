//! The engine's time, read from the std monotonic clock.

use std::sync::OnceLock;
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
