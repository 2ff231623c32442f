//! `hybi`: a WebSocket echo and chat server, an interactive client, and a load
//! generator, built on the hybi engine and its adapters.
#![forbid(unsafe_code)]

mod connect;
mod exit;
mod histogram;
mod load;
mod serve;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// A WebSocket (RFC 6455) toolbox built on the hybi engine.
#[derive(Parser, Debug)]
#[command(name = "hybi", version, about, long_about = None, after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve /echo, /chat and a chat page at / (open it in a browser).
    Serve(ServeArgs),
    /// Talk to a WebSocket server: each stdin line is a message, each message received
    /// is printed.
    Connect(ConnectArgs),
    /// Measure a WebSocket echo server: messages/s, MB/s, latency percentiles.
    Load(LoadArgs),
}

/// `hybi serve` options.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub(crate) addr: String,
    /// Event-loop threads (default: one per core).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Seconds a closing connection gets to finish its closing handshake on Ctrl-C.
    #[arg(long, default_value_t = 5)]
    pub(crate) grace: u64,
    /// Do not accept permessage-deflate (by default it is accepted when offered, as
    /// browsers do, without context takeover: an idle connection keeps no
    /// compression state).
    #[arg(long)]
    pub(crate) no_deflate: bool,
    /// Serve over TLS (https:// and wss://) with this certificate chain (PEM, the
    /// server's certificate first). Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, RSA or EC).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Share /chat with every `hybi serve` using this Redis server (redis://host:port),
    /// through pub/sub on channel hybi:room:chat. Delivery across servers is at most
    /// once: what is published while Redis is away beyond a bounded queue, or while a
    /// server is reconnecting, is lost (and reported).
    #[arg(long, value_name = "URL")]
    pub(crate) redis: Option<String>,
}

/// TLS options of `hybi connect` and `hybi load`, for wss:// URLs.
#[derive(Args, Debug, Clone)]
pub(crate) struct ClientTlsArgs {
    /// wss://: trust the CA certificates in this PEM file instead of the built-in
    /// roots (Mozilla's).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// wss://: do not check the server's certificate at all (a warning is printed;
    /// for testing only).
    #[arg(long, conflicts_with = "ca")]
    pub(crate) insecure: bool,
}

/// `hybi connect` options.
#[derive(Args, Debug)]
#[command(after_help = CONNECT_HELP)]
pub(crate) struct ConnectArgs {
    /// The server, e.g. ws://127.0.0.1:9001/echo or wss://example.com/chat.
    pub(crate) url: String,
    /// Offer this subprotocol (repeat for several).
    #[arg(long = "protocol", value_name = "P")]
    pub(crate) protocols: Vec<String>,
    /// Add a request header, e.g. -H 'Authorization: Bearer x' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "'K: V'")]
    pub(crate) headers: Vec<String>,
    /// Send each line as a binary message: its bytes as they are (without the line
    /// end), UTF-8 or not.
    #[arg(short = 'b', long, overrides_with = "text")]
    pub(crate) binary: bool,
    /// Send each line as a text message (the default; the last of -b and -t wins).
    #[arg(short = 't', long, overrides_with = "binary")]
    pub(crate) text: bool,
    /// Send the first line of stdin, print the first message that arrives, close
    /// with 1000 and exit (0 once the server answers the close).
    #[arg(short = '1', long, conflicts_with = "no_close")]
    pub(crate) one_message: bool,
    /// At the end of stdin do not close: keep printing messages until the server
    /// closes (or Ctrl-C).
    #[arg(short = 'n', long)]
    pub(crate) no_close: bool,
    /// No status lines on stderr ("connected", "closed by", pong times); errors are
    /// still printed.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Give up if the connection is not open within SECS seconds: name lookup, TCP
    /// connect, TLS and WebSocket handshake together (exit status 3).
    #[arg(long, value_name = "SECS")]
    pub(crate) connect_timeout: Option<f64>,
    /// Send a ping every SECS seconds and print each round trip on stderr
    /// ("pong: 0.42 ms").
    #[arg(long, value_name = "SECS")]
    pub(crate) ping: Option<f64>,
    /// Print binary messages as a line of hex ("[binary 3 bytes] 616263"), every
    /// byte, also when stdout is not a terminal (where they are otherwise written
    /// raw).
    #[arg(long)]
    pub(crate) hex: bool,
    /// Do not offer permessage-deflate (offered by default).
    #[arg(long)]
    pub(crate) no_deflate: bool,
    #[command(flatten)]
    pub(crate) tls: ClientTlsArgs,
}

/// What `hybi connect --help` adds after the options.
const CONNECT_HELP: &str = "\
Output:
    Text messages are printed one per line on stdout. Binary messages are written
    as they are (raw bytes, no separator) when stdout is not a terminal; on a
    terminal, or with --hex, as a line \"[binary N bytes] <hex>\" (on a terminal
    without --hex, the first 32 bytes). Status lines go to stderr: who closed the
    connection (\"closed by us: 1000 normal\" or \"closed by the server: 1001
    going away\"), pong times; -q keeps only errors.

    When stdin is a terminal, lines that arrive while you type (messages, pong
    times) start with a carriage return and clear the line first, so they never
    run into what you are typing; what you typed is still there, it is sent on
    Enter (Ctrl-R shows it again).

Examples:
    echo hello | hybi connect -1 ws://127.0.0.1:9001/echo
    hybi connect -H 'Authorization: Bearer x' --ping 5 wss://example.com/feed
    hybi connect -n -q ws://127.0.0.1:9001/chat < /dev/null";

/// `hybi load` options.
#[derive(Args, Debug, Clone)]
pub(crate) struct LoadArgs {
    /// The echo server, e.g. ws://127.0.0.1:9001/echo (or wss://...).
    #[arg(long)]
    pub(crate) url: String,
    /// Connections.
    #[arg(long, default_value_t = 64)]
    pub(crate) conns: usize,
    /// Messages in flight on each connection.
    #[arg(long, default_value_t = 16)]
    pub(crate) inflight: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 16)]
    pub(crate) size: usize,
    /// Seconds to measure (after every connection is open).
    #[arg(long, default_value_t = 10.0)]
    pub(crate) secs: f64,
    /// Event-loop threads for the client connections.
    #[arg(long, default_value_t = 1)]
    pub(crate) workers: usize,
    /// Send text messages (ASCII) instead of binary.
    #[arg(long)]
    pub(crate) text: bool,
    /// Check every echo byte for byte, not only its length.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Print a JSON summary on stdout (progress still goes to stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// No live progress line.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Accept masked frames from the server (RFC 6455 forbids them): for measuring
    /// a raw TCP echo that returns our frames byte for byte, the harness's ceiling.
    #[arg(long)]
    pub(crate) accept_masked: bool,
    /// Offer permessage-deflate (compressed messages both ways).
    #[arg(long)]
    pub(crate) deflate: bool,
    /// Send JSON-like text messages, 64 different ones in turn (what compression
    /// meets in practice), instead of one repeated payload.
    #[arg(long)]
    pub(crate) json_payload: bool,
    #[command(flatten)]
    pub(crate) tls: ClientTlsArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Connect(args) => connect::run(&args),
        Command::Load(args) => load::run(&args),
    };
    code.into()
}

/// Seconds as a duration, refusing nonsense.
pub(crate) fn seconds(s: f64) -> Option<Duration> {
    (s.is_finite() && s > 0.0).then(|| Duration::from_secs_f64(s))
}
