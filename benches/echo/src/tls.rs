//! TLS for the benchmark servers and clients: rustls 0.23 on the ring provider.
//!
//! Servers load a certificate chain and key from PEM files (`--tls-cert FILE
//! --tls-key FILE`; `benches/echo/run.py` makes a self-signed P-256 certificate for
//! the run). Clients use [`insecure_client`]: **it accepts any certificate and any
//! handshake signature, for benchmarks on this machine only.** Skipping the
//! client's verification leaves the server's work unchanged (key exchange, signing,
//! record encryption) while keeping the client's share of a handshake small, so a
//! single client thread can load a server harder. Session resumption is off, so
//! every handshake is a full one.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A server configuration (TLS 1.2 and 1.3, rustls' defaults otherwise) with the
/// certificate chain and private key in these PEM files.
pub fn server_config(cert: &str, key: &str) -> std::io::Result<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| other(format!("{cert}: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| other(format!("{cert}: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| other(format!("{key}: {e}")))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(other)?;
    Ok(Arc::new(config))
}

/// The server's `--tls-cert FILE --tls-key FILE` options, if both are given (exits
/// with a usage message if only one is).
pub fn server_files(args: &[String]) -> Option<(String, String)> {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    match (value("--tls-cert"), value("--tls-key")) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            eprintln!("--tls-cert FILE and --tls-key FILE go together");
            std::process::exit(2);
        }
    }
}

/// A client configuration that **accepts any server certificate** (see the module
/// documentation: benchmarks only), with session resumption off.
pub fn insecure_client() -> Arc<rustls::ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyServerCert {
        schemes: provider
            .signature_verification_algorithms
            .supported_schemes(),
    });
    let builder = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("rustls: {e}");
            std::process::exit(1);
        }
    };
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// The name the clients give the server: its IP address (no SNI is sent for one).
pub fn server_name(addr: std::net::SocketAddr) -> ServerName<'static> {
    ServerName::IpAddress(addr.ip().into())
}

/// Accepts every certificate and every handshake signature. **For benchmarks
/// against servers on this machine only**: a client with it authenticates no one.
#[derive(Debug)]
struct AcceptAnyServerCert {
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}
