//! `[http]` of `ysmpp.conf`: the HTTP submit API (off unless enabled).
//!
//! ```text
//! [http]
//! enable=yes
//! addr=127.0.0.1        ; default 127.0.0.1: say 0.0.0.0 to serve other hosts
//! port=13013            ; default 13013 (Kannel's sendsms port)
//! sslcontext=server     ; a section of openssl.conf: HTTPS
//! max_body=64K          ; default 64K: larger bodies get 413
//! request_timeout=10s   ; a request must arrive whole this long after its first byte
//! ```

use core::net::{IpAddr, SocketAddr}; // value types: no IO

use super::keys::{Keys, Problems};
use super::value;

/// The HTTP API's listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpApi {
    pub addr: IpAddr,
    pub port: u16,
    pub sslcontext: Option<String>,
    pub max_body: usize,
    pub request_timeout: std::time::Duration,
    /// The section's line (for errors about it).
    pub line: usize,
}

impl HttpApi {
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
}

/// Parses `[http]`; `None` unless `enable=yes`.
pub(super) fn parse(k: &mut Keys<'_>, p: &mut Problems, line: usize) -> Option<HttpApi> {
    let enable = k.get(p, "enable", value::boolean).unwrap_or(false);
    let addr = k
        .get(p, "addr", |v| {
            v.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{v:?} is not an IP address"))
        })
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let port = k
        .get(p, "port", |v| match v.trim().parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{v:?} is not a port number (1-65535)")),
        })
        .unwrap_or(13013);
    let sslcontext = k
        .get(p, "sslcontext", |v| Ok(v.trim().to_string()))
        .filter(|c| !c.is_empty());
    let max_body = k
        .get(p, "max_body", |v| {
            value::size(v)
                .map_err(|e| e.to_string())
                .and_then(|n| match n {
                    1024..=16_777_216 => Ok(n as usize),
                    _ => Err(format!("{v:?} must be from 1K to 16M")),
                })
        })
        .unwrap_or(64 * 1024);
    let request_timeout = k
        .get(p, "request_timeout", |v| {
            value::duration(v).map_err(|e| e.to_string()).and_then(|d| {
                if d >= std::time::Duration::from_millis(100) {
                    Ok(d)
                } else {
                    Err(format!("{v:?} is under 100ms"))
                }
            })
        })
        .unwrap_or(std::time::Duration::from_secs(10));
    enable.then_some(HttpApi {
        addr,
        port,
        sslcontext,
        max_body,
        request_timeout,
        line,
    })
}

/// `[http-target]` of ysmpp.conf: how messages routed to `http` or to a URL are sent.
///
/// ```text
/// [http-target]
/// url=http://127.0.0.1:8080/sms   ; where the `http` target POSTs (a URL route gives its own)
/// timeout=10s                     ; a request must be answered within this (else temporary)
/// connections=16                  ; requests in flight per host and shard at most
/// ca_file=ca.pem                  ; extra CA certificates for https (beside the system's)
/// verify=yes                      ; no: https certificates are not checked (tests only)
/// proxy=http://10.0.0.9:3128      ; http:// targets go through this forward proxy
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTargetConfig {
    pub url: Option<String>,
    pub timeout: std::time::Duration,
    pub connections: usize,
    pub ca_file: Option<String>,
    pub verify: bool,
    /// A forward proxy for `http://` targets (`https://` ones connect directly).
    pub proxy: Option<(String, u16)>,
}

impl Default for HttpTargetConfig {
    fn default() -> Self {
        HttpTargetConfig {
            url: None,
            timeout: std::time::Duration::from_secs(10),
            connections: 16,
            ca_file: None,
            verify: true,
            proxy: None,
        }
    }
}

pub(super) fn parse_target(k: &mut Keys<'_>, p: &mut Problems, t: &mut HttpTargetConfig) {
    if let Some(u) = k.get(p, "url", |v| {
        let v = v.trim();
        if v.starts_with("http://") || v.starts_with("https://") {
            crate::http::target::Url::parse(v)
                .map(|_| v.to_string())
                .map_err(|e| format!("{v:?}: {e}"))
        } else {
            Err(format!("{v:?} is not an http:// or https:// URL"))
        }
    }) {
        t.url = Some(u);
    }
    if let Some(d) = k.get(p, "timeout", |v| {
        value::duration(v).map_err(|e| e.to_string()).and_then(|d| {
            if d.is_zero() {
                Err(format!("{v:?}: a request needs some time to be answered"))
            } else {
                Ok(d)
            }
        })
    }) {
        t.timeout = d;
    }
    if let Some(n) = k.get(p, "connections", |v| match v.trim().parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!("{v:?} is not a number from 1 to 1024")),
    }) {
        t.connections = n;
    }
    if let Some(f) = k.get(p, "ca_file", |v| Ok(v.trim().to_string())) {
        t.ca_file = (!f.is_empty()).then_some(f);
    }
    if let Some(b) = k.get(p, "verify", value::boolean) {
        t.verify = b;
    }
    if let Some(px) = k.get(p, "proxy", |v| {
        let v = v.trim();
        match crate::http::target::Url::parse(v) {
            Ok(u) if !u.tls && u.path == "/" => Ok((u.host, u.port)),
            Ok(_) => Err(format!("{v:?}: a proxy is http://HOST:PORT")),
            Err(e) => Err(format!("{v:?}: {e}")),
        }
    }) {
        t.proxy = Some(px);
    }
}
