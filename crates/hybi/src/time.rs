//! Caller-supplied time. The engine never reads a clock; adapters pass a monotonic
//! [`Instant`] into [`Connection::handle_timeout`](crate::Connection::handle_timeout).

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on the caller's monotonic clock, measured from an epoch of the caller's
/// choosing (process start, say). Only differences between instants matter.
///
/// ```
/// use core::time::Duration;
/// use hybi::Instant;
/// let t = Instant::from_millis(1_500);
/// assert_eq!(t + Duration::from_millis(500), Instant::from_millis(2_000));
/// assert_eq!(Instant::from_millis(2_000) - t, Duration::from_millis(500));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since_epoch` after the epoch.
    #[inline]
    pub const fn from_duration(since_epoch: Duration) -> Instant {
        Instant(since_epoch)
    }

    /// The instant `ms` milliseconds after the epoch.
    #[inline]
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(Duration::from_millis(ms))
    }

    /// Time since the epoch.
    #[inline]
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero if `earlier` is later.
    #[inline]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates instead of overflowing.
    #[inline]
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// Saturates at zero.
    #[inline]
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}
