//! The state machine of one open WebSocket connection, for either role.
//!
//! Bytes from the transport go in with [`Connection::receive`] (or, without a copy,
//! [`Connection::read_buf`] + [`Connection::commit`]); events, output to write and
//! when to wait come out of [`Connection::next`]. Sends queue encoded frames that
//! `next` (or [`Connection::transmit`]) hands out. Time comes in through
//! [`Connection::handle_timeout`]. Nothing here blocks, reads a clock, or
//! touches a socket.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::close::{CloseCode, MAX_REASON_LEN};
use crate::config::Config;
use crate::error::{Error, ProtocolError};
use crate::event::MessageKind;
use crate::frame::MAX_CONTROL_PAYLOAD;
use crate::output::Output;
use crate::random::RandomSource;
use crate::time::Instant;
use crate::utf8::Utf8Validator;

mod compress;
mod deliver;
mod drive;
mod receive;
mod send;
mod timers;

pub use drive::{Closed, Next, Transmit};
pub use send::Outbox;

use deliver::{RxFrame, RxMessage};
use timers::{Timer, min_opt};

/// Which end of the connection this engine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Opened the connection; masks every frame it sends.
    Client,
    /// Accepted the connection; requires masked frames from the client.
    Server,
}

/// Where the connection is in its life (RFC 6455 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Data flows both ways.
    Open,
    /// We sent a close frame (it may still be in the output queue) and wait for the
    /// peer's. Data the peer sent before seeing our close is still delivered.
    CloseSent,
    /// The peer sent a close frame; our answer is queued but not yet written.
    CloseReceived,
    /// The closing handshake is over (or the connection failed) and our output is
    /// written. [`Connection::next`] then returns `Close`.
    Closed,
}

/// Payload lengths at or above this, handed over by value, are queued without a copy.
const OWNED_THRESHOLD: usize = 4 << 10;

/// Pongs are answered one for one while less than this is queued for writing; above
/// it (a peer that sends pings but does not read), only the latest ping is answered
/// (RFC 6455 §5.5.3), so a ping flood cannot grow the output.
const PONG_COALESCE_AT: usize = 8 << 10;

/// The message buffer keeps up to this much (or four receive buffers, if more)
/// between messages; a larger one is released when the next message starts.
const KEEP_MESSAGE_BUFFER: usize = 2 << 20;

/// Frames with at least this much payload left are read straight into the message
/// buffer when nothing else is buffered.
const DIRECT_READ_MIN: usize = 4 << 10;

/// Smallest receive buffer used, whatever the configuration says: room for any
/// control frame with its header.
const MIN_READ_BUFFER: usize = 256;

/// A receive buffer configured larger than this starts at this size and grows to the
/// configured size once it fills (a read filled it, or a frame needs the room), so a
/// connection that only ever sees small messages never pays for a large buffer.
const FIRST_READ_BUFFER: usize = 64 << 10;

/// Received bytes and the buffer messages are assembled in.
#[derive(Debug, Default)]
struct Input {
    /// Storage; `buf[pos..end]` holds received, unprocessed bytes.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Fragmented or oversized messages are assembled in `msg[..msg_len]`. The vector
    /// stays initialized to its full length, so it can be handed to the transport
    /// ([`Connection::read_buf`]) and refilled without zeroing it per message.
    msg: Vec<u8>,
    msg_len: usize,
    /// The last `read_buf` handed out `msg[msg_len..]` for the payload of a large
    /// frame (the next `commit` goes there).
    direct_armed: bool,
    /// Payload bytes committed straight into `msg[msg_len..]`, not processed yet.
    direct: usize,
    /// A read filled `buf`: grow it to the configured size ([`FIRST_READ_BUFFER`]).
    grow: bool,
}

/// Everything but the receive buffers, so an event can borrow the buffers while the
/// state machine still records a failure.
struct Core {
    role: Role,
    config: Config,
    rng: Option<Box<dyn RandomSource>>,

    rx_frame: Option<RxFrame>,
    rx_message: Option<RxMessage>,
    rx_utf8: Utf8Validator,
    /// No more input is processed (close received, or the connection failed).
    rx_done: bool,

    out: Output,
    tx_message: Option<MessageKind>,
    tx_utf8: Utf8Validator,
    /// Latest unanswered ping payload, kept when the output is backed up; written
    /// before anything else is queued, or when output is next taken.
    pending_pong: Option<([u8; MAX_CONTROL_PAYLOAD], u8)>,

    close_sent: bool,
    close_received: bool,
    /// The connection ended abnormally: protocol error, timeout or EOF.
    failed: bool,
    /// Nothing written now would reach the peer (dead peer, close timeout, EOF): the
    /// transport may be closed with output still queued.
    transport_dead: bool,
    /// The transport reached end of input.
    eof: bool,
    /// The client's wait for the server to close the transport is over.
    close_wait_over: bool,
    peer_close: Option<(CloseCode, [u8; MAX_REASON_LEN], u8)>,
    /// Why the connection is ending, if not by a closing handshake the application
    /// started or answered (reported by [`Next::Close`]).
    cause: Option<Error>,
    /// permessage-deflate, when agreed.
    deflate: Option<Box<compress::DeflateState>>,

    now: Option<Instant>,
    last_rx: Option<Instant>,
    pong_timer: Timer,
    close_timer: Timer,
    ping_counter: u64,
}

/// One WebSocket connection's protocol state, in either role.
///
/// A client and a server engine, wired back to back in memory:
///
/// ```
/// use hybi::{Config, Connection, Event, Next};
///
/// let mut client = Connection::client(Config::default(), |buf: &mut [u8]| buf.fill(7));
/// let mut server = Connection::server(Config::default());
///
/// client.send_text("hello").unwrap();
/// let Next::Write(output) = client.next() else { panic!("the frame to write") };
/// server.receive(output.bytes());
/// let written = output.len();
/// output.consume(written);
///
/// match server.next() {
///     Next::Event(Event::Text(text), _) => assert_eq!(text, "hello"),
///     other => panic!("{other:?}"),
/// }
/// ```
///
/// Drive it with [`next`](Self::next): the whole contract is there.
pub struct Connection {
    input: Input,
    core: Core,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.core.role)
            .field("state", &self.state())
            .field("buffered_input", &(self.input.end - self.input.pos))
            .field("buffered_output", &self.core.out.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A server-side connection (frames from the client must be masked).
    pub fn server(config: Config) -> Connection {
        Connection::new(Role::Server, config, None)
    }

    /// A client-side connection; `rng` provides the mask key of every frame sent.
    pub fn client(config: Config, rng: impl RandomSource + 'static) -> Connection {
        Connection::new(Role::Client, config, Some(Box::new(rng)))
    }

    /// A connection in `role`. A client needs `rng` for mask keys: without one (a
    /// client built from a handshake that lost it, say) every key is zero, which is
    /// valid framing but not the unpredictability RFC 6455 §10.3 asks for.
    pub fn new(role: Role, config: Config, rng: Option<Box<dyn RandomSource>>) -> Connection {
        Connection {
            input: Input::default(),
            core: Core {
                role,
                config,
                rng,
                rx_frame: None,
                rx_message: None,
                rx_utf8: Utf8Validator::new(),
                rx_done: false,
                out: Output::default(),
                tx_message: None,
                tx_utf8: Utf8Validator::new(),
                pending_pong: None,
                close_sent: false,
                close_received: false,
                failed: false,
                transport_dead: false,
                eof: false,
                close_wait_over: false,
                peer_close: None,
                cause: None,
                deflate: None,
                now: None,
                last_rx: None,
                pong_timer: Timer::Off,
                close_timer: Timer::Off,
                ping_counter: 0,
            },
        }
    }

    /// This connection's role.
    pub fn role(&self) -> Role {
        self.core.role
    }

    /// The configuration the connection runs with.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    // ----------------------------------------------------------------- state

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        let c = &self.core;
        let flushed = c.out.is_empty() || c.transport_dead;
        if (c.failed || (c.close_sent && c.close_received)) && flushed {
            State::Closed
        } else if c.close_received {
            State::CloseReceived
        } else if c.close_sent {
            State::CloseSent
        } else {
            State::Open
        }
    }

    /// True until a close frame is sent or received, or the connection fails.
    pub fn is_open(&self) -> bool {
        self.state() == State::Open
    }

    /// The peer's close code and reason, once its close frame has arrived.
    pub fn peer_close(&self) -> Option<(CloseCode, &str)> {
        self.core.peer_close.as_ref().map(|(code, reason, len)| {
            (
                *code,
                core::str::from_utf8(&reason[..usize::from(*len)]).unwrap_or(""),
            )
        })
    }

    // ---------------------------------------------------------------- timers

    /// Gives the engine the current time and fires what is due: keepalive pings, the
    /// pong deadline, the idle timeout and the close timeout. What follows comes out of
    /// the next [`next`](Self::next) (a ping to write, a close frame, the end).
    ///
    /// Call it when the deadline of [`Next::Wait`] (or of a pending
    /// [`Next::Write`]: [`Transmit::deadline`]) passes, and whenever you have
    /// a fresh time (before waiting on the transport, say): timers started by a send are
    /// measured from the last time given.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
    }
}

impl Core {
    /// When `handle_timeout` must next be called, if ever. [`Instant::ZERO`] means
    /// "now": a timer was started before the engine was given the time.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let c = self;
        if c.transport_dead {
            return None;
        }
        let mut next = min_opt(c.pong_timer.deadline(), c.close_timer.deadline());
        if c.close_sent || c.failed {
            return next;
        }
        let last_rx = c.last_rx.or(c.now);
        if let Some(interval) = c.config.keepalive_interval {
            if c.pong_timer == Timer::Off {
                next = min_opt(next, Some(last_rx.map_or(Instant::ZERO, |t| t + interval)));
            }
        }
        if let Some(idle) = c.config.idle_timeout {
            next = min_opt(next, Some(last_rx.map_or(Instant::ZERO, |t| t + idle)));
        }
        next
    }

    fn note_rx(&mut self) {
        self.last_rx = self.now;
        self.pong_timer = Timer::Off;
    }

    /// Fails the connection: queues a close frame with the error's code (unless one was
    /// sent already) and stops reading.
    fn fail(&mut self, e: ProtocolError) -> Error {
        if !self.close_sent {
            self.send_close(Some(e.close_code()), e.reason());
        }
        self.failed = true;
        self.rx_done = true;
        self.rx_frame = None;
        self.rx_message = None;
        self.pending_pong = None;
        // No keepalive any more; the close timer (armed with our close frame) bounds
        // how long that frame may wait for a peer that does not read.
        self.pong_timer = Timer::Off;
        self.note_cause(Error::Protocol(e));
        Error::Protocol(e)
    }

    /// The transport is gone: nothing more to send, no timer to run.
    pub(super) fn abandon(&mut self) {
        self.failed = true;
        self.transport_dead = true;
        self.rx_done = true;
        self.pending_pong = None;
        self.pong_timer = Timer::Off;
        self.close_timer = Timer::Off;
    }
}
