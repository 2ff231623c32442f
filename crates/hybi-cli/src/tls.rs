//! TLS settings from the command line: a server config from PEM files
//! (`serve --tls-cert --tls-key`), and a client config (`connect`, `load`) that
//! trusts the roots of a PEM file (`--ca`) or checks nothing (`--insecure`).

use std::path::Path;
use std::sync::Arc;

use hybi_mio::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use hybi_mio::rustls::crypto::{self, CryptoProvider, ring};
use hybi_mio::rustls::pki_types::pem::PemObject;
use hybi_mio::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use hybi_mio::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Every certificate in the PEM file at `path` (at least one).
fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the {what} {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{shown}: no PEM certificate in it ({what})"));
    }
    Ok(certs)
}

/// A server config with the certificate chain of `cert` and the private key of
/// `key` (PKCS#8, PKCS#1 RSA or SEC1 EC, PEM).
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = certificates(cert, "certificate chain (--tls-cert)")?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "cannot read a private key (PKCS#8, RSA or EC PEM) from {} (--tls-key): {e}",
            key.display()
        )
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("--tls-cert and --tls-key do not make a usable pair: {e}"))?;
    Ok(Arc::new(config))
}

/// The client config `--ca` and `--insecure` ask for, or `None` for the default
/// (Mozilla's roots). `--insecure` prints a warning.
pub(crate) fn client_config(
    command: &str,
    ca: Option<&Path>,
    insecure: bool,
) -> Result<Option<Arc<ClientConfig>>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if insecure {
        eprintln!(
            "hybi {command}: warning: --insecure: the server's certificate is not checked \
             (anyone on the path can read and change this connection)"
        );
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
            .with_no_client_auth();
        return Ok(Some(Arc::new(config)));
    }
    let Some(ca) = ca else {
        return Ok(None);
    };
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca, "CA certificates (--ca)")? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", ca.display()))?;
    }
    let config = builder.with_root_certificates(roots).with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

/// `--insecure`: any certificate is accepted; the handshake's signatures are still
/// checked (they prove the server holds the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
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
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
