//! wss:// on hybi-tokio: its TLS server (`Acceptor::accept_tls`) and client
//! (`ClientBuilder::tls_config`, `MaybeTlsStream::Rustls`), against each other and
//! against hybi-std's TLS server, with certificates made here by rcgen; and what
//! goes wrong: an untrusted or wrong-name certificate, plain HTTP on the TLS port, TLS
//! to a plain port, a handshake that stalls.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hybi_tokio::rustls::crypto::ring;
use hybi_tokio::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use hybi_tokio::rustls::{self, CertificateError, ClientConfig, RootCertStore, ServerConfig};
use hybi_tokio::{Acceptor, ClientBuilder, CloseCode, Error, HandshakeError, Message, TlsError};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A certificate authority made for one test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca {
            issuer: Issuer::new(params, key),
            der,
        }
    }

    /// A server config with a certificate for `names`, signed by this CA.
    fn server_config(&self, names: &[&str]) -> Arc<ServerConfig> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Arc::new(
            ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap(),
        )
    }

    /// A client config that trusts only this CA.
    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        Arc::new(
            ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// A TLS echo server for one connection; its result is the accept's.
async fn tls_echo_once(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    acceptor: Acceptor,
) -> Result<(), Error> {
    let (tcp, _) = listener.accept().await?;
    let mut ws = acceptor.accept_tls(tcp, config).await?;
    loop {
        match ws.recv().await {
            Ok(m) if m.is_data() => ws.send(m).await?,
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

async fn bound() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

#[tokio::test]
async fn wss_echo_with_large_messages_and_a_clean_close() {
    let ca = Ca::new("hybi-tokio test CA");
    let (listener, port) = bound().await;
    let server = tokio::spawn(tls_echo_once(
        listener,
        ca.server_config(&["localhost"]),
        Acceptor::new(),
    ));
    let (mut ws, response) = ClientBuilder::new(&format!("wss://localhost:{port}/echo"))
        .tls_config(ca.client_config())
        .connect()
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    assert!(matches!(
        ws.get_ref(),
        hybi_tokio::MaybeTlsStream::Rustls(_)
    ));
    for size in [0usize, 5, 16 << 10, 1 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        ws.send_binary(&data).await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap(),
            Message::Binary(data),
            "{size} bytes"
        );
    }
    // Split over TLS: one task writes while this one reads.
    let (mut reader, mut writer) = ws.split();
    let writing = tokio::spawn(async move {
        for i in 0..200 {
            writer.send_text(&format!("m{i}")).await.unwrap();
        }
        writer.close(CloseCode::NORMAL, "done").await.unwrap();
    });
    for i in 0..200 {
        assert_eq!(reader.recv().await.unwrap(), Message::Text(format!("m{i}")));
    }
    assert!(
        matches!(reader.recv().await.unwrap(), Message::Close(c) if c.code == CloseCode::NORMAL)
    );
    assert!(matches!(reader.recv().await, Err(Error::ConnectionClosed)));
    writing.await.unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn against_the_blocking_adapters_tls_server() {
    let ca = Ca::new("hybi-tokio test CA");
    let server = hybi_std::Server::builder()
        .route("/echo", |_| Echo)
        .tls(ca.server_config(&["127.0.0.1"]))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap();
    let url = format!("wss://{}/echo", server.local_addr());
    let (mut ws, _) = ClientBuilder::new(&url)
        .tls_config(ca.client_config())
        .connect()
        .await
        .unwrap();
    ws.send_text("over rustls, both sides").await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        Message::Text("over rustls, both sides".into())
    );
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(matches!(ws.recv().await.unwrap(), Message::Close(_)));
}

struct Echo;
impl hybi_std::Handler for Echo {
    fn on_text(&mut self, peer: &hybi_std::Peer, text: &str) {
        let _ = peer.send_text(text);
    }
}

#[tokio::test]
async fn an_untrusted_or_wrong_name_certificate_is_a_tls_error() {
    let ca = Ca::new("hybi-tokio test CA");
    let stranger = Ca::new("a stranger's CA");
    for (names, client, want) in [
        (["localhost"], stranger.client_config(), "UnknownIssuer"),
        (["example.com"], ca.client_config(), "NotValidForName"),
    ] {
        let (listener, port) = bound().await;
        let server = tokio::spawn(tls_echo_once(
            listener,
            ca.server_config(&names),
            Acceptor::new(),
        ));
        let err = ClientBuilder::new(&format!("wss://localhost:{port}/"))
            .tls_config(client)
            .connect()
            .await
            .unwrap_err();
        match &err {
            Error::Tls(TlsError::Rustls(rustls::Error::InvalidCertificate(e))) => {
                let is = match e {
                    CertificateError::UnknownIssuer => "UnknownIssuer",
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. } => "NotValidForName",
                    _ => "other",
                };
                assert_eq!(is, want, "{err}");
            }
            other => panic!("want a certificate error, got {other:?}"),
        }
        // The server hears the client's alert.
        assert!(matches!(server.await.unwrap(), Err(Error::Tls(_))));
    }
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_answered_400_in_plain_text() {
    let ca = Ca::new("hybi-tokio test CA");
    let (listener, port) = bound().await;
    let server = tokio::spawn(tls_echo_once(
        listener,
        ca.server_config(&["localhost"]),
        Acceptor::new(),
    ));
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(matches!(
        server.await.unwrap(),
        Err(Error::Tls(TlsError::NotTls))
    ));
}

#[tokio::test]
async fn tls_to_a_plain_port_fails_fast() {
    // A plain WebSocket server: the ClientHello is not an HTTP request, so it answers
    // 400 and closes; the client reports a TLS failure, not a hang.
    let (listener, port) = bound().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        hybi_tokio::accept(tcp).await
    });
    let started = Instant::now();
    let err = ClientBuilder::new(&format!("wss://127.0.0.1:{port}/"))
        .handshake_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(server.await.unwrap().is_err());
}

#[tokio::test]
async fn a_stalled_tls_handshake_times_out_on_both_sides() {
    let ca = Ca::new("hybi-tokio test CA");
    // Server side: a client that sends half a ClientHello and stops.
    let (listener, port) = bound().await;
    let acceptor = Acceptor::new().handshake_timeout(Duration::from_millis(300));
    let server = tokio::spawn(tls_echo_once(
        listener,
        ca.server_config(&["localhost"]),
        acceptor,
    ));
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let started = Instant::now();
    let result = server.await.unwrap();
    assert!(
        matches!(result, Err(Error::Handshake(HandshakeError::Timeout))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(tcp);

    // Client side: a server that accepts TCP and says nothing.
    let (quiet, port) = bound().await;
    let silent = tokio::spawn(async move { quiet.accept().await });
    let err = ClientBuilder::new(&format!("wss://localhost:{port}/"))
        .tls_config(ca.client_config())
        .handshake_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Handshake(HandshakeError::Timeout)),
        "{err:?}"
    );
    drop(silent);
}
