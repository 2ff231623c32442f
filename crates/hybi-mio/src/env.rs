//! What a connection borrows from its worker while it takes a turn ([`Env`]).

use hybi::Instant;

use crate::app::App;
use crate::pool::Pool;

/// The worker's time, buffers and settings, lent to one connection's turn.
pub(crate) struct Env<'a> {
    /// The time of this turn of the loop.
    pub(crate) now: Instant,
    /// Buffers lent around reads and sends.
    pub(crate) pool: &'a mut Pool,
    pub(crate) app: &'a App,
    /// Connections to drive again on the next turn without waiting for readiness
    /// (their read budget ran out with input possibly left).
    pub(crate) again: &'a mut Vec<usize>,
}
