//! `[cluster]` of `ysmpp.conf`: several nodes as one gateway, over NATS.
//!
//! ```text
//! [cluster]
//! nats=nats://127.0.0.1:4222, nats://10.0.0.2:4222   ; one or more servers
//! node=gw1              ; unique in the cluster
//! name=smsc             ; the cluster (subjects are smppgw.NAME.…)
//! credentials=/etc/smppgw/node.creds   ; optional: a NATS credentials file
//! ca_file=/etc/smppgw/nats-ca.pem      ; optional: for tls:// servers
//! handoff_timeout=2s    ; how long a hand-off waits for the other node's commit
//! lease=10s             ; how long a node owns an upstream link's binds without renewing
//! ```
//!
//! Without the section a node runs alone and never touches NATS.

use std::time::Duration;

use super::keys::{Keys, Problems};
use super::value;

/// `[cluster]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// NATS server URLs (`nats://`, `tls://`; `user:password@` as NATS allows).
    pub nats: Vec<String>,
    pub node: String,
    pub name: String,
    pub credentials: Option<String>,
    pub ca_file: Option<String>,
    pub handoff_timeout: Duration,
    /// How long a lease on a link's binds lasts unrenewed (renewed every third of it).
    pub lease: Duration,
    /// The section's line (for errors about it).
    pub line: usize,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            nats: Vec::new(),
            node: String::new(),
            name: String::new(),
            credentials: None,
            ca_file: None,
            handoff_timeout: Duration::from_secs(2),
            lease: Duration::from_secs(10),
            line: 0,
        }
    }
}

/// A name that goes into a NATS subject as one token: letters, digits, `-` and `_`.
fn token(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err("is empty".into());
    }
    if v.len() > 64 {
        return Err("is longer than 64 characters".into());
    }
    match v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        Some(c) => Err(format!(
            "{v:?} has {c:?}: use letters, digits, '-' and '_' (it is a token of NATS subjects)"
        )),
        None => Ok(v.to_string()),
    }
}

fn url(v: &str) -> Result<String, String> {
    let (scheme, rest) = v
        .split_once("://")
        .ok_or_else(|| format!("{v:?} is not a URL (write nats://HOST:PORT)"))?;
    if !matches!(scheme, "nats" | "tls") {
        return Err(format!("{v:?}: the scheme is nats:// or tls://"));
    }
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{v:?} names no host"));
    }
    Ok(v.to_string())
}

pub(super) fn parse(k: &mut Keys<'_>, p: &mut Problems, line: usize) -> Option<ClusterConfig> {
    let mut c = ClusterConfig {
        line,
        ..ClusterConfig::default()
    };
    let file = super::ysmpp::FILE;
    if let Some(urls) = k.get(p, "nats", |v| {
        let list = value::list(v);
        if list.is_empty() {
            return Err("names no server".into());
        }
        list.iter().map(|u| url(u)).collect::<Result<Vec<_>, _>>()
    }) {
        c.nats = urls;
    }
    if let Some(n) = k.get(p, "node", token) {
        c.node = n;
    }
    if let Some(n) = k.get(p, "name", token) {
        c.name = n;
    }
    let text = |v: &str| -> Result<String, String> {
        let v = v.trim();
        (!v.is_empty())
            .then(|| v.to_string())
            .ok_or("is empty".into())
    };
    c.credentials = k.get(p, "credentials", text);
    c.ca_file = k.get(p, "ca_file", text);
    let within = |min: Duration, max: Duration| {
        move |v: &str| {
            value::duration(v).and_then(|d| {
                if d < min || d > max {
                    Err(format!(
                        "must be from {} to {}",
                        value::duration_text(min),
                        value::duration_text(max)
                    ))
                } else {
                    Ok(d)
                }
            })
        }
    };
    let timeout = within(Duration::from_millis(100), Duration::from_secs(60));
    if let Some(t) = k.get(p, "handoff_timeout", timeout) {
        c.handoff_timeout = t;
    }
    if let Some(t) = k.get(
        p,
        "lease",
        within(Duration::from_secs(2), Duration::from_secs(300)),
    ) {
        c.lease = t;
    }
    let mut ok = true;
    for (key, missing) in [
        ("nats", c.nats.is_empty()),
        ("node", c.node.is_empty()),
        ("name", c.name.is_empty()),
    ] {
        if missing && !k.has(key) {
            p.error(
                file,
                line,
                key,
                format!("[cluster] needs {key}= (nats=URL, node=NAME, name=CLUSTER)"),
            );
        }
        ok &= !missing;
    }
    ok.then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigFiles};

    fn parse(section: &str) -> Result<Option<ClusterConfig>, String> {
        let ysmpp = format!("[general]\n{section}");
        Config::parse(&ConfigFiles {
            ysmpp: Some(&ysmpp),
            regfile: Some(""),
            ..ConfigFiles::default()
        })
        .map(|c| c.cluster)
        .map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn a_cluster_needs_servers_a_node_and_a_name() {
        let c = parse("[cluster]\nnats=nats://127.0.0.1:4222, tls://10.0.0.2:4222\nnode=gw-1\nname=smsc\nhandoff_timeout=500ms\nlease=3s\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.nats.len(), 2);
        assert_eq!((c.node.as_str(), c.name.as_str()), ("gw-1", "smsc"));
        assert_eq!(c.handoff_timeout, Duration::from_millis(500));
        assert_eq!(c.lease, Duration::from_secs(3));
        let e = parse("[cluster]\nnats=nats://h:1\nnode=a\nname=c\nlease=1s\n").unwrap_err();
        assert!(e.contains("must be from 2s to 5m"), "{e}");
        assert_eq!(parse("").unwrap(), None);
        let e = parse("[cluster]\nnats=nats://127.0.0.1:4222\n").unwrap_err();
        assert!(e.contains("node") && e.contains("name"), "{e}");
        let e = parse("[cluster]\nnats=127.0.0.1:4222\nnode=a\nname=b\n").unwrap_err();
        assert!(e.contains("not a URL"), "{e}");
        let e = parse("[cluster]\nnats=nats://h:1\nnode=a.b\nname=c\n").unwrap_err();
        assert!(e.contains("token of NATS subjects"), "{e}");
    }
}
