//! The engine's deadline on tokio's timer: one [`Sleep`], armed for the deadline the
//! engine last asked for and re-armed only when that changes.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;

use hybi::Instant;
use tokio::time::Sleep;

/// A deadline on tokio's clock (none armed at first).
#[derive(Default)]
pub(crate) struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: Option<Instant>,
}

impl Timer {
    /// Arms the timer for `deadline` (`None` keeps what is armed) and polls it: true
    /// once it has fired (it is then disarmed). [`Instant::ZERO`] ("the time now")
    /// fires at once.
    pub(crate) fn fired(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> bool {
        match deadline {
            Some(Instant::ZERO) => return true,
            Some(at) if self.armed != Some(at) => {
                let when = tokio::time::Instant::from_std(at.to_std());
                match &mut self.sleep {
                    Some(sleep) => sleep.as_mut().reset(when),
                    None => self.sleep = Some(Box::pin(tokio::time::sleep_until(when))),
                }
                self.armed = Some(at);
            }
            _ => {}
        }
        let fired = match (&mut self.sleep, self.armed) {
            (Some(sleep), Some(_)) => sleep.as_mut().poll(cx).is_ready(),
            _ => false,
        };
        if fired {
            self.armed = None;
        }
        fired
    }

    /// Drops the timer (a connection that has ended needs none).
    pub(crate) fn clear(&mut self) {
        *self = Timer::default();
    }
}
