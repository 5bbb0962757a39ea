//! The typed configuration and its validation.
//!
//! Three files make up the server's configuration, as in YateSMSC:
//! - `ysmpp.conf`: `[general]` (shards, timers, limits), `[smpp-server]`, and one
//!   `[listenerserver NAME]` per listening socket;
//! - `regfile.conf`: one `[SYSTEM_ID]` section per ESME account, with its password and limits;
//! - `openssl.conf`: one `[CONTEXT]` section per TLS certificate, named by listeners'
//!   `sslcontext`.
//!
//! [`Config::parse`] collects every error and warning of all three files in one pass, so an
//! operator fixes them all at once.

use core::net::{IpAddr, SocketAddr}; // value types: no IO
use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use super::ini::{Entry, Ini, Section};
use super::value::{self, IpNet};
use crate::smpp::receipt::IdRadix;
use crate::text::Charset;

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
}

/// How many data shards to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shards {
    /// One per available core.
    Auto,
    Count(usize),
}

/// `[general]` of ysmpp.conf.
#[derive(Clone, Debug, PartialEq)]
pub struct General {
    pub shards: Shards,
    pub spool_dir: String,
    pub max_pdu_size: u32,
    pub session_init_timeout: Duration,
    pub enquire_link_interval: Option<Duration>,
    pub enquire_link_timeout: Duration,
    pub response_timeout: Duration,
    pub inactivity_timeout: Option<Duration>,
    /// Requests we send on one session (deliver_sm) without a response.
    pub window: usize,
    /// Tries to deliver one deliver_sm to an ESME (temporary errors, no answer) before the
    /// gateway gives up on it.
    pub delivery_attempts: u8,
    /// Pause between those tries.
    pub delivery_retry: Duration,
    /// How long a shard with nothing to do keeps polling before it sleeps (off: it sleeps at
    /// once). Spinning trades CPU for the latency of waking up.
    pub spin_before_park: Option<Duration>,
    /// Connections accepted at most, over all listeners and shards.
    pub max_connections: usize,
    pub admin: Option<SocketAddr>,
    /// Where messages go while there is no route file: a client link's name (`smppclient/ID`
    /// or `ID`). `None`: the gateway answers messages itself (terminating mode).
    pub default_route: Option<String>,
}

impl Default for General {
    fn default() -> Self {
        General {
            shards: Shards::Auto,
            spool_dir: "spool".into(),
            max_pdu_size: crate::smpp::DEFAULT_MAX_PDU_SIZE,
            session_init_timeout: Duration::from_secs(10),
            enquire_link_interval: Some(Duration::from_secs(30)),
            enquire_link_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            inactivity_timeout: None,
            window: 64,
            delivery_attempts: 10,
            delivery_retry: Duration::from_secs(1),
            spin_before_park: None,
            max_connections: 20_000,
            admin: None,
            default_route: None,
        }
    }
}

/// `[smpp-server]` of ysmpp.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub enable: bool,
    pub default_service_type: String,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            enable: true,
            default_service_type: String::new(),
        }
    }
}

/// `[listenerserver NAME]` of ysmpp.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub enable: bool,
    pub addr: IpAddr,
    pub port: u16,
    /// A section of openssl.conf; TLS when set.
    pub sslcontext: Option<String>,
    pub line: usize,
}

impl Listener {
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
}

/// One `[SYSTEM_ID]` of regfile.conf.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub system_id: String,
    pub password: String,
    /// Sessions bound at once at most (0: no limit).
    pub max_binds: u32,
    /// Requests from the ESME unanswered at once at most.
    pub window: usize,
    /// Messages per second (token bucket; 0: no limit).
    pub rate: f64,
    /// Where binds may come from (empty: anywhere).
    pub allowed_ips: Vec<IpNet>,
    pub line: usize,
}

impl Account {
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|n| n.contains(ip))
    }
}

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

/// How a client link binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkBind {
    Transmitter,
    Receiver,
    Transceiver,
    /// One transmitter and one receiver per bind slot.
    Pair,
}

impl LinkBind {
    pub const fn name(self) -> &'static str {
        match self {
            LinkBind::Transmitter => "transmitter",
            LinkBind::Receiver => "receiver",
            LinkBind::Transceiver => "transceiver",
            LinkBind::Pair => "transmitter+receiver",
        }
    }

    pub const fn transmits(self) -> bool {
        !matches!(self, LinkBind::Receiver)
    }

    pub const fn receives(self) -> bool {
        !matches!(self, LinkBind::Transmitter)
    }
}

/// How an upstream writes its message ids: in submit_sm_resp, and in receipts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgIdFormat {
    pub resp: IdRadix,
    pub receipt: IdRadix,
}

/// One upstream link: a section named in `[smpp-client] clients=`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientLink {
    pub name: String,
    pub enabled: bool,
    pub server: String,
    pub port: u16,
    pub system_id: String,
    pub system_password: String,
    /// `sslmode`: TLS from the first byte.
    pub tls: bool,
    pub bind: LinkBind,
    /// Bind slots, spread over the shards.
    pub binds: usize,
    pub window: usize,
    /// Segments per second (token bucket; 0: no limit).
    pub rate: f64,
    pub system_type: String,
    pub interface_version: u8,
    pub address_range: String,
    pub enquire_link: Option<Duration>,
    pub response_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// What the link speaks for data_coding 0.
    pub coding: Charset,
    pub msgid: MsgIdFormat,
    /// PEM file of CA certificates to trust (relative to the config directory); the system's
    /// roots are not used, so `verify=yes` needs it.
    pub ca_file: Option<String>,
    pub verify: bool,
    /// Server name for TLS (SNI and certificate check); default: `server`.
    pub sni: Option<String>,
    pub line: usize,
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
    pub warnings: Vec<Warning>,
}

const YSMPP: &str = "ysmpp.conf";
const REGFILE: &str = "regfile.conf";
const OPENSSL: &str = "openssl.conf";

/// Reads one section's keys, recording errors and unknown keys.
struct Keys<'a> {
    file: &'static str,
    section: &'a Section,
    used: HashSet<&'a str>,
}

struct Problems {
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

impl Problems {
    fn error(&mut self, file: &str, line: usize, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: file.into(),
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, file: &str, line: usize, key: &str, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            file: file.into(),
            line,
            key: key.into(),
            message: message.into(),
        });
    }
}

impl<'a> Keys<'a> {
    fn new(file: &'static str, section: &'a Section) -> Keys<'a> {
        Keys {
            file,
            section,
            used: HashSet::new(),
        }
    }

    fn entry(&mut self, key: &'a str) -> Option<&'a Entry> {
        self.used.insert(key);
        self.section.get(key)
    }

    /// The value of `key` parsed by `parse`; on a bad value records the error and returns
    /// `None`.
    fn get<T>(
        &mut self,
        p: &mut Problems,
        key: &'a str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let e = self.entry(key)?;
        let Some(v) = e.value.as_deref() else {
            p.error(self.file, e.line, key, "has no value (write key=value)");
            return None;
        };
        match parse(v) {
            Ok(t) => Some(t),
            Err(msg) => {
                p.error(self.file, e.line, key, msg);
                None
            }
        }
    }

    fn line_of(&self, key: &str) -> usize {
        self.section.get(key).map_or(self.section.line, |e| e.line)
    }

    /// Warns about every key of the section that no `get` asked for.
    fn finish(self, p: &mut Problems) {
        for e in &self.section.entries {
            if !self.used.contains(e.key.as_str()) {
                p.warn(
                    self.file,
                    e.line,
                    &e.key,
                    format!("unknown key in [{}], ignored", self.section.name),
                );
            }
        }
    }
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    what: &'static str,
) -> impl Fn(&str) -> Result<T, String> {
    move |v| {
        let n: T = value::number(v, what)?;
        if n > T::default() {
            Ok(n)
        } else {
            Err(format!("{v:?} must be greater than 0"))
        }
    }
}

fn optional_timer(v: &str) -> Result<Option<Duration>, String> {
    value::duration(v).map(|d| (!d.is_zero()).then_some(d))
}

fn nonzero_duration(v: &str) -> Result<Duration, String> {
    match value::duration(v)? {
        d if d.is_zero() => Err(format!("{v:?} must be more than 0")),
        d => Ok(d),
    }
}

impl Config {
    /// Parses and validates the three files. Every error of every file is returned at once.
    pub fn parse(files: &ConfigFiles<'_>) -> Result<Config, Vec<ConfigError>> {
        let mut p = Problems {
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let Some(ysmpp) = files.ysmpp else {
            p.error(
                YSMPP,
                0,
                "",
                "file not found; it is required (listeners and [general])",
            );
            return Err(p.errors);
        };
        let ysmpp = Ini::parse(ysmpp);
        let regfile = Ini::parse(files.regfile.unwrap_or(""));
        let openssl = Ini::parse(files.openssl.unwrap_or(""));
        if files.regfile.is_none() {
            p.warn(REGFILE, 0, "", "file not found: no ESME can bind");
        }

        let mut general = General::default();
        let mut server = Server::default();
        let mut listeners: Vec<Listener> = Vec::new();
        // [smpp-client] names the client sections; read it first, wherever it stands.
        let mut client_names: Vec<(String, usize)> = Vec::new();
        for s in ysmpp.sections_named("smpp-client") {
            let mut k = Keys::new(YSMPP, s);
            if let Some(list) = k.get(&mut p, "clients", |v| Ok(value::list(v))) {
                let line = k.line_of("clients");
                client_names.extend(list.into_iter().map(|n| (n, line)));
            }
            k.finish(&mut p);
        }
        let mut clients: Vec<ClientLink> = Vec::new();
        for s in &ysmpp.sections {
            let mut k = Keys::new(YSMPP, s);
            match s.name.as_str() {
                "smpp-client" => continue,
                name if client_names.iter().any(|(n, _)| n == name) => {
                    if clients.iter().any(|c| c.name == name) {
                        p.error(
                            YSMPP,
                            s.line,
                            "",
                            format!("client section [{name}] is defined twice"),
                        );
                    } else if let Some(c) = parse_client(&mut k, &mut p, s) {
                        clients.push(c);
                    }
                }
                "general" => parse_general(&mut k, &mut p, &mut general),
                "smpp-server" => {
                    if let Some(b) = k.get(&mut p, "enable", value::boolean) {
                        server.enable = b;
                    }
                    if let Some(t) = k.get(&mut p, "default-service-type", |v| {
                        if v.len() < 6 {
                            Ok(v.to_string())
                        } else {
                            Err(format!("{v:?} is longer than service_type allows (5)"))
                        }
                    }) {
                        server.default_service_type = t;
                    }
                }
                name if name.starts_with("listenerserver") => {
                    if let Some(l) = parse_listener(&mut k, &mut p, s) {
                        if listeners.iter().any(|o| o.name == l.name) {
                            p.error(
                                YSMPP,
                                s.line,
                                "",
                                format!("listener {:?} is defined twice", l.name),
                            );
                        } else if let Some(o) = listeners
                            .iter()
                            .find(|o| o.enable && l.enable && o.socket_addr() == l.socket_addr())
                        {
                            p.error(
                                YSMPP,
                                l.line,
                                "port",
                                format!(
                                    "{} is already used by listener {:?}",
                                    l.socket_addr(),
                                    o.name
                                ),
                            );
                        } else {
                            listeners.push(l);
                        }
                    }
                }
                "" => {
                    for e in &s.entries {
                        p.warn(YSMPP, e.line, &e.key, "outside any [section], ignored");
                    }
                    continue;
                }
                other => {
                    let hint = if s.get("server").is_some() {
                        " (a client section? list it in [smpp-client] clients=)"
                    } else {
                        ""
                    };
                    p.warn(
                        YSMPP,
                        s.line,
                        "",
                        format!("section [{other}] is not used, ignored{hint}"),
                    );
                    continue;
                }
            }
            k.finish(&mut p);
        }

        for (name, line) in &client_names {
            if !clients.iter().any(|c| &c.name == name)
                && !ysmpp.sections.iter().any(|s| &s.name == name)
            {
                p.error(
                    YSMPP,
                    *line,
                    "clients",
                    format!("{name:?} has no [{name}] section"),
                );
            }
        }
        // Keep clients= order: it is the order an operator reads and the log reports.
        clients.sort_by_key(|c| client_names.iter().position(|(n, _)| *n == c.name));
        if let Some(r) = &general.default_route {
            if !clients.iter().any(|c| &c.name == r && c.enabled) {
                let line = ysmpp
                    .section("general")
                    .and_then(|s| s.get("default_route"))
                    .map_or(0, |e| e.line);
                p.error(
                    YSMPP,
                    line,
                    "default_route",
                    format!("{r:?} is not an enabled client in [smpp-client] clients="),
                );
            }
        }

        let mut tls: Vec<TlsContext> = Vec::new();
        for s in &openssl.sections {
            let mut k = Keys::new(OPENSSL, s);
            if s.name.is_empty() || s.name == "general" {
                // YateSMSC's openssl.conf has a [general] section; it names no certificate.
                for e in &s.entries {
                    p.warn(
                        OPENSSL,
                        e.line,
                        &e.key,
                        "not in a TLS context section, ignored",
                    );
                }
                continue;
            }
            let certificate = k.get(&mut p, "certificate", |v| {
                (!v.trim().is_empty())
                    .then(|| v.trim().to_string())
                    .ok_or_else(|| "is empty".to_string())
            });
            let key = k.get(&mut p, "key", |v| Ok(v.trim().to_string()));
            let domains = k
                .get(&mut p, "domains", |v| Ok(value::list(v)))
                .unwrap_or_default();
            k.finish(&mut p);
            match certificate {
                Some(certificate) => tls.push(TlsContext {
                    name: s.name.clone(),
                    certificate,
                    key,
                    domains,
                    line: s.line,
                }),
                None if s.get("certificate").is_none() => p.error(
                    OPENSSL,
                    s.line,
                    "certificate",
                    format!("[{}] needs certificate=FILE.pem", s.name),
                ),
                None => {}
            }
        }
        for l in &listeners {
            if let Some(ctx) = &l.sslcontext {
                if !tls.iter().any(|t| &t.name == ctx) {
                    let known: Vec<&str> = tls.iter().map(|t| t.name.as_str()).collect();
                    p.error(
                        YSMPP,
                        l.line,
                        "sslcontext",
                        format!(
                            "{ctx:?} is not a section of openssl.conf (known: {})",
                            list_or_none(&known)
                        ),
                    );
                }
            }
        }
        if server.enable && !listeners.iter().any(|l| l.enable) {
            p.warn(
                YSMPP,
                0,
                "",
                "the SMPP server is enabled but has no enabled [listenerserver NAME]",
            );
        }

        let mut accounts: Vec<Account> = Vec::new();
        for s in &regfile.sections {
            if s.name.is_empty() {
                for e in &s.entries {
                    p.warn(REGFILE, e.line, &e.key, "outside any [system_id], ignored");
                }
                continue;
            }
            let mut k = Keys::new(REGFILE, s);
            if let Some(a) = parse_account(&mut k, &mut p, s, &general) {
                if accounts.iter().any(|o| o.system_id == a.system_id) {
                    p.error(
                        REGFILE,
                        s.line,
                        "",
                        format!("account [{}] is defined twice", a.system_id),
                    );
                } else {
                    accounts.push(a);
                }
            }
            k.finish(&mut p);
        }

        if p.errors.is_empty() {
            Ok(Config {
                general,
                server,
                listeners,
                accounts,
                tls,
                clients,
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
                "  {}: max binds {}, window {}, rate {}, from {}",
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
                }
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

fn parse_general<'a>(k: &mut Keys<'a>, p: &mut Problems, g: &mut General) {
    if let Some(s) = k.get(p, "shards", |v| match v.trim() {
        "auto" => Ok(Shards::Auto),
        n => match n.parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => Ok(Shards::Count(n)),
            _ => Err(format!("{v:?} must be auto or a number of shards (1-1024)")),
        },
    }) {
        g.shards = s;
    }
    if let Some(d) = k.get(p, "spool_dir", |v| Ok(v.trim().to_string())) {
        g.spool_dir = d;
    }
    if let Some(n) = k.get(p, "max_pdu_size", |v| match value::size(v)? {
        n if (64..=16 * 1024 * 1024).contains(&n) => Ok(n as u32),
        n => Err(format!("{n} is out of range (64 to 16m)")),
    }) {
        g.max_pdu_size = n;
    }
    if let Some(d) = k.get(p, "session_init_timeout", nonzero_duration) {
        g.session_init_timeout = d;
    }
    if let Some(d) = k.get(p, "enquire_link_interval", optional_timer) {
        g.enquire_link_interval = d;
    }
    if let Some(d) = k.get(p, "enquire_link_timeout", nonzero_duration) {
        g.enquire_link_timeout = d;
    }
    if let Some(d) = k.get(p, "response_timeout", nonzero_duration) {
        g.response_timeout = d;
    }
    if let Some(d) = k.get(p, "inactivity_timeout", optional_timer) {
        g.inactivity_timeout = d;
    }
    if let Some(n) = k.get(p, "window", positive::<usize>("a window size")) {
        g.window = n;
    }
    if let Some(n) = k.get(p, "delivery_attempts", |v| match v.trim().parse::<u8>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{v:?} must be a number of attempts (1-255)")),
    }) {
        g.delivery_attempts = n;
    }
    if let Some(d) = k.get(p, "delivery_retry", nonzero_duration) {
        g.delivery_retry = d;
    }
    if let Some(d) = k.get(p, "spin_before_park", optional_timer) {
        g.spin_before_park = d;
    }
    if let Some(n) = k.get(
        p,
        "max_connections",
        positive::<usize>("a number of connections"),
    ) {
        g.max_connections = n;
    }
    if let Some(r) = k.get(p, "default_route", |v| {
        let v = v.trim();
        let id = v.strip_prefix("smppclient/").unwrap_or(v);
        if id.contains('/') {
            Err(format!("{v:?}: only smppclient/ID can be a default route (routes come from regexroute.conf)"))
        } else {
            Ok(id.to_string())
        }
    }) {
        g.default_route = (!r.is_empty()).then_some(r);
    }
    if let Some(a) = k.get(p, "admin", |v| {
        v.trim()
            .parse::<SocketAddr>()
            .map_err(|_| format!("{v:?} is not ADDRESS:PORT"))
    }) {
        g.admin = Some(a);
    }
}

fn parse_listener<'a>(k: &mut Keys<'a>, p: &mut Problems, s: &'a Section) -> Option<Listener> {
    let name = s.name.trim_start_matches("listenerserver").trim();
    if name.is_empty() {
        p.error(
            YSMPP,
            s.line,
            "",
            "listener section needs a name: [listenerserver NAME]",
        );
    }
    let enable = k.get(p, "enable", value::boolean).unwrap_or(true);
    let addr = k.get(p, "addr", |v| {
        v.trim()
            .parse::<IpAddr>()
            .map_err(|_| format!("{v:?} is not an IP address"))
    });
    let port = k.get(p, "port", |v| match v.trim().parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{v:?} is not a port number (1-65535)")),
    });
    let sslcontext = k
        .get(p, "sslcontext", |v| Ok(v.trim().to_string()))
        .filter(|c| !c.is_empty());
    if s.get("port").is_none() {
        p.error(
            YSMPP,
            s.line,
            "port",
            format!("[{}] needs port=NUMBER", s.name),
        );
    }
    let addr = match (addr, s.get("addr")) {
        (Some(a), _) => a,
        (None, None) => IpAddr::from([0, 0, 0, 0]),
        (None, Some(_)) => return None,
    };
    Some(Listener {
        name: name.to_string(),
        enable,
        addr,
        port: port?,
        sslcontext,
        line: k.line_of("port"),
    })
}

fn parse_account<'a>(
    k: &mut Keys<'a>,
    p: &mut Problems,
    s: &'a Section,
    g: &General,
) -> Option<Account> {
    let id = s.name.as_str();
    if id.len() > 15 {
        p.warn(
            REGFILE,
            s.line,
            "",
            format!("system_id [{id}] is longer than 15 characters: ESMEs that keep to SMPP's C16 cannot send it"),
        );
    }
    let password = k.get(p, "password", |v| {
        if v.len() <= 8 {
            Ok(v.to_string())
        } else {
            Err("is longer than 8 characters (SMPP C9): no ESME could send it".to_string())
        }
    });
    if s.get("password").is_none() {
        p.error(
            REGFILE,
            s.line,
            "password",
            format!("account [{id}] needs password=..."),
        );
    }
    let max_binds = k
        .get(p, "max_binds", |v| {
            value::number::<u32>(v, "a number of binds")
        })
        .unwrap_or(0);
    let window = k
        .get(p, "window", positive::<usize>("a window size"))
        .unwrap_or(g.window);
    let rate = k
        .get(p, "rate", |v| {
            match value::number::<f64>(v, "a rate in messages per second")? {
                r if r >= 0.0 && r.is_finite() => Ok(r),
                _ => Err(format!("{v:?} must be 0 (no limit) or a positive rate")),
            }
        })
        .unwrap_or(0.0);
    let allowed_ips = k
        .get(p, "allowed_ips", |v| {
            value::list(v).iter().map(|n| IpNet::parse(n)).collect()
        })
        .unwrap_or_default();
    Some(Account {
        system_id: id.to_string(),
        password: password?,
        max_binds,
        window,
        rate,
        allowed_ips,
        line: s.line,
    })
}

fn id_format(v: &str) -> Result<MsgIdFormat, String> {
    let one =
        |s: &str| IdRadix::from_name(s).ok_or_else(|| format!("{s:?} is not hex, decimal or text"));
    match v.split_once('/') {
        Some((r, d)) => Ok(MsgIdFormat {
            resp: one(r)?,
            receipt: one(d)?,
        }),
        None => {
            let r = one(v)?;
            Ok(MsgIdFormat {
                resp: r,
                receipt: r,
            })
        }
    }
}

fn parse_client<'a>(k: &mut Keys<'a>, p: &mut Problems, s: &'a Section) -> Option<ClientLink> {
    let name = s.name.clone();
    let need = |p: &mut Problems, key: &str, what: &str| {
        if s.get(key).is_none() {
            p.error(
                YSMPP,
                s.line,
                key,
                format!("client [{name}] needs {key}={what}"),
            );
        }
    };
    let enabled = k.get(p, "enabled", value::boolean).unwrap_or(true);
    need(p, "server", "HOST");
    need(p, "system_id", "ID");
    let server = k.get(p, "server", |v| {
        let v = v.trim();
        if v.is_empty() || v.contains(char::is_whitespace) {
            Err(format!("{v:?} is not a host name or address"))
        } else {
            Ok(v.to_string())
        }
    });
    let port = k
        .get(p, "port", |v| match v.trim().parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{v:?} is not a port number (1-65535)")),
        })
        .unwrap_or(2775);
    let system_id = k.get(p, "system_id", |v| match v.len() {
        1..=16 => Ok(v.to_string()),
        _ => Err(format!("{v:?} must be 1-16 characters")),
    });
    let system_password = k
        .get(p, "system_password", |v| match v.len() {
            0..=9 => Ok(v.to_string()),
            _ => Err("must be at most 9 characters".to_string()),
        })
        .unwrap_or_default();
    let tls = k.get(p, "sslmode", value::boolean).unwrap_or(false);
    let bind = k
        .get(p, "bind", |v| {
            match v.trim().to_ascii_lowercase().replace(' ', "").as_str() {
                "transmitter" | "tx" => Ok(LinkBind::Transmitter),
                "receiver" | "rx" => Ok(LinkBind::Receiver),
                "transceiver" | "trx" => Ok(LinkBind::Transceiver),
                "transmitter+receiver" | "tx+rx" | "pair" => Ok(LinkBind::Pair),
                _ => Err(format!(
                    "{v:?} is not transmitter, receiver, transceiver or transmitter+receiver"
                )),
            }
        })
        .unwrap_or(LinkBind::Transceiver);
    let binds = k
        .get(p, "binds", positive::<usize>("a number of binds"))
        .unwrap_or(1);
    let window = k
        .get(p, "window", positive::<usize>("a window size"))
        .unwrap_or(10);
    let rate = k
        .get(p, "rate", |v| {
            match value::number::<f64>(v, "a rate in segments per second")? {
                r if r >= 0.0 && r.is_finite() => Ok(r),
                _ => Err(format!("{v:?} must be 0 (no limit) or a positive rate")),
            }
        })
        .unwrap_or(0.0);
    let system_type = k
        .get(p, "system_type", |v| match v.len() {
            0..=12 => Ok(v.to_string()),
            _ => Err(format!("{v:?} is longer than 12 characters (SMPP C13)")),
        })
        .unwrap_or_default();
    let interface_version = k
        .get(p, "interface_version", |v| {
            let t = v.trim().to_ascii_lowercase();
            let n = match t.strip_prefix("0x") {
                Some(h) => u8::from_str_radix(h, 16).ok(),
                None => match t.as_str() {
                    "3.3" => Some(0x33),
                    "3.4" => Some(0x34),
                    "5.0" => Some(0x50),
                    _ => t.parse::<u8>().ok(),
                },
            };
            match n {
                Some(n @ (0x33 | 0x34 | 0x50)) => Ok(n),
                _ => Err(format!(
                    "{v:?} must be 0x33, 0x34 or 0x50 (3.3, 3.4 or 5.0)"
                )),
            }
        })
        .unwrap_or(0x34);
    let address_range = k
        .get(p, "address_range", |v| match v.len() {
            0..=40 => Ok(v.to_string()),
            _ => Err(format!("{v:?} is longer than 40 characters (SMPP C41)")),
        })
        .unwrap_or_default();
    let enquire_link = k
        .get(p, "enquire_link", optional_timer)
        .unwrap_or(Some(Duration::from_secs(30)));
    let response_timeout = k
        .get(p, "response_timeout", nonzero_duration)
        .unwrap_or(Duration::from_secs(30));
    let (reconnect_min, reconnect_max) = k
        .get(p, "reconnect", |v| {
            let parts = value::list(v);
            let (a, b) = match parts.as_slice() {
                [a] => (value::duration(a)?, value::duration(a)?),
                [a, b] => (value::duration(a)?, value::duration(b)?),
                _ => return Err(format!("{v:?}: write MIN,MAX (for example 1s,60s)")),
            };
            if a.is_zero() || b < a {
                return Err(format!(
                    "{v:?}: MIN must be more than 0 and MAX at least MIN"
                ));
            }
            Ok((a, b))
        })
        .unwrap_or((Duration::from_secs(1), Duration::from_secs(60)));
    let coding = k
        .get(p, "coding", |v| {
            Charset::from_name(v).ok_or_else(|| {
                format!("{v:?} is not gsm7, gsm7-packed, ascii, latin1, ucs2 or utf8")
            })
        })
        .unwrap_or(Charset::Gsm7);
    let msgid = k.get(p, "msgid_format", id_format).unwrap_or(MsgIdFormat {
        resp: IdRadix::Text,
        receipt: IdRadix::Text,
    });
    let ca_file = k
        .get(p, "ca_file", |v| Ok(v.trim().to_string()))
        .filter(|v| !v.is_empty());
    let verify = k.get(p, "verify", value::boolean).unwrap_or(true);
    let sni = k
        .get(p, "sni", |v| Ok(v.trim().to_string()))
        .filter(|v| !v.is_empty());
    if tls && verify && ca_file.is_none() {
        p.error(
            YSMPP,
            s.line,
            "ca_file",
            format!("client [{name}] uses TLS with verify=yes: name the CA certificates with ca_file=FILE.pem (or verify=no)"),
        );
    }
    if !tls && (ca_file.is_some() || sni.is_some()) {
        p.warn(
            YSMPP,
            s.line,
            "sslmode",
            format!("client [{name}]: ca_file and sni have no effect without sslmode=true"),
        );
    }
    if let Some(id) = &system_id {
        if id.len() == 16 {
            p.warn(
                YSMPP,
                k.line_of("system_id"),
                "system_id",
                "16 characters: SMSCs that keep to SMPP's C16 refuse more than 15",
            );
        }
    }
    if system_password.len() == 9 {
        p.warn(
            YSMPP,
            k.line_of("system_password"),
            "system_password",
            "9 characters: SMSCs that keep to SMPP's C9 refuse more than 8",
        );
    }
    Some(ClientLink {
        name,
        enabled,
        server: server?,
        port,
        system_id: system_id?,
        system_password,
        tls,
        bind,
        binds,
        window,
        rate,
        system_type,
        interface_version,
        address_range,
        enquire_link,
        response_timeout,
        reconnect_min,
        reconnect_max,
        coding,
        msgid,
        ca_file,
        verify,
        sni,
        line: s.line,
    })
}
