//! Client for the Autobahn|Testsuite `fuzzingserver`, on the mio event loop: fetches
//! the case count, runs every case echoing each message, then asks the suite to write
//! its reports.
//!
//! Usage: `cargo run --release -p hybi-mio --example mio-autobahn-client [URL]`
//! (default ws://127.0.0.1:9001).

use std::sync::mpsc;

use hybi_mio::ClientOptions;
use hybi_mio::hybi::deflate::DeflateConfig;
use hybi_mio::{CloseCode, Context, Handler, Server};

const AGENT: &str = "hybi";

/// Echoes every message; reports the first text message and the end.
struct Echo {
    first_text: Option<mpsc::Sender<String>>,
    done: mpsc::Sender<()>,
    echo: bool,
}

impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        if let Some(tx) = self.first_text.take() {
            let _ = tx.send(text.to_owned());
        }
        if self.echo {
            let _ = ctx.send_text(text);
        }
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        if self.echo {
            let _ = ctx.send_binary(data);
        }
    }
    fn on_close(&mut self, _ctx: &mut Context<'_>, _code: CloseCode, _reason: &str) {
        let _ = self.done.send(());
    }
}

fn run(loop_: &Server, url: &str, echo: bool) -> Option<String> {
    let (text_tx, text_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let handler = Echo {
        first_text: Some(text_tx),
        done: done_tx,
        echo,
    };
    // permessage-deflate offered (cases 12.* and 13.*).
    let config = hybi_mio::default_config().with_deflate(Some(DeflateConfig::default()));
    if let Err(e) = loop_.connect_with(ClientOptions::new(url).config(config), handler) {
        eprintln!("{url}: {e}");
        return None;
    }
    let _ = done_rx.recv();
    text_rx.try_recv().ok()
}

fn main() {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let base = base.trim_end_matches('/').to_owned();
    let event_loop = match Server::builder().workers(1).start() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot start the event loop: {e}");
            std::process::exit(1);
        }
    };
    let count: u32 = run(&event_loop, &format!("{base}/getCaseCount"), false)
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    eprintln!("{count} cases");
    for case in 1..=count {
        run(
            &event_loop,
            &format!("{base}/runCase?case={case}&agent={AGENT}"),
            true,
        );
    }
    run(
        &event_loop,
        &format!("{base}/updateReports?agent={AGENT}"),
        false,
    );
    eprintln!("reports updated");
    event_loop.shutdown(std::time::Duration::from_secs(1));
    if count == 0 {
        std::process::exit(1);
    }
}
