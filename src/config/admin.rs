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
