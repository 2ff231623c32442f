//! Timers: keepalive pings, the pong deadline, the idle and close timeouts.

use core::time::Duration;

use super::Core;
use crate::close::CloseCode;
use crate::error::Error;
use crate::frame::OpCode;
use crate::time::Instant;

/// A timer that may be waiting for the clock before it can be armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    Off,
    /// Armed before the first [`Connection::handle_timeout`]: starts at the next one.
    Pending(Duration),
    At(Instant),
}

impl Timer {
    pub(super) fn arm(now: Option<Instant>, after: Duration) -> Timer {
        match now {
            Some(now) => Timer::At(now + after),
            None => Timer::Pending(after),
        }
    }

    pub(super) fn deadline(self) -> Option<Instant> {
        match self {
            Timer::Off => None,
            Timer::Pending(_) => Some(Instant::ZERO),
            Timer::At(t) => Some(t),
        }
    }

    pub(super) fn resolve(&mut self, now: Instant) {
        if let Timer::Pending(d) = *self {
            *self = Timer::At(now + d);
        }
    }

    pub(super) fn expired(self, now: Instant) -> bool {
        matches!(self, Timer::At(t) if now >= t)
    }
}

pub(super) fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Core {
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        if self.last_rx.is_none() {
            self.last_rx = Some(now);
        }
        self.pong_timer.resolve(now);
        self.close_timer.resolve(now);

        if self.close_timer.expired(now) {
            self.close_timer = Timer::Off;
            if self.close_received {
                self.close_wait_over = true;
            } else if self.failed {
                // The close frame of a failure never got out: give up on the peer.
                self.abandon();
            } else {
                self.abandon();
                self.note_cause(Error::CloseTimeout);
            }
        }
        if self.failed || self.close_sent {
            return;
        }
        if self.pong_timer.expired(now) {
            self.abandon();
            self.out.discard();
            self.note_cause(Error::PongTimeout);
            return;
        }
        let last_rx = self.last_rx.unwrap_or(now);
        if let Some(idle) = self.config.idle_timeout {
            if now >= last_rx + idle {
                self.send_close(Some(CloseCode::GOING_AWAY), "idle timeout");
                self.note_cause(Error::IdleTimeout);
                return;
            }
        }
        if let Some(interval) = self.config.keepalive_interval {
            if self.pong_timer == Timer::Off && now >= last_rx + interval {
                self.ping_counter += 1;
                let payload = self.ping_counter.to_be_bytes();
                self.write_frame(OpCode::Ping, true, &payload);
                self.pong_timer = Timer::At(now + self.config.pong_timeout);
            }
        }
    }
}
