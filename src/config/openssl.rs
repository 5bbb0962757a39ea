//! `openssl.conf`: one `[CONTEXT]` section per TLS certificate, named by listeners'
//! `sslcontext`. Only values here: the runtime loads the PEM files (relative to the
//! configuration directory) when it starts.
//!
//! YateSMSC's own openssl.conf has a `[general]` section that names no certificate; its keys
//! warn and are ignored.

use super::ini::Ini;
use super::keys::{Keys, Problems};
use super::value;

pub(super) const FILE: &str = "openssl.conf";

/// One `[CONTEXT]` of openssl.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsContext {
    pub name: String,
    /// PEM file with the certificate chain and the private key, relative to the config
    /// directory unless absolute.
    pub certificate: String,
    /// PEM file with the key when it is not in `certificate`.
    pub key: Option<String>,
    pub domains: Vec<String>,
    pub line: usize,
}

pub(super) fn parse(openssl: &Ini, p: &mut Problems) -> Vec<TlsContext> {
    let mut tls: Vec<TlsContext> = Vec::new();
    for s in &openssl.sections {
        if s.name.is_empty() || s.name == "general" {
            // YateSMSC's openssl.conf has a [general] section; it names no certificate.
            p.warn_entries(FILE, s, "not in a TLS context section, ignored");
            continue;
        }
        let mut k = Keys::new(FILE, s);
        let certificate = k.get(p, "certificate", |v| {
            (!v.trim().is_empty())
                .then(|| v.trim().to_string())
                .ok_or_else(|| "is empty".to_string())
        });
        let key = k.get(p, "key", |v| Ok(v.trim().to_string()));
        let domains = k
            .get(p, "domains", |v| Ok(value::list(v)))
            .unwrap_or_default();
        k.finish(p);
        match certificate {
            Some(certificate) => tls.push(TlsContext {
                name: s.name.clone(),
                certificate,
                key,
                domains,
                line: s.line,
            }),
            None if s.get("certificate").is_none() => p.error(
                FILE,
                s.line,
                "certificate",
                format!("[{}] needs certificate=FILE.pem", s.name),
            ),
            None => {}
        }
    }
    tls
}
