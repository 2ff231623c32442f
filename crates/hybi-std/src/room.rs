//! [`Room`]: a set of connections to broadcast to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::message::Message;
use crate::server::{ConnId, Peer, TrySendError};

/// A set of connections that messages are broadcast to: a chat room, a topic, every
/// client of a dashboard. Cheap to clone (clones share the members); usable from any
/// thread, including from the handlers of its members. The same methods as
/// hybi-mio's `Room`, over [`Peer`]s.
///
/// A broadcast sends with [`Peer::try_send`]: a member whose client does not keep up
/// (a write to it is blocked, or more than the high-water mark is queued for it) is
/// skipped for that message rather than holding the broadcaster, and counted in
/// [`skipped`](Self::skipped). A client that never reads is dropped at the server's
/// write timeout; its handler's `on_close` should [`leave`](Self::leave).
///
/// ```
/// use hybi_std::{CloseCode, Handler, Peer, Room};
///
/// struct Member(Room);
/// impl Handler for Member {
///     fn on_open(&mut self, peer: &Peer) {
///         self.0.join(peer);
///     }
///     fn on_text(&mut self, _peer: &Peer, text: &str) {
///         self.0.broadcast(text);
///     }
///     fn on_close(&mut self, peer: &Peer, _: CloseCode, _: &str) {
///         self.0.leave(peer.id());
///     }
/// }
/// ```
///
/// With the `redis` feature, `Room::bridged` makes a room shared by every process
/// (node) bridged to the same Redis server: see `redis::RedisBridge`.
#[derive(Clone, Default)]
pub struct Room {
    inner: Arc<Shared>,
    #[cfg(feature = "redis")]
    bridge: Option<(crate::redis::RedisBridge, Arc<str>)>,
}

/// A room's members on this node.
#[derive(Default)]
pub(crate) struct Shared {
    members: Mutex<HashMap<ConnId, Peer>>,
    skipped: AtomicU64,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("members", &self.len())
            .field("skipped", &self.skipped())
            .finish()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<ConnId, Peer>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send_where(&self, message: &Message, keep: impl Fn(ConnId) -> bool) -> usize {
        // Sent outside the lock: members may join and leave meanwhile.
        let members: Vec<Peer> = self
            .lock()
            .values()
            .filter(|peer| keep(peer.id()))
            .cloned()
            .collect();
        let mut sent = 0;
        for peer in members {
            match peer.try_send(message) {
                Ok(()) => sent += 1,
                Err(TrySendError::Busy | TrySendError::Full) => {
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Closed(_)) => {}
            }
        }
        sent
    }
}

#[cfg(feature = "redis")]
impl crate::redis::RemoteSink for Shared {
    fn deliver(&self, message: &crate::redis::RemoteMessage) {
        let message = match message {
            crate::redis::RemoteMessage::Text(t) => Message::Text(t.to_string()),
            crate::redis::RemoteMessage::Binary(b) => Message::Binary(b.to_vec()),
        };
        self.send_where(&message, |_| true);
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
    /// [`RedisBridge`](crate::redis::RedisBridge)); [`len`](Self::len) and
    /// [`members`](Self::members) are this node's.
    #[cfg(feature = "redis")]
    pub fn bridged(bridge: &crate::redis::RedisBridge, name: &str) -> Room {
        Room {
            inner: bridge.room_members::<Shared>(name),
            bridge: Some((bridge.clone(), Arc::from(name))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ConnId, Peer>> {
        self.inner.lock()
    }

    /// Adds the connection of a callback (a clone of its peer).
    pub fn join(&self, peer: &Peer) {
        self.insert(peer.clone());
    }

    /// Adds a connection by its peer (replacing one of the same id).
    pub fn insert(&self, peer: Peer) {
        self.lock().insert(peer.id(), peer);
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

    /// Peers for every member, for sending outside the room's lock.
    pub fn members(&self) -> Vec<Peer> {
        self.lock().values().cloned().collect()
    }

    /// Sends `message` (a `&str` or `String` for text, a `&[u8]` or `Vec<u8>` for
    /// binary, or any [`Message`]) to every member with [`Peer::try_send`]; returns
    /// how many it was sent to. Members that were busy or full are skipped (counted
    /// in [`skipped`](Self::skipped)); members whose connection is gone are neither.
    /// It never waits on a member's write, so it returns promptly however slow the
    /// members are.
    pub fn broadcast(&self, message: impl Into<Message>) -> usize {
        self.send_where(&message.into(), |_| true)
    }

    /// Sends `message` to every member but `except` (the author, say); in a bridged
    /// room, every member of the other nodes gets it (text and binary messages are
    /// published once; others stay on this node).
    pub fn broadcast_except(&self, except: ConnId, message: impl Into<Message>) -> usize {
        self.send_where(&message.into(), |id| id != except)
    }

    /// How many times a broadcast skipped a member that was busy or full, over the
    /// room's life.
    pub fn skipped(&self) -> u64 {
        self.inner.skipped.load(Ordering::Relaxed)
    }

    fn send_where(&self, message: &Message, keep: impl Fn(ConnId) -> bool) -> usize {
        let sent = self.inner.send_where(message, keep);
        #[cfg(feature = "redis")]
        if let Some((bridge, name)) = &self.bridge {
            match message {
                Message::Text(t) => bridge.publish_text(name, t),
                Message::Binary(b) => bridge.publish_binary(name, b),
                _ => {}
            }
        }
        sent
    }
}
