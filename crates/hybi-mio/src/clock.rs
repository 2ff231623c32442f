//! The engine's time, read from the std monotonic clock.

use std::sync::OnceLock;
use std::time::{Duration, Instant as StdInstant};

fn epoch() -> StdInstant {
    static EPOCH: OnceLock<StdInstant> = OnceLock::new();
    *EPOCH.get_or_init(StdInstant::now)
}

/// Now, on the engine's scale.
pub(crate) fn now() -> hybi::Instant {
    hybi::Instant::from_duration(epoch().elapsed())
}

/// How long from `now` until `at` (zero if past).
pub(crate) fn until(now: hybi::Instant, at: hybi::Instant) -> Duration {
    at.saturating_duration_since(now)
}
