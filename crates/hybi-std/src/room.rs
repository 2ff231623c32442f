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
#[derive(Clone, Default)]
pub struct Room {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
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

impl Room {
    /// An empty room.
    pub fn new() -> Room {
        Room::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ConnId, Peer>> {
        self.inner.members.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Sends `message` to every member but `except` (the author, say).
    pub fn broadcast_except(&self, except: ConnId, message: impl Into<Message>) -> usize {
        self.send_where(&message.into(), |id| id != except)
    }

    /// How many times a broadcast skipped a member that was busy or full, over the
    /// room's life.
    pub fn skipped(&self) -> u64 {
        self.inner.skipped.load(Ordering::Relaxed)
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
                    self.inner.skipped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Closed(_)) => {}
            }
        }
        sent
    }
}
