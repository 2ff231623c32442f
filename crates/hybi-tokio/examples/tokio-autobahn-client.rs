//! Client for the Autobahn|Testsuite `fuzzingserver` on hybi-tokio: fetches the case
//! count, runs every case echoing each message (offering permessage-deflate), then
//! asks the suite to write its reports.
//!
//! Usage: `cargo run --release -p hybi-tokio --example tokio-autobahn-client [URL]`
//! (default ws://127.0.0.1:9001).

use hybi_tokio::hybi::deflate::DeflateConfig;
use hybi_tokio::{ClientBuilder, Error, Message};

const AGENT: &str = "hybi";

fn main() -> Result<(), Error> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let base = base.trim_end_matches('/').to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let count = case_count(&base).await?;
        eprintln!("{count} cases");
        for case in 1..=count {
            let url = format!("{base}/runCase?case={case}&agent={AGENT}");
            if let Err(e) = run_case(&url).await {
                eprintln!("case {case}: {e}");
            }
        }
        let (mut ws, _) =
            hybi_tokio::connect_async(&format!("{base}/updateReports?agent={AGENT}")).await?;
        while ws.recv().await.is_ok() {}
        eprintln!("reports updated");
        Ok(())
    })
}

async fn case_count(base: &str) -> Result<u32, Error> {
    let (mut ws, _) = hybi_tokio::connect_async(&format!("{base}/getCaseCount")).await?;
    let mut count = None;
    while let Ok(message) = ws.recv().await {
        if let Message::Text(t) = message {
            count = t.trim().parse().ok();
        }
    }
    count.ok_or(Error::ConnectionClosed)
}

/// Echoes until the suite closes; a protocol error is the expected end of many cases.
async fn run_case(url: &str) -> Result<(), Error> {
    let config = hybi_tokio::default_config().with_deflate(Some(DeflateConfig::default()));
    let (mut ws, _) = ClientBuilder::new(url).config(config).connect().await?;
    loop {
        let _ = match ws.recv().await {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => ws.send(message).await,
            Ok(_) => Ok(()),
            Err(Error::ConnectionClosed | Error::Protocol(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
    }
}
