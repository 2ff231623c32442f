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
///
/// With the `redis` feature, `Room::bridged` makes a room shared by every process
/// (node) bridged to the same Redis server: see `RedisBridge`.
#[derive(Clone, Default)]
pub struct Room {
    members: Arc<Members>,
    #[cfg(feature = "redis")]
    bridge: Option<(crate::RedisBridge, Arc<str>)>,
}

/// A room's members on this node.
#[derive(Default)]
pub(crate) struct Members(Mutex<HashMap<ConnId, Sender>>);

impl Members {
    fn lock(&self) -> MutexGuard<'_, HashMap<ConnId, Sender>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a (shared) message to the members `keep` keeps; how many it was queued for.
    fn send_where(&self, message: &Outgoing, keep: impl Fn(ConnId) -> bool) -> usize {
        let members = self.lock();
        members
            .iter()
            .filter(|(id, _)| keep(**id))
            .filter(|(_, sender)| sender.send(message.clone()).is_ok())
            .count()
    }
}

#[cfg(feature = "redis")]
impl crate::RemoteSink for Members {
    fn deliver(&self, message: &crate::RemoteMessage) {
        let message = match message {
            crate::RemoteMessage::Text(t) => Outgoing::SharedText(t.clone()),
            crate::RemoteMessage::Binary(b) => Outgoing::SharedBinary(b.clone()),
        };
        self.send_where(&message, |_| true);
    }
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

    /// Room `name` shared through `bridge` by every node bridged to the same Redis
    /// server: broadcasts reach this node's members directly and are published once
    /// to channel `hybi:room:<name>` for the others; what other nodes publish there
    /// reaches this node's members. Bridging the same name twice on one bridge gives
    /// the same members. Delivery across nodes is at most once (see
    /// [`RedisBridge`](crate::RedisBridge)); [`len`](Self::len) and
    /// [`members`](Self::members) are this node's.
    #[cfg(feature = "redis")]
    pub fn bridged(bridge: &crate::RedisBridge, name: &str) -> Room {
        Room {
            members: bridge.room_members::<Members>(name),
            bridge: Some((bridge.clone(), Arc::from(name))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ConnId, Sender>> {
        self.members.lock()
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

    /// Sends `message` to every member; returns how many it was queued for (on this
    /// node). The payload is copied once and shared; in a bridged room, it is also
    /// published once for the other nodes (text and binary messages only).
    pub fn broadcast(&self, message: impl Into<Outgoing>) -> usize {
        self.send_where(message.into(), |_| true)
    }

    /// Sends `message` to every member but `except` (the author, say); in a bridged
    /// room, every member of the other nodes gets it.
    pub fn broadcast_except(&self, except: ConnId, message: impl Into<Outgoing>) -> usize {
        self.send_where(message.into(), |id| id != except)
    }

    fn send_where(&self, message: Outgoing, keep: impl Fn(ConnId) -> bool) -> usize {
        let message = shared(message);
        let sent = self.members.send_where(&message, keep);
        #[cfg(feature = "redis")]
        if let Some((bridge, name)) = &self.bridge {
            match &message {
                Outgoing::SharedText(t) => bridge.publish_text(name, t),
                Outgoing::SharedBinary(b) => bridge.publish_binary(name, b),
                Outgoing::Text(t) => bridge.publish_text(name, t),
                Outgoing::Binary(b) => bridge.publish_binary(name, b),
                _ => {}
            }
        }
        sent
    }
}
