//! The typed configuration: [`Config`], what [`Config::parse`] makes of the files, and the
//! checks that need more than one file.
//!
//! Four files make up the server's configuration, as in YateSMSC, each read by its own
//! module:
//! - `ysmpp.conf` (`ysmpp`): `[general]` (shards, timers, limits), `[smpp-server]`, one
//!   `[listenerserver NAME]` per listening socket, and the `[smpp-client]` links;
//! - `regfile.conf` (`regfile`): one `[SYSTEM_ID]` section per ESME account, with its password
//!   and limits;
//! - `openssl.conf` (`openssl`): one `[CONTEXT]` section per TLS certificate, named by
//!   listeners' `sslcontext`;
//! - `yatesmsc.conf` (`yatesmsc`, optional): `[general]` failover to a backup gateway,
//!   retries, validity.
//!
//! They are read in that order, because each may name what an earlier one defines: a
//! listener's `sslcontext` (checked here), an account's default window, the backup gateway.
//!
//! [`Config::parse`] collects every error and warning of all files in one pass, so an
//! operator fixes them all at once.

use std::fmt;
use std::time::Duration;

use super::ini::Ini;
use super::keys::Problems;
use super::{openssl, regfile, value, yatesmsc, ysmpp};

pub use super::openssl::TlsContext;
pub use super::regfile::{Account, ReceiptPolicy};
pub use super::yatesmsc::{Backup, Yatesmsc};
pub use super::ysmpp::{
    ClientLink, General, LinkBind, Listener, LogIo, MsgIdFormat, Server, Shards, SyncMode,
};

/// A problem in a file: `file:line: key: message`. Warnings use the same shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}

pub type Warning = ConfigError;

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (0, true) => write!(f, "{}: {}", self.file, self.message),
            (0, false) => write!(f, "{}: {}: {}", self.file, self.key, self.message),
            (l, true) => write!(f, "{}:{}: {}", self.file, l, self.message),
            (l, false) => write!(f, "{}:{}: {}: {}", self.file, l, self.key, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The texts of the configuration files. A file that is `None` was not found.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConfigFiles<'a> {
    pub ysmpp: Option<&'a str>,
    pub regfile: Option<&'a str>,
    pub openssl: Option<&'a str>,
    pub yatesmsc: Option<&'a str>,
}

/// The whole server configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub general: General,
    pub server: Server,
    pub listeners: Vec<Listener>,
    pub accounts: Vec<Account>,
    pub tls: Vec<TlsContext>,
    /// `[smpp-client]` links, in `clients=` order.
    pub clients: Vec<ClientLink>,
    /// `[general]` of yatesmsc.conf: failover, retries, validity.
    pub yatesmsc: Yatesmsc,
    /// `[cdr]` of ysmpp.conf.
    pub cdr: super::CdrConfig,
    /// `[http]` of ysmpp.conf: the submit API, when enabled.
    pub http: Option<super::HttpApi>,
    /// `[http-target]` of ysmpp.conf: how `http` and URL targets are called.
    pub http_target: super::HttpTargetConfig,
    /// `[admin]` of ysmpp.conf: the admin endpoint's credentials and audit file.
    pub admin: super::AdminConfig,
    /// `[cluster]` of ysmpp.conf: several nodes as one gateway over NATS (none: alone).
    pub cluster: Option<super::ClusterConfig>,
    pub warnings: Vec<Warning>,
}

impl Config {
    /// Parses and validates the files. Every error of every file is returned at once.
    pub fn parse(files: &ConfigFiles<'_>) -> Result<Config, Vec<ConfigError>> {
        let mut p = Problems::default();
        let Some(ysmpp) = files.ysmpp else {
            p.error(
                ysmpp::FILE,
                0,
                "",
                "file not found; it is required (listeners and [general])",
            );
            return Err(p.errors);
        };
        if files.regfile.is_none() {
            p.warn(regfile::FILE, 0, "", "file not found: no ESME can bind");
        }
        let ysmpp::Ysmpp {
            general,
            server,
            listeners,
            clients,
            cdr,
            http,
            http_target,
            admin,
            cluster,
        } = ysmpp::parse(&Ini::parse(ysmpp), &mut p);
        let tls = openssl::parse(&Ini::parse(files.openssl.unwrap_or("")), &mut p);
        let http_ctx = http
            .as_ref()
            .and_then(|h| Some((h.sslcontext.as_ref()?, h.line)));
        let contexts = listeners
            .iter()
            .filter_map(|l| Some((l.sslcontext.as_ref()?, l.line)))
            .chain(http_ctx)
            .chain(admin.sslcontext.as_ref().map(|c| (c, admin.line)));
        for (ctx, line) in contexts {
            {
                if !tls.iter().any(|t| &t.name == ctx) {
                    let known: Vec<&str> = tls.iter().map(|t| t.name.as_str()).collect();
                    p.error(
                        ysmpp::FILE,
                        line,
                        "sslcontext",
                        format!(
                            "{ctx:?} is not a section of openssl.conf (known: {})",
                            list_or_none(&known)
                        ),
                    );
                }
            }
        }
        let accounts = regfile::parse(&Ini::parse(files.regfile.unwrap_or("")), &mut p, &general);
        let yatesmsc = yatesmsc::parse(files.yatesmsc, &mut p, &clients, &accounts);

        if p.errors.is_empty() {
            Ok(Config {
                general,
                server,
                listeners,
                accounts,
                tls,
                clients,
                yatesmsc,
                cdr,
                http,
                http_target,
                admin,
                cluster,
                warnings: p.warnings,
            })
        } else {
            Err(p.errors)
        }
    }

    pub fn account(&self, system_id: &[u8]) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|a| a.system_id.as_bytes() == system_id)
    }

    pub fn tls_context(&self, name: &str) -> Option<&TlsContext> {
        self.tls.iter().find(|t| t.name == name)
    }

    /// The data shards to run on a machine with `cores` cores.
    pub fn shard_count(&self, cores: usize) -> usize {
        match self.general.shards {
            Shards::Auto => cores.max(1),
            Shards::Count(n) => n,
        }
    }

    /// What `smppgw check` prints.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let g = &self.general;
        let mut s = String::new();
        let shards = match g.shards {
            Shards::Auto => "auto (one per core)".to_string(),
            Shards::Count(n) => n.to_string(),
        };
        let _ = writeln!(
            s,
            "general: shards {shards}, max PDU {} octets, window {}, max connections {}",
            g.max_pdu_size, g.window, g.max_connections
        );
        let _ = writeln!(
            s,
            "delivery to ESMEs: {} attempts, {:?} apart",
            g.delivery_attempts, g.delivery_retry
        );
        let timer = |d: Option<Duration>| d.map_or("off".to_string(), |d| format!("{d:?}"));
        let _ = writeln!(
            s,
            "timers: session-init {:?}, enquire_link every {} (answer within {:?}), response {:?}, inactivity {}",
            g.session_init_timeout,
            timer(g.enquire_link_interval),
            g.enquire_link_timeout,
            g.response_timeout,
            timer(g.inactivity_timeout)
        );
        let _ = match g.sync {
            SyncMode::Batch => writeln!(
                s,
                "store: spool {}, sync batch ({}), segments of {}",
                g.spool_dir,
                if g.sync_window.is_zero() {
                    "each commit as soon as the previous fdatasync ends".to_string()
                } else {
                    format!("records gathered for {}", value::duration_text(g.sync_window))
                },
                value::size_text(g.segment_size)
            ),
            SyncMode::None => writeln!(
                s,
                "store: spool {}, sync none (NO fdatasync: acknowledged messages can be lost in a crash), segments of {}",
                g.spool_dir,
                value::size_text(g.segment_size)
            ),
        };
        let _ = writeln!(
            s,
            "queues per shard: {} message bodies in memory, {} messages waiting per target (then ESME_RMSGQFUL)",
            g.memory_messages, g.queue_limit
        );
        let _ = writeln!(
            s,
            "smpp-server: {}",
            if self.server.enable {
                "enabled"
            } else {
                "disabled"
            }
        );
        for l in &self.listeners {
            let _ = writeln!(
                s,
                "  listener {:?}: {} {}{}",
                l.name,
                l.socket_addr(),
                l.sslcontext
                    .as_ref()
                    .map_or("plain".to_string(), |c| format!("TLS ({c})")),
                if l.enable { "" } else { " (disabled)" }
            );
        }
        let _ = writeln!(s, "accounts: {}", self.accounts.len());
        for a in &self.accounts {
            let limit = |n: u32| {
                if n == 0 {
                    "unlimited".to_string()
                } else {
                    n.to_string()
                }
            };
            let _ = writeln!(
                s,
                "  {}: max binds {}, window {}, rate {}, from {}, coding {}, receipts {}",
                a.system_id,
                limit(a.max_binds),
                a.window,
                if a.rate > 0.0 {
                    format!("{}/s", a.rate)
                } else {
                    "unlimited".into()
                },
                if a.allowed_ips.is_empty() {
                    "anywhere".to_string()
                } else {
                    a.allowed_ips
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                a.coding.name(),
                a.receipts.name()
            );
        }
        if let Some(r) = &g.default_route {
            let _ = writeln!(s, "default route (no route file): smppclient/{r}");
        }
        for c in &self.clients {
            let _ = writeln!(
                s,
                "client {:?}: {}:{} {} as {:?}, {} x {} binds, window {}, rate {}, msgid {:?}/{:?}{}",
                c.name,
                c.server,
                c.port,
                if c.tls { if c.verify { "TLS (verified)" } else { "TLS (NOT verified)" } } else { "plain" },
                c.system_id,
                c.bind.name(),
                c.binds,
                c.window,
                if c.rate > 0.0 { format!("{}/s", c.rate) } else { "unlimited".into() },
                c.msgid.resp,
                c.msgid.receipt,
                if c.enabled { "" } else { " (disabled)" }
            );
        }
        let y = &self.yatesmsc;
        let _ = match &y.backup {
            None => writeln!(s, "backup gateway: none"),
            Some(b) => writeln!(
                s,
                "backup gateway: {b}, {}{}",
                if y.smppgw_trusted {
                    "trusted (its permanent errors are final)"
                } else {
                    "not trusted (its permanent errors are retried)"
                },
                y.smppgw_address
                    .as_ref()
                    .map_or(String::new(), |a| format!(", CDR address {a}"))
            ),
        };
        let _ = writeln!(
            s,
            "retries: {} after temporary failures (unless the route sets retries), {} doubling up to {}",
            y.retries,
            value::duration_text(y.retry_interval_min),
            value::duration_text(y.retry_interval_max)
        );
        let _ = writeln!(
            s,
            "validity: {} when the ESME gives none, at most {}",
            value::duration_text(y.validity),
            value::duration_text(y.max_validity)
        );
        for t in &self.tls {
            let _ = writeln!(
                s,
                "tls context {:?}: {} (domains: {})",
                t.name,
                t.certificate,
                list_or_none(&t.domains.iter().map(String::as_str).collect::<Vec<_>>())
            );
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
