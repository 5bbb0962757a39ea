//! TLS with rustls (ring provider): server configurations from openssl.conf contexts, the
//! self-signed certificate of the embedded default, and client configurations for the load
//! generator and upstream links.
//!
//! SMPP over TLS is implicit TLS from the first byte (no STARTTLS), TLS 1.2 and 1.3.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ServerConfig};

use crate::config::TlsContext;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A server configuration from PEM text holding the certificate chain, and the private key
/// either in the same text or in `key_pem`.
pub fn server_from_pem(pem: &[u8], key_pem: Option<&[u8]>) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block found".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.unwrap_or(pem))
        .map_err(|e| format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"))?;
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not make a TLS identity: {e}"))?;
    Ok(Arc::new(cfg))
}

/// The server configuration of an openssl.conf context; relative paths are resolved against
/// the configuration directory. Errors say which file and what is wrong with it.
pub fn load_server(ctx: &TlsContext, dir: &Path) -> Result<Arc<ServerConfig>, String> {
    let path = dir.join(&ctx.certificate);
    let pem = std::fs::read(&path).map_err(|e| {
        format!(
            "openssl.conf:{}: certificate: cannot read {}: {e}",
            ctx.line,
            path.display()
        )
    })?;
    let key = match &ctx.key {
        Some(k) => {
            let kp = dir.join(k);
            Some(std::fs::read(&kp).map_err(|e| {
                format!(
                    "openssl.conf:{}: key: cannot read {}: {e}",
                    ctx.line,
                    kp.display()
                )
            })?)
        }
        None => None,
    };
    server_from_pem(&pem, key.as_deref()).map_err(|e| {
        format!(
            "openssl.conf:{}: [{}] {}: {e}",
            ctx.line,
            ctx.name,
            path.display()
        )
    })
}

/// A self-signed certificate and its key, as one PEM text, for these names.
pub fn self_signed_pem(names: &[String]) -> Result<String, String> {
    let ck = rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| e.to_string())?;
    Ok(format!(
        "{}{}",
        ck.cert.pem(),
        ck.signing_key.serialize_pem()
    ))
}

/// A client configuration trusting the certificates in `ca_pem` (a private CA or a pinned
/// self-signed certificate).
pub fn client_with_roots(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    add_pem_roots(&mut roots, ca_pem)?;
    client_trusting(roots)
}

/// Adds the certificates of PEM text to `roots`.
fn add_pem_roots(roots: &mut rustls::RootCertStore, pem: &[u8]) -> Result<(), String> {
    for c in CertificateDer::pem_slice_iter(pem) {
        let c = c.map_err(|e| format!("cannot read CA certificates: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("unusable CA certificate: {e}"))?;
    }
    Ok(())
}

fn client_trusting(roots: rustls::RootCertStore) -> Result<Arc<ClientConfig>, String> {
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A client configuration trusting the system's CA certificates and those in `extra_pem`
/// (for https targets). System certificates that do not load are skipped, and said so.
pub fn client_with_system_roots(extra_pem: Option<&[u8]>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        log::warn!("system CA certificates: {e}");
    }
    let (_, skipped) = roots.add_parsable_certificates(native.certs);
    if skipped > 0 {
        log::warn!("system CA certificates: {skipped} could not be used");
    }
    if let Some(pem) = extra_pem {
        add_pem_roots(&mut roots, pem)?;
    }
    client_trusting(roots)
}

/// A client configuration that accepts any server certificate: for load generation against
/// a test server only, never for upstream links.
pub fn client_insecure() -> Arc<ClientConfig> {
    let p = provider();
    let verifier = Arc::new(AcceptAny(p.clone()));
    let cfg = ClientConfig::builder_with_provider(p)
        .with_protocol_versions(VERSIONS)
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        });
    Arc::new(cfg.unwrap_or_else(|_| unreachable!("TLS 1.2 and 1.3 are supported by ring")))
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
