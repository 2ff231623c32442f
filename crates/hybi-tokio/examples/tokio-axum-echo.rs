//! An axum app with hybi behind it: a page at `/`, a WebSocket echo at `/echo` (with
//! permessage-deflate, as browsers offer it), through hybi-tokio's
//! `WebSocketUpgrade` extractor:
//! `cargo run -p hybi-tokio --features axum --example tokio-axum-echo -- [ADDR]`
//! (default 127.0.0.1:3000).
use axum::response::{Html, Response};
use axum::routing::get;
use hybi_tokio::axum::WebSocketUpgrade;
use hybi_tokio::hybi::deflate::DeflateConfig;

const PAGE: &str = r#"<!doctype html><title>hybi-tokio echo</title>
<input id=text placeholder="say something"><pre id=log></pre>
<script>
const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/echo");
const log = (s) => (document.getElementById("log").textContent += s + "\n");
ws.onmessage = (e) => log("echo: " + e.data);
ws.onopen = () => log("connected (" + (ws.extensions || "no extensions") + ")");
document.getElementById("text").onkeydown = (e) => {
  if (e.key === "Enter") { ws.send(e.target.value); e.target.value = ""; }
};
</script>"#;

async fn echo(ws: WebSocketUpgrade) -> Response {
    let config = hybi_tokio::default_config().with_deflate(Some(DeflateConfig::default()));
    ws.config(config).on_upgrade(|mut ws| async move {
        while let Ok(message) = ws.recv().await {
            if message.is_data() && ws.send(message).await.is_err() {
                break;
            }
        }
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let app = axum::Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/echo", get(echo));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "http://{}/ (WebSocket echo at /echo)",
        listener.local_addr()?
    );
    axum::serve(listener, app).await
}
