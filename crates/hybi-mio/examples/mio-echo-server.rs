//! Echo server on the mio event loop: every text and binary message comes back.
//!
//! Usage: `cargo run --release -p hybi-mio --example mio-echo-server [ADDR] [--workers N]
//! [--deflate] [--tls-cert FILE --tls-key FILE]` (default 127.0.0.1:9002, one worker
//! per core, plain ws://). Serves any path. `--deflate` accepts permessage-deflate
//! offers (`DeflateConfig::default()`: level 1, context takeover). With `--tls-cert`
//! (a PEM certificate chain) and `--tls-key` (its PEM private key: PKCS#8, RSA or EC)
//! it serves wss:// instead (the `tls` feature, on by default).

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
    let mut addr = "127.0.0.1:9002".to_owned();
    let mut workers = None;
    let (mut cert, mut key) = (None, None);
    let mut deflate = false;
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
            "--workers" => {
                let n = args.next().and_then(|n| n.parse().ok());
                let Some(n) = n else {
                    eprintln!("--workers needs a number");
                    std::process::exit(2);
                };
                workers = Some(n);
            }
            "--deflate" => deflate = true,
            other => addr = other.to_owned(),
        }
    }
    let mut builder = Server::builder().fallback(|_| Echo);
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let scheme = match (cert, key) {
        (None, None) => "ws",
        (Some(cert), Some(key)) => {
            builder = with_tls(builder, &cert, &key);
            "wss"
        }
        _ => {
            eprintln!("--tls-cert and --tls-key go together");
            std::process::exit(2);
        }
    };
    if deflate {
        let config = hybi_mio::hybi::deflate::DeflateConfig::default();
        builder = builder.config(hybi_mio::default_config().with_deflate(Some(config)));
    }
    let server = builder.bind(&addr)?;
    eprintln!("echo server (hybi-mio) on {scheme}://{addr}/");
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
