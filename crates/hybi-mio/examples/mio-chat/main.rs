//! A chat room for browsers on the mio event loop: open `http://ADDR/` in several
//! tabs. `/chat` broadcasts every text message to everyone connected, with join and
//! leave notices; `/echo` echoes.
//!
//! Usage: `cargo run --release -p hybi-mio --example mio-chat [ADDR] [--tls-cert FILE
//! --tls-key FILE]` (default 127.0.0.1:9001, plain http:// and ws://). With
//! `--tls-cert` (a PEM certificate chain) and `--tls-key` (its PEM private key: PKCS#8,
//! RSA or EC) the page and the WebSockets are served over TLS instead, `https://` and
//! `wss://` (the `tls` feature, on by default).

mod room;

use hybi_mio::{Context, Handler, Server};

struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send_binary(data);
    }
}

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9001".to_owned();
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tls-cert" | "--tls-key" => {
                let Some(file) = args.next() else {
                    eprintln!("{arg} needs a file");
                    std::process::exit(2);
                };
                if arg == "--tls-cert" {
                    cert = Some(file);
                } else {
                    key = Some(file);
                }
            }
            other if other.starts_with('-') => {
                eprintln!(
                    "unknown argument {other} (usage: chat [ADDR] [--tls-cert FILE --tls-key FILE])"
                );
                std::process::exit(2);
            }
            other => addr = other.to_owned(),
        }
    }
    let mut builder = Server::builder();
    let scheme = match (cert, key) {
        (None, None) => "http",
        (Some(cert), Some(key)) => {
            builder = with_tls(builder, &cert, &key);
            "https"
        }
        _ => {
            eprintln!("--tls-cert and --tls-key go together");
            std::process::exit(2);
        }
    };
    let chat = room::Chat::default();
    // Browsers offer permessage-deflate on every connection: accept it, keeping no
    // compression context, so an idle member costs no compression state.
    let deflate = hybi_mio::hybi::deflate::DeflateConfig::default().without_context_takeover();
    let server = builder
        .config(hybi_mio::default_config().with_deflate(Some(deflate)))
        .page("/", "text/html; charset=utf-8", room::PAGE.as_bytes())
        .route("/chat", move |_| chat.member())
        .route("/echo", |_| Echo)
        .bind(&addr)?;
    eprintln!("chat on {scheme}://{addr}/ (WebSockets at /chat and /echo)");
    server.run()
}

/// Serves over TLS with the chain in `cert` and the key in `key` (PEM files); exits
/// with status 2 if they cannot be used.
#[cfg(feature = "tls")]
fn with_tls(builder: hybi_mio::ServerBuilder, cert: &str, key: &str) -> hybi_mio::ServerBuilder {
    use hybi_mio::rustls::pki_types::pem::PemObject;
    use hybi_mio::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use hybi_mio::rustls::{ServerConfig, crypto::ring};
    use std::sync::Arc;

    let fail = |why: String| -> ! {
        eprintln!("{why}");
        std::process::exit(2);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| fail(format!("--tls-cert {cert}: {e}")));
    let key =
        PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| fail(format!("--tls-key {key}: {e}")));
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .unwrap_or_else(|e| fail(format!("--tls-cert/--tls-key: {e}")));
    builder.tls(Arc::new(config))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: hybi_mio::ServerBuilder, _: &str, _: &str) -> hybi_mio::ServerBuilder {
    eprintln!("--tls-cert needs hybi-mio's `tls` feature");
    std::process::exit(2);
}
