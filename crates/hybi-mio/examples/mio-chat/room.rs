//! The chat room behind the browser page `index.html`: every text message is
//! broadcast to everyone connected, with join and leave notices. Shared by the
//! `chat` example and `hybi serve`.
//!
//! Protocol: clients send plain text; the server sends JSON objects:
//! `{"type":"welcome","you":"guest-3","online":2}`,
//! `{"type":"join"|"leave","who":"guest-4","online":3}`,
//! `{"type":"message","who":"guest-3","text":"hi"}`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hybi_mio::{CloseCode, Context, Handler, Room};

/// The page, served at `/`.
pub const PAGE: &str = include_str!("index.html");

/// Longest message relayed, in bytes; a longer one closes the connection with 1009.
pub const MAX_MESSAGE: usize = 64 << 10;

/// Everyone in the chat, and the numbering of guests.
#[derive(Clone, Default)]
pub struct Chat {
    room: Room,
    guests: Arc<AtomicU64>,
    /// Held while a member joins or leaves and the others hear of it, so that the
    /// counts in the notices arrive in order.
    membership: Arc<Mutex<()>>,
    /// Appended to guest names (`guest-3.ab12`), so that names from several nodes
    /// sharing one room do not collide; empty for a room of one process.
    node: String,
}

impl Chat {
    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.membership
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A chat in `room` (a room bridged across nodes, say), its guests named
    /// `guest-<n>.<node>`. The online counts are this node's.
    #[allow(dead_code)] // hybi serve --redis uses it, the example does not
    pub fn in_room(room: Room, node: &str) -> Chat {
        Chat {
            room,
            node: node.to_owned(),
            ..Chat::default()
        }
    }

    /// The handler of a new member.
    pub fn member(&self) -> Member {
        let n = self.guests.fetch_add(1, Ordering::Relaxed) + 1;
        let name = if self.node.is_empty() {
            format!("guest-{n}")
        } else {
            format!("guest-{n}.{}", self.node)
        };
        Member {
            chat: self.clone(),
            name,
        }
    }
}

/// One member's connection.
pub struct Member {
    chat: Chat,
    name: String,
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Member {
    fn notice(&self, kind: &str) -> String {
        format!(
            r#"{{"type":"{kind}","who":{},"online":{}}}"#,
            json_string(&self.name),
            self.chat.room.len()
        )
    }
}

impl Handler for Member {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _membership = self.chat.lock();
        self.chat.room.join(ctx);
        let _ = ctx.send_text(&format!(
            r#"{{"type":"welcome","you":{},"online":{}}}"#,
            json_string(&self.name),
            self.chat.room.len()
        ));
        self.chat
            .room
            .broadcast_except(ctx.id(), self.notice("join"));
    }

    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        if text.len() > MAX_MESSAGE {
            let _ = ctx.close(CloseCode::MESSAGE_TOO_BIG, "message too long");
            return;
        }
        let message = format!(
            r#"{{"type":"message","who":{},"text":{}}}"#,
            json_string(&self.name),
            json_string(text)
        );
        self.chat.room.broadcast(message);
    }

    fn on_binary(&mut self, ctx: &mut Context<'_>, _data: &[u8]) {
        let _ = ctx.close(CloseCode::UNSUPPORTED_DATA, "text only");
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, _code: CloseCode, _reason: &str) {
        let _membership = self.chat.lock();
        self.chat.room.leave(ctx.id());
        self.chat.room.broadcast(self.notice("leave"));
    }
}
