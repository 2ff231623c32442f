//! Client for the Autobahn|Testsuite `fuzzingserver`: fetches the case count, runs
//! every case echoing each message (offering permessage-deflate), then asks the suite
//! to write its reports.
//!
//! Usage: `cargo run --release -p hybi-std --example std-autobahn-client [URL]`
//! (default ws://127.0.0.1:9001).

use hybi_std::hybi::deflate::DeflateConfig;
use hybi_std::{ClientBuilder, Error, Message};

const AGENT: &str = "hybi";

fn main() -> Result<(), Error> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let base = base.trim_end_matches('/');
    let count = case_count(base)?;
    eprintln!("{count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        if let Err(e) = run_case(&url) {
            eprintln!("case {case}: {e}");
        }
    }
    let (mut ws, _) = hybi_std::connect(&format!("{base}/updateReports?agent={AGENT}"))?;
    while ws.read().is_ok() {}
    eprintln!("reports updated");
    Ok(())
}

fn case_count(base: &str) -> Result<u32, Error> {
    let (mut ws, _) = hybi_std::connect(&format!("{base}/getCaseCount"))?;
    let mut count = None;
    while let Ok(message) = ws.read() {
        if let Message::Text(t) = message {
            count = t.trim().parse().ok();
        }
    }
    count.ok_or(Error::ConnectionClosed)
}

/// Echoes until the suite closes; a protocol error is the expected end of many cases.
fn run_case(url: &str) -> Result<(), Error> {
    let config = hybi_std::default_config().with_deflate(Some(DeflateConfig::default()));
    let (mut ws, _) = ClientBuilder::new(url).config(config).connect()?;
    loop {
        let _ = match ws.read() {
            Ok(Message::Text(t)) => ws.send_text(&t),
            Ok(Message::Binary(b)) => ws.send_binary_owned(b),
            Ok(_) => Ok(()),
            Err(Error::ConnectionClosed | Error::Protocol(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
    }
}
