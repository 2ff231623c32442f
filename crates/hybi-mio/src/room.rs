//! [`Room`]: a set of connections to broadcast to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::handler::Context;
use crate::outgoing::Outgoing;
use crate::sender::{ConnId, Sender};

/// A set of connections that messages are broadcast to: a chat room, a topic, every
/// client of a dashboard. Cheap to clone (clones share the members); usable from any
/// thread, including from the handlers of its members.
///
/// ```
/// use hybi_mio::{Context, Handler, Room};
///
/// struct Member(Room);
/// impl Handler for Member {
///     fn on_open(&mut self, ctx: &mut Context<'_>) {
///         self.0.join(ctx);
///     }
///     fn on_text(&mut self, _ctx: &mut Context<'_>, text: &str) {
///         self.0.broadcast(text); // one copy of the text, shared by every member
///     }
///     fn on_close(&mut self, ctx: &mut Context<'_>, _: hybi::CloseCode, _: &str) {
///         self.0.leave(ctx.id());
///     }
/// }
/// ```
#[derive(Clone, Default)]
pub struct Room {
    members: Arc<Mutex<HashMap<ConnId, Sender>>>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("members", &self.len())
            .finish()
    }
}

/// Converts an owned payload into a shared one, so each member gets a reference
/// instead of a copy.
fn shared(message: Outgoing) -> Outgoing {
    match message {
        Outgoing::Text(t) => Outgoing::SharedText(Arc::from(t)),
        Outgoing::Binary(b) => Outgoing::SharedBinary(Arc::from(b)),
        other => other,
    }
}

impl Room {
    /// An empty room.
    pub fn new() -> Room {
        Room::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ConnId, Sender>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the connection of a callback's context.
    pub fn join(&self, ctx: &Context<'_>) {
        self.insert(ctx.sender());
    }

    /// Adds a connection by its sender.
    pub fn insert(&self, sender: Sender) {
        self.lock().insert(sender.id(), sender);
    }

    /// Removes a connection (call it from `on_close`).
    pub fn leave(&self, id: ConnId) {
        self.lock().remove(&id);
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True if nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Senders for every member, for sending outside the room's lock.
    pub fn members(&self) -> Vec<Sender> {
        self.lock().values().cloned().collect()
    }

    /// Sends `message` to every member; returns how many it was queued for. The
    /// payload is copied once and shared.
    pub fn broadcast(&self, message: impl Into<Outgoing>) -> usize {
        self.send_where(message.into(), |_| true)
    }

    /// Sends `message` to every member but `except` (the author, say).
    pub fn broadcast_except(&self, except: ConnId, message: impl Into<Outgoing>) -> usize {
        self.send_where(message.into(), |id| id != except)
    }

    fn send_where(&self, message: Outgoing, keep: impl Fn(ConnId) -> bool) -> usize {
        let message = shared(message);
        let members = self.lock();
        members
            .iter()
            .filter(|(id, _)| keep(**id))
            .filter(|(_, sender)| sender.send(message.clone()).is_ok())
            .count()
    }
}
