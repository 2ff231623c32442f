//! [`RedisBridge`]: rooms shared across processes through Redis pub/sub.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use std::any::Any;

/// A message from another node, its payload shared by every member it goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteMessage {
    /// A text message.
    Text(Arc<str>),
    /// A binary message.
    Binary(Arc<[u8]>),
}

/// What a bridged room's members are to the bridge: where messages from other nodes
/// go. Implemented by each adapter's room (hybi-std's and hybi-mio's `Room`); an
/// application does not need it.
pub trait RemoteSink: Send + Sync {
    /// Delivers `message`, published by another node, to this node's members.
    fn deliver(&self, message: &RemoteMessage);
}

struct RoomEntry {
    any: Weak<dyn Any + Send + Sync>,
    sink: Weak<dyn RemoteSink>,
}

/// The prefix of every room's channel: room `lobby` is channel `hybi:room:lobby`.
pub const CHANNEL_PREFIX: &str = "hybi:room:";
const MAGIC: &[u8; 4] = b"hyb1";
const HEADER: usize = 13;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The longest line (simple string, error, integer, length) accepted in a reply.
const MAX_LINE: usize = 4096;
/// The most elements accepted in an array reply.
const MAX_ARRAY: usize = 16;

/// Bounds of a [`RedisBridge`].
#[derive(Clone, Debug)]
pub struct BridgeOptions {
    /// The most broadcasts waiting to be published (while Redis is away); default 1,024.
    pub queue_messages: usize,
    /// The most envelope bytes waiting to be published; default 1 MiB.
    pub queue_bytes: usize,
    /// The largest message accepted from Redis, in bytes (larger ones are skipped
    /// without being held, and counted as malformed); default 16 MiB.
    pub max_message: usize,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            queue_messages: 1024,
            queue_bytes: 1 << 20,
            max_message: 16 << 20,
        }
    }
}

/// What a [`RedisBridge`] has done so far ([`RedisBridge::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Broadcasts Redis confirmed publishing.
    pub published: u64,
    /// Messages from other nodes delivered to a local room (each once, whatever the
    /// number of members).
    pub received: u64,
    /// Messages on a room channel that were not a valid envelope, dropped.
    pub dropped_malformed: u64,
    /// Broadcasts never published: the queue was full, or the connection failed
    /// before Redis confirmed them.
    pub lost: u64,
    /// How many times the subscriber has been subscribed (1 after the first
    /// connection, one more after each reconnection).
    pub subscriptions: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    received: AtomicU64,
    dropped_malformed: AtomicU64,
    lost: AtomicU64,
    subscriptions: AtomicU64,
}

struct Queue {
    items: VecDeque<Vec<u8>>,
    bytes: usize,
}

struct Inner {
    addr: String,
    node: u64,
    options: BridgeOptions,
    counters: Counters,
    queue: Mutex<Queue>,
    ready: Condvar,
    stopping: AtomicBool,
    rooms: Mutex<HashMap<String, RoomEntry>>,
    /// The subscriber's connection, to shut it down when the bridge is dropped.
    sub_conn: Mutex<Option<TcpStream>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Sleeps for `d` unless the bridge stops meanwhile; false if it did.
    fn sleep(&self, d: Duration) -> bool {
        let queue = lock(&self.queue);
        let _ = self
            .ready
            .wait_timeout_while(queue, d, |_| !self.stopping())
            .map_err(|p| p.into_inner());
        !self.stopping()
    }
}

/// Stops the bridge's threads when the last handle goes.
struct Guard(Arc<Inner>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.stopping.store(true, Ordering::Release);
        self.0.ready.notify_all();
        if let Some(conn) = lock(&self.0.sub_conn).take() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

/// A node's link to Redis (feature `redis`), shared by its bridged rooms (hybi-std's
/// [`Room`](crate::Room), hybi-mio's `Room`): one
/// connection publishing (a background thread, fed by a bounded queue) and one
/// subscribed to every room channel (another thread, delivering to local members).
/// Both reconnect on their own. Cheap to clone; the threads end when the last clone
/// and the last room bridged through it are dropped.
///
/// A [`Room`](crate::Room) made with [`Room::bridged`](crate::Room::bridged) delivers each broadcast to its local members
/// directly and publishes it once to the Redis channel `hybi:room:<name>`; every other
/// node subscribed to that channel delivers it to its own members. Each node (each
/// `RedisBridge`) has a random node id carried in every message, so a node ignores what
/// it published itself (its members already have it).
///
/// # Delivery: at most once
///
/// Redis pub/sub is at-most-once: a message published while a node is not subscribed
/// (its subscriber connection is down, or being re-established) never reaches that
/// node's members, and nothing replays it. Within those limits, messages from one node
/// reach every other node in the order that node broadcast them (one publishing
/// connection, one subscribing connection, each in order).
///
/// While Redis is unreachable, broadcasts wait in a bounded queue
/// ([`BridgeOptions::queue_messages`], [`BridgeOptions::queue_bytes`]) and are
/// published once the bridge reconnects (backing off from 100 ms, doubling up to 5 s).
/// A broadcast that finds the queue full, or one that was written to a connection that
/// failed before Redis confirmed it, is counted in [`BridgeStats::lost`] (never sent
/// again: it might then arrive twice). What is queued goes out in one write, pipelined.
///
/// # The envelope
///
/// Each Redis message is one binary envelope:
///
/// | bytes   | field                                        |
/// |---------|----------------------------------------------|
/// | 0..4    | magic `hyb1` (the format's version is the 1) |
/// | 4..12   | node id, u64 big-endian                      |
/// | 12      | kind: `t` (text, UTF-8) or `b` (binary)      |
/// | 13..    | payload                                      |
///
/// Anything else on a `hybi:room:*` channel (too short, another magic, an unknown
/// kind, text that is not UTF-8, larger than [`BridgeOptions::max_message`]) is
/// dropped with a log line on stderr and counted in [`BridgeStats::dropped_malformed`].
///
/// The subscriber uses one pattern subscription, `PSUBSCRIBE hybi:room:*`: a node
/// receives the messages of every room, and drops those of rooms it has no members in.
///
/// ```no_run
/// # #[cfg(feature = "redis")] {
/// use hybi_std::redis::RedisBridge;
/// use hybi_std::Room;
///
/// let bridge = RedisBridge::connect("redis://127.0.0.1:6379").expect("a redis:// URL");
/// let lobby = Room::bridged(&bridge, "lobby"); // channel hybi:room:lobby
/// lobby.broadcast("hello, every node");
/// println!("{:?}", bridge.stats());
/// # }
/// ```
#[derive(Clone)]
pub struct RedisBridge {
    inner: Arc<Inner>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for RedisBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBridge")
            .field("addr", &self.inner.addr)
            .field("node", &format_args!("{:016x}", self.inner.node))
            .finish()
    }
}

/// Parses `redis://host[:port][/]` (port 6379 by default) into `host:port`.
fn parse_url(url: &str) -> io::Result<String> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a redis:// URL: {url}"),
        )
    };
    let rest = url.strip_prefix("redis://").ok_or_else(bad)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', '?']) {
        return Err(bad());
    }
    let has_port = match rest.rfind(':') {
        Some(i) => !rest.ends_with(']') && rest[i + 1..].parse::<u16>().is_ok(),
        None => false,
    };
    Ok(if has_port {
        rest.to_owned()
    } else {
        format!("{rest}:6379")
    })
}

fn random_node_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

impl RedisBridge {
    /// A bridge to the Redis server at `url` (`redis://host[:port]`), with the default
    /// [`BridgeOptions`]. Fails only on a malformed URL: the connections are made in
    /// the background, and retried until Redis answers.
    pub fn connect(url: &str) -> io::Result<RedisBridge> {
        RedisBridge::connect_with(url, BridgeOptions::default())
    }

    /// [`connect`](Self::connect) with other bounds.
    pub fn connect_with(url: &str, options: BridgeOptions) -> io::Result<RedisBridge> {
        let addr = parse_url(url)?;
        let inner = Arc::new(Inner {
            addr,
            node: random_node_id(),
            options,
            counters: Counters::default(),
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
            }),
            ready: Condvar::new(),
            stopping: AtomicBool::new(false),
            rooms: Mutex::new(HashMap::new()),
            sub_conn: Mutex::new(None),
        });
        let publisher = inner.clone();
        std::thread::Builder::new()
            .name("hybi-redis-pub".into())
            .spawn(move || publish_loop(&publisher))?;
        let subscriber = inner.clone();
        std::thread::Builder::new()
            .name("hybi-redis-sub".into())
            .spawn(move || subscribe_loop(&subscriber))?;
        Ok(RedisBridge {
            _guard: Arc::new(Guard(inner.clone())),
            inner,
        })
    }

    /// This node's id, carried in every envelope it publishes.
    pub fn node_id(&self) -> u64 {
        self.inner.node
    }

    /// The counters so far.
    pub fn stats(&self) -> BridgeStats {
        let c = &self.inner.counters;
        BridgeStats {
            published: c.published.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            dropped_malformed: c.dropped_malformed.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            subscriptions: c.subscriptions.load(Ordering::Relaxed),
        }
    }

    /// The members of room `name` on this node, for an adapter's `Room::bridged`: the
    /// existing ones if a room of that name and member type is bridged already, else
    /// new ones, which get what other nodes publish to the room while they live.
    pub fn room_members<T: RemoteSink + Default + 'static>(&self, name: &str) -> Arc<T> {
        let mut rooms = lock(&self.inner.rooms);
        rooms.retain(|_, room| room.sink.strong_count() > 0);
        if let Some(members) = rooms
            .get(name)
            .and_then(|room| room.any.upgrade())
            .and_then(|any| any.downcast::<T>().ok())
        {
            return members;
        }
        let members = Arc::new(T::default());
        let any: Arc<dyn Any + Send + Sync> = members.clone();
        let sink: Arc<dyn RemoteSink> = members.clone();
        let entry = RoomEntry {
            any: Arc::downgrade(&any),
            sink: Arc::downgrade(&sink),
        };
        rooms.insert(name.to_owned(), entry);
        members
    }

    /// Queues a text message for publishing to room `name`'s channel: encoded once,
    /// whatever the number of members anywhere (an adapter's `Room` calls it).
    pub fn publish_text(&self, name: &str, text: &str) {
        self.publish(name, b't', text.as_bytes());
    }

    /// Queues a binary message for publishing to room `name`'s channel.
    pub fn publish_binary(&self, name: &str, data: &[u8]) {
        self.publish(name, b'b', data);
    }

    fn publish(&self, name: &str, kind: u8, payload: &[u8]) {
        let command = publish_command(
            &format!("{CHANNEL_PREFIX}{name}"),
            self.inner.node,
            kind,
            payload,
        );
        let inner = &self.inner;
        let mut queue = lock(&inner.queue);
        if queue.items.len() >= inner.options.queue_messages
            || queue.bytes + command.len() > inner.options.queue_bytes
        {
            drop(queue);
            inner.counters.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        queue.bytes += command.len();
        queue.items.push_back(command);
        drop(queue);
        inner.ready.notify_all();
    }
}

/// Encodes an envelope (see the [format](RedisBridge#the-envelope)): `kind` is
/// `b't'` (text) or `b'b'` (binary). For tools and tests that publish to a
/// room channel themselves.
pub fn encode_envelope(node: u64, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&node.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

/// A whole `PUBLISH channel envelope` command, in RESP.
fn publish_command(channel: &str, node: u64, kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = HEADER + payload.len();
    let mut out = Vec::with_capacity(48 + channel.len() + len);
    out.extend_from_slice(b"*3\r\n$7\r\nPUBLISH\r\n");
    out.extend_from_slice(format!("${}\r\n", channel.len()).as_bytes());
    out.extend_from_slice(channel.as_bytes());
    out.extend_from_slice(format!("\r\n${len}\r\n").as_bytes());
    out.extend_from_slice(&encode_envelope(node, kind, payload));
    out.extend_from_slice(b"\r\n");
    out
}

/// A decoded envelope.
#[derive(Debug, PartialEq, Eq)]
struct Envelope {
    node: u64,
    message: RemoteMessage,
}

/// Decodes an envelope, or says why it is malformed.
fn decode_envelope(data: Vec<u8>) -> Result<Envelope, &'static str> {
    if data.len() < HEADER {
        return Err("shorter than the header");
    }
    if &data[..4] != MAGIC {
        return Err("not a hyb1 envelope");
    }
    let mut node = [0; 8];
    node.copy_from_slice(&data[4..12]);
    let node = u64::from_be_bytes(node);
    let message = match data[12] {
        b't' => match std::str::from_utf8(&data[HEADER..]) {
            Ok(text) => RemoteMessage::Text(Arc::from(text)),
            Err(_) => return Err("text that is not UTF-8"),
        },
        b'b' => RemoteMessage::Binary(Arc::from(&data[HEADER..])),
        _ => return Err("unknown kind"),
    };
    Ok(Envelope { node, message })
}

fn connect(inner: &Inner) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in inner.addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Runs `session` on fresh connections until the bridge stops, backing off between
/// failed attempts (100 ms, doubling to 5 s; back to 100 ms once a session got going,
/// which it says by setting its flag).
fn reconnecting(
    inner: &Inner,
    what: &str,
    mut session: impl FnMut(TcpStream, &mut bool) -> io::Result<()>,
) {
    let mut backoff = BACKOFF_FIRST;
    let mut failing = false;
    while !inner.stopping() {
        let mut went = false;
        let outcome = connect(inner).and_then(|s| session(s, &mut went));
        if inner.stopping() {
            return;
        }
        if went {
            backoff = BACKOFF_FIRST;
            failing = false;
        }
        if let Err(e) = outcome {
            if !failing {
                eprintln!("hybi redis {what} {}: {e}; reconnecting", inner.addr);
            }
            failing = true;
        }
        if !inner.sleep(backoff) {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Takes everything queued, waiting for some; `None` when the bridge stops or the
/// connection turned out closed while idle (checked every 200 ms).
fn take_batch(inner: &Inner, conn: &TcpStream) -> io::Result<Option<(Vec<u8>, u64)>> {
    loop {
        let queue = lock(&inner.queue);
        let (mut queue, _) = inner
            .ready
            .wait_timeout_while(queue, Duration::from_millis(200), |q| {
                q.items.is_empty() && !inner.stopping()
            })
            .unwrap_or_else(|p| p.into_inner());
        if inner.stopping() {
            return Ok(None);
        }
        if queue.items.is_empty() {
            drop(queue);
            // Idle: a closed connection shows as end of input.
            conn.set_nonblocking(true)?;
            let peeked = conn.peek(&mut [0; 1]);
            conn.set_nonblocking(false)?;
            match peeked {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => return Err(invalid("a reply nobody asked for")),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        let n = queue.items.len() as u64;
        let mut batch = Vec::with_capacity(queue.bytes);
        for command in queue.items.drain(..) {
            batch.extend_from_slice(&command);
        }
        queue.bytes = 0;
        return Ok(Some((batch, n)));
    }
}

fn publish_loop(inner: &Inner) {
    reconnecting(inner, "publisher", |stream, went| {
        *went = true;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        // Everything queued goes out in one write (pipelined), then its replies are
        // read. A batch the connection fails under is lost: Redis may have published
        // some of it, and sending it again could deliver twice.
        while let Some((batch, n)) = take_batch(inner, &writer)? {
            if let Err(e) = writer.write_all(&batch) {
                inner.counters.lost.fetch_add(n, Ordering::Relaxed);
                return Err(e);
            }
            for i in 0..n {
                match read_value(&mut reader, MAX_LINE) {
                    Ok(Value::Int(_)) => {
                        inner.counters.published.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(other) => {
                        inner.counters.lost.fetch_add(1, Ordering::Relaxed);
                        eprintln!("hybi redis publisher: PUBLISH answered {other:?}");
                    }
                    Err(e) => {
                        inner.counters.lost.fetch_add(n - i, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    });
}

fn subscribe_loop(inner: &Inner) {
    reconnecting(inner, "subscriber", |mut stream, went| {
        *lock(&inner.sub_conn) = Some(stream.try_clone()?);
        if inner.stopping() {
            return Ok(());
        }
        let pattern = format!("{CHANNEL_PREFIX}*");
        stream.write_all(
            format!(
                "*2\r\n$10\r\nPSUBSCRIBE\r\n${}\r\n{pattern}\r\n",
                pattern.len()
            )
            .as_bytes(),
        )?;
        let mut reader = BufReader::new(stream);
        loop {
            let value = read_value(&mut reader, inner.options.max_message)?;
            let Value::Array(items) = value else {
                eprintln!("hybi redis subscriber: unexpected {value:?}");
                continue;
            };
            match items.as_slice() {
                [Value::Bulk(kind), ..] if kind == b"psubscribe" => {
                    *went = true;
                    inner.counters.subscriptions.fetch_add(1, Ordering::Relaxed);
                }
                [Value::Bulk(kind), _pattern, Value::Bulk(channel), payload]
                    if kind == b"pmessage" =>
                {
                    deliver(inner, channel, payload);
                }
                _ => eprintln!("hybi redis subscriber: unexpected {items:?}"),
            }
        }
    });
}

fn malformed(inner: &Inner, channel: &[u8], why: &str) {
    inner
        .counters
        .dropped_malformed
        .fetch_add(1, Ordering::Relaxed);
    eprintln!(
        "hybi redis: dropped a malformed message on {}: {why}",
        String::from_utf8_lossy(channel)
    );
}

fn deliver(inner: &Inner, channel: &[u8], payload: &Value) {
    let data = match payload {
        Value::Bulk(data) => data.clone(),
        Value::TooLarge(n) => return malformed(inner, channel, &format!("{n} bytes, too large")),
        _ => return malformed(inner, channel, "not a bulk string"),
    };
    let envelope = match decode_envelope(data) {
        Ok(e) => e,
        Err(why) => return malformed(inner, channel, why),
    };
    if envelope.node == inner.node {
        return;
    }
    let Some(name) = channel
        .strip_prefix(CHANNEL_PREFIX.as_bytes())
        .and_then(|n| std::str::from_utf8(n).ok())
    else {
        return;
    };
    let sink = lock(&inner.rooms)
        .get(name)
        .and_then(|room| room.sink.upgrade());
    if let Some(sink) = sink {
        inner.counters.received.fetch_add(1, Ordering::Relaxed);
        sink.deliver(&envelope.message);
    }
}

/// A RESP2 reply, as far as the bridge needs one.
#[derive(Debug, PartialEq, Eq)]
enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    /// A bulk string (a null one is empty).
    Bulk(Vec<u8>),
    /// A bulk string longer than the limit, skipped: its length.
    TooLarge(usize),
    /// An array (a null one is empty); nested arrays are refused.
    Array(Vec<Value>),
}

fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.take(MAX_LINE as u64 + 2).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(invalid("a reply line too long or cut short"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn parse_int(line: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("not an integer"))
}

/// Reads one reply: bulk strings up to `max_bulk` bytes are held, longer ones are read
/// past; arrays of at most 16 elements, not nested.
fn read_value(r: &mut impl BufRead, max_bulk: usize) -> io::Result<Value> {
    read_nested(r, max_bulk, true)
}

fn read_nested(r: &mut impl BufRead, max_bulk: usize, top: bool) -> io::Result<Value> {
    let line = read_line(r)?;
    let Some((&tag, rest)) = line.split_first() else {
        return Err(invalid("an empty reply line"));
    };
    match tag {
        b'+' => Ok(Value::Simple(rest.to_vec())),
        b'-' => Ok(Value::Error(rest.to_vec())),
        b':' => parse_int(rest).map(Value::Int),
        b'$' => {
            let n = parse_int(rest)?;
            if n < 0 {
                return Ok(Value::Bulk(Vec::new()));
            }
            let n = usize::try_from(n).map_err(|_| invalid("a bulk string too long"))?;
            if n > max_bulk {
                let skipped = io::copy(&mut r.take(n as u64 + 2), &mut io::sink())?;
                if skipped != n as u64 + 2 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                return Ok(Value::TooLarge(n));
            }
            let mut data = vec![0; n + 2];
            r.read_exact(&mut data)?;
            if !data.ends_with(b"\r\n") {
                return Err(invalid("a bulk string without its CRLF"));
            }
            data.truncate(n);
            Ok(Value::Bulk(data))
        }
        b'*' if top => {
            let n = parse_int(rest)?;
            if n < 0 {
                return Ok(Value::Array(Vec::new()));
            }
            let n = usize::try_from(n).map_err(|_| invalid("an array too long"))?;
            if n > MAX_ARRAY {
                return Err(invalid("an array too long"));
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_nested(r, max_bulk, false)?);
            }
            Ok(Value::Array(items))
        }
        _ => Err(invalid("an unknown or nested reply")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("redis://127.0.0.1:6380").unwrap(),
            "127.0.0.1:6380"
        );
        assert_eq!(parse_url("redis://localhost/").unwrap(), "localhost:6379");
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("redis://u:p@x").is_err());
        assert!(parse_url("redis://").is_err());
    }

    #[test]
    fn envelopes() {
        let e = encode_envelope(7, b't', "héllo".as_bytes());
        let d = decode_envelope(e).unwrap();
        assert_eq!(d.node, 7);
        assert_eq!(d.message, RemoteMessage::Text(Arc::from("héllo")));
        let d = decode_envelope(encode_envelope(u64::MAX, b'b', &[0, 255])).unwrap();
        assert_eq!(d.message, RemoteMessage::Binary(Arc::from(&[0u8, 255][..])));
        assert!(decode_envelope(b"hyb1".to_vec()).is_err());
        assert!(decode_envelope(encode_envelope(1, b'x', b"")).is_err());
        assert!(decode_envelope(encode_envelope(1, b't', &[0xff])).is_err());
        let mut other = encode_envelope(1, b't', b"hi");
        other[3] = b'2';
        assert!(decode_envelope(other).is_err());
    }

    #[test]
    fn replies() {
        let mut r: &[u8] =
            b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$2\r\nch\r\n$5\r\nab\r\nc\r\n:3\r\n";
        let v = read_value(&mut r, 100).unwrap();
        let Value::Array(items) = v else { panic!() };
        assert_eq!(items[3], Value::Bulk(b"ab\r\nc".to_vec()));
        assert_eq!(read_value(&mut r, 100).unwrap(), Value::Int(3));
        assert!(read_value(&mut r, 100).is_err());

        let mut r: &[u8] = b"$10\r\n0123456789\r\n+OK\r\n";
        assert_eq!(read_value(&mut r, 4).unwrap(), Value::TooLarge(10));
        assert_eq!(
            read_value(&mut r, 4).unwrap(),
            Value::Simple(b"OK".to_vec())
        );

        for bad in [
            &b"*1\r\n*1\r\n:1\r\n"[..],
            b"*99\r\n",
            b"$3\r\nabcd\r\n",
            b"?\r\n",
            b":x\r\n",
            b"$-2x\r\n",
        ] {
            let mut r = bad;
            assert!(read_value(&mut r, 100).is_err(), "{bad:?}");
        }
        let long = vec![b'+'; MAX_LINE + 10];
        assert!(read_value(&mut &long[..], 100).is_err());
    }

    #[test]
    fn publish_commands() {
        let c = publish_command("hybi:room:a", 1, b't', b"x");
        assert!(c.starts_with(b"*3\r\n$7\r\nPUBLISH\r\n$11\r\nhybi:room:a\r\n$14\r\nhyb1"));
        assert!(c.ends_with(b"tx\r\n"));
    }
}
