//! `[admin]` of `ysmpp.conf`: who may use the admin endpoint's configuration API and
//! `/reload`, and where changes are audited.
//!
//! ```text
//! [admin]
//! token=6f1c...          ; Authorization: Bearer TOKEN
//! user=ops               ; or HTTP basic auth with user and password
//! password=secret
//! audit=audit.log        ; one line per configuration change (relative to the directory)
//! sslcontext=server      ; a section of openssl.conf: the endpoint speaks HTTPS
//! ```
//!
//! Without credentials the endpoint serves everyone who reaches it, so `[general] admin` may
//! then listen on loopback only. With credentials, `/config`, `/reload` and `/status` need
//! them; `/metrics` and `/health` stay open for scrapers and load balancers.

use core::net::SocketAddr; // value types: no IO

use super::keys::{Keys, Problems};

/// `[admin]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminConfig {
    pub token: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The audit file, relative to the configuration directory unless absolute.
    pub audit: Option<String>,
    /// The TLS context (openssl.conf) the endpoint serves HTTPS with.
    pub sslcontext: Option<String>,
    /// The section's line (for errors about it).
    pub line: usize,
}

impl AdminConfig {
    /// Whether requests must carry a credential.
    pub fn has_credentials(&self) -> bool {
        self.token.is_some() || self.user.is_some()
    }
}

/// What a reload must refuse about `[admin]`: the endpoint stays on the address it was
/// started on (`bound`) until a restart, and while that is beyond loopback its credentials
/// cannot go, whatever the files now say about the address.
pub fn reload_problem(bound: Option<SocketAddr>, next: &AdminConfig) -> Option<String> {
    let bound = bound.filter(|a| !a.ip().is_loopback())?;
    (!next.has_credentials()).then(|| {
        format!(
            "ysmpp.conf: [admin]: the admin endpoint listens on {bound}, beyond loopback, until a restart: it keeps asking for credentials (set token= or user= and password=)"
        )
    })
}

pub(super) fn parse(k: &mut Keys<'_>, p: &mut Problems, a: &mut AdminConfig) {
    let text = |v: &str| -> Result<String, String> {
        let v = v.trim();
        if v.is_empty() {
            Err("is empty".into())
        } else {
            Ok(v.to_string())
        }
    };
    if let Some(t) = k.get(p, "token", |v| {
        text(v).and_then(|t| {
            if t.len() < 16 {
                Err("must be at least 16 characters".into())
            } else {
                Ok(t)
            }
        })
    }) {
        a.token = Some(t);
    }
    if let Some(u) = k.get(p, "user", text) {
        a.user = Some(u);
    }
    if let Some(pw) = k.get(p, "password", text) {
        a.password = Some(pw);
    }
    if let Some(f) = k.get(p, "audit", text) {
        a.audit = Some(f);
    }
    if let Some(c) = k.get(p, "sslcontext", text) {
        a.sslcontext = Some(c);
        a.line = k.line_of("sslcontext");
    }
    if a.user.is_some() != a.password.is_some() {
        p.error(
            super::ysmpp::FILE,
            k.line_of(if a.user.is_some() { "user" } else { "password" }),
            if a.user.is_some() { "user" } else { "password" },
            "user and password go together",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_cannot_go_while_the_endpoint_listens_beyond_loopback() {
        let none = AdminConfig::default();
        let token = AdminConfig {
            token: Some("0123456789abcdef".into()),
            ..AdminConfig::default()
        };
        let open: SocketAddr = "0.0.0.0:9775".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:9775".parse().unwrap();
        assert!(reload_problem(Some(open), &none).is_some());
        assert!(reload_problem(Some(open), &token).is_none());
        assert!(reload_problem(Some(lo), &none).is_none());
        assert!(reload_problem(None, &none).is_none());
    }
}
