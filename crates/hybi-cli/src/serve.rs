//! `hybi serve`: /echo, /chat and the chat page, on the mio event loop.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hybi_mio::{CloseCode, Context, Fragment, Handler, Server};

use crate::ServeArgs;
use crate::exit::Exit;

#[path = "../../hybi-mio/examples/mio-chat/room.rs"]
mod room;

/// Echoes every message.
struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send_binary(data);
    }
}

/// Wraps a handler with one log line when the connection opens and one when it
/// closes (with the close code).
struct Logged<H> {
    inner: H,
    path: String,
    peer: Option<SocketAddr>,
    opened: Instant,
}

impl<H: Handler> Logged<H> {
    fn new(path: &str, inner: H) -> Logged<H> {
        Logged {
            inner,
            path: path.to_owned(),
            peer: None,
            opened: Instant::now(),
        }
    }
}

impl<H: Handler> Handler for Logged<H> {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.peer = Some(ctx.peer_addr());
        self.opened = Instant::now();
        println!("open  {} {}", ctx.peer_addr(), self.path);
        self.inner.on_open(ctx);
    }
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        self.inner.on_text(ctx, text);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.inner.on_binary(ctx, data);
    }
    fn on_fragment(&mut self, ctx: &mut Context<'_>, fragment: Fragment<'_>) {
        self.inner.on_fragment(ctx, fragment);
    }
    fn on_ping(&mut self, ctx: &mut Context<'_>, payload: &[u8]) {
        self.inner.on_ping(ctx, payload);
    }
    fn on_pong(&mut self, ctx: &mut Context<'_>, payload: &[u8]) {
        self.inner.on_pong(ctx, payload);
    }
    fn on_backpressure(&mut self, ctx: &mut Context<'_>, paused: bool) {
        self.inner.on_backpressure(ctx, paused);
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, code: CloseCode, reason: &str) {
        let quoted = if reason.is_empty() {
            String::new()
        } else {
            format!(" {reason:?}")
        };
        println!(
            "close {} {} {code}{quoted} after {:.1}s",
            ctx.peer_addr(),
            self.path,
            self.opened.elapsed().as_secs_f64()
        );
        self.inner.on_close(ctx, code, reason);
    }
}

pub(crate) fn run(args: &ServeArgs) -> Exit {
    let bridge = match &args.redis {
        Some(url) => match hybi_mio::RedisBridge::connect(url) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("hybi serve: --redis: {e}");
                return Exit::Usage;
            }
        },
        None => None,
    };
    let chat = match &bridge {
        Some(b) => room::Chat::in_room(
            hybi_mio::Room::bridged(b, "chat"),
            &format!("{:04x}", b.node_id() >> 48),
        ),
        None => room::Chat::default(),
    };
    let mut builder = Server::builder()
        .config(
            hybi_mio::default_config()
                .with_max_message_size(16 << 20)
                .with_deflate((!args.no_deflate).then(|| {
                    hybi_mio::hybi::deflate::DeflateConfig::default().without_context_takeover()
                })),
        )
        .page("/", "text/html; charset=utf-8", room::PAGE.as_bytes())
        .route("/echo", |req| Logged::new(req.path(), Echo))
        .route("/chat", move |req| Logged::new(req.path(), chat.member()))
        .high_water(32 << 20);
    if let Some(n) = args.workers {
        builder = builder.workers(n);
    }
    let secure = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match crate::tls::server_config(cert, key) {
            Ok(config) => {
                builder = builder.tls(config);
                true
            }
            Err(e) => {
                eprintln!("hybi serve: {e}");
                return Exit::Usage;
            }
        },
        _ => false,
    };
    let (http, ws) = if secure {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let server = match builder.bind(&args.addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hybi serve: cannot listen on {}: {e}", args.addr);
            return Exit::Network;
        }
    };
    let addr = server.local_addr();
    let (stop_tx, stop_rx) = mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    }) {
        eprintln!("hybi serve: cannot catch Ctrl-C: {e}");
    }
    println!(
        "hybi serve: chat page at {http}://{addr}/ , WebSockets at {ws}://{addr}/echo and {ws}://{addr}/chat"
    );
    if let (Some(b), Some(url)) = (&bridge, &args.redis) {
        println!(
            "hybi serve: /chat shared through {url} (channel {}chat, node {:016x}; at most once across nodes)",
            hybi_mio::CHANNEL_PREFIX,
            b.node_id()
        );
    }
    println!("hybi serve: Ctrl-C stops (connections get close 1001)");
    let mut reported = bridge.as_ref().map(|_| hybi_mio::BridgeStats::default());
    while let Err(mpsc::RecvTimeoutError::Timeout) =
        stop_rx.recv_timeout(Duration::from_millis(500))
    {
        // What the Redis bridge lost or dropped, as it happens.
        if let (Some(b), Some(before)) = (&bridge, &mut reported) {
            let now = b.stats();
            if (now.lost, now.dropped_malformed, now.subscriptions)
                != (before.lost, before.dropped_malformed, before.subscriptions)
            {
                println!(
                    "hybi serve: redis: {} published, {} received, {} lost, {} malformed dropped, subscribed {} time(s)",
                    now.published, now.received, now.lost, now.dropped_malformed, now.subscriptions
                );
                *before = now;
            }
        }
    }
    println!("hybi serve: shutting down");
    let grace = Duration::from_secs(args.grace);
    server.shutdown(grace);
    println!("hybi serve: stopped");
    Exit::Ok
}
