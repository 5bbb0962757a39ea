//! `ysmpp.conf`: the SMPP side of the gateway, as YateSMSC's ysmpp module reads it.
//!
//! - `[general]`: shards, spool, timers, limits ([`General`]);
//! - `[smpp-server]`: whether ESMEs may bind ([`Server`]);
//! - `[listenerserver NAME]`: one per listening socket ([`Listener`]);
//! - `[smpp-client] clients=a,b` and one section per name: the upstream links ([`ClientLink`]).
//!
//! The checks that need only this file (duplicate listeners and ports, client names without a
//! section, `default_route`) are made here; those against other files are in `model`.

use core::net::{IpAddr, SocketAddr}; // value types: no IO
use std::time::Duration;

use super::ini::{Ini, Section};
use super::keys::{
    at_least, backoff, coding, gateway, nonzero_duration, optional_timer, port, positive, rate,
    Keys, Problems, DEFAULT_CODING,
};
use super::value;
use crate::smpp::receipt::IdRadix;
use crate::text::Charset;

pub(super) const FILE: &str = "ysmpp.conf";

/// How many data shards to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shards {
    /// One per available core.
    Auto,
    Count(usize),
}

/// `sync` in `[general]`: how the message log reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Group commit: the records of one `sync_window` share one fdatasync, and a
    /// submit_sm_resp goes out only after its record's commit.
    Batch,
    /// No fdatasync: faster, but messages acknowledged just before a crash or a power cut
    /// can be lost.
    None,
}

impl SyncMode {
    /// The configuration word.
    pub const fn name(self) -> &'static str {
        match self {
            SyncMode::Batch => "batch",
            SyncMode::None => "none",
        }
    }
}

/// `log_io` in `[general]`: how the message log writes its segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogIo {
    /// Direct IO where the spool's device completes polled IO, buffered writes elsewhere.
    Auto,
    /// Direct IO (O_DIRECT) wherever the filesystem allows it.
    Direct,
    /// Buffered writes; durability is the same (every commit is fdatasync'd).
    Buffered,
}

impl LogIo {
    /// The configuration word.
    pub const fn name(self) -> &'static str {
        match self {
            LogIo::Auto => "auto",
            LogIo::Direct => "direct",
            LogIo::Buffered => "buffered",
        }
    }
}

/// `[general]` of ysmpp.conf.
#[derive(Clone, Debug, PartialEq)]
pub struct General {
    pub shards: Shards,
    /// Where the message log's segments are written; a relative path resolves against the
    /// configuration directory.
    pub spool_dir: String,
    pub sync: SyncMode,
    pub log_io: LogIo,
    /// How long a commit waits to gather records before its fdatasync; zero: the next commit
    /// starts as soon as the previous fdatasync ends.
    pub sync_window: Duration,
    /// Octets per message log segment (1M to 1G).
    pub segment_size: u64,
    /// Pending messages per shard whose bodies stay in memory; beyond it they are read back
    /// from the spool.
    pub memory_messages: usize,
    /// Messages waiting for one target (a link that is down, an ESME that is not bound) per
    /// shard; beyond it new messages for that target are refused with ESME_RMSGQFUL.
    pub queue_limit: usize,
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
    /// How long a receipt whose message id no message has is refused with ESME_RX_T_APPN
    /// (the upstream delivers it again later: its message's outcome may not be known yet,
    /// after a crash for one) before it is answered ESME_ROK and dropped. Zero: at once.
    pub unmatched_receipt_wait: Duration,
    /// How long a shard with nothing to do keeps polling before it sleeps (off: it sleeps at
    /// once). Spinning trades CPU for the latency of waking up.
    pub spin_before_park: Option<Duration>,
    /// Connections accepted at most, over all listeners and shards.
    pub max_connections: usize,
    /// `log_level` (error, warn, info, debug, trace, off); `SMPPGW_LOG` wins over it.
    pub log_level: Option<log::LevelFilter>,
    /// The admin endpoint (`/metrics`, `/health`, `/status`): 127.0.0.1:9775 unless set;
    /// `off`: none.
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
            sync: SyncMode::Batch,
            log_io: LogIo::Auto,
            sync_window: Duration::ZERO,
            segment_size: 64 << 20,
            memory_messages: 1_000_000,
            queue_limit: 100_000,
            max_pdu_size: crate::smpp::DEFAULT_MAX_PDU_SIZE,
            session_init_timeout: Duration::from_secs(10),
            enquire_link_interval: Some(Duration::from_secs(30)),
            enquire_link_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            inactivity_timeout: None,
            window: 64,
            delivery_attempts: 10,
            delivery_retry: Duration::from_secs(1),
            unmatched_receipt_wait: Duration::from_secs(600),
            spin_before_park: None,
            max_connections: 20_000,
            admin: Some(SocketAddr::from(([127, 0, 0, 1], 9775))),
            log_level: None,
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
    /// What the link speaks for data_coding 0 (`coding`, default gsm7).
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

impl ClientLink {
    /// The keys that differ from `other` (where the section stands aside).
    pub fn changed_keys(&self, other: &ClientLink) -> Vec<&'static str> {
        changed_fields!(self, other;
            enabled, server, port, system_id, system_password, tls, bind, binds, window, rate,
            system_type, interface_version, address_range, enquire_link, response_timeout,
            reconnect_min, reconnect_max, coding, msgid, ca_file, verify, sni)
    }
}

/// What `ysmpp.conf` holds, once parsed.
pub(super) struct Ysmpp {
    pub general: General,
    pub server: Server,
    pub listeners: Vec<Listener>,
    /// `[smpp-client]` links, in `clients=` order.
    pub clients: Vec<ClientLink>,
    pub cdr: super::CdrConfig,
    pub http: Option<super::HttpApi>,
    pub http_target: super::HttpTargetConfig,
    pub admin: super::AdminConfig,
    pub cluster: Option<super::ClusterConfig>,
}

/// The line of a `[general]` key (0 when it is not there), for errors found after parsing.
fn general_line(ysmpp: &Ini, key: &str) -> usize {
    ysmpp
        .section("general")
        .and_then(|s| s.get(key))
        .map_or(0, |e| e.line)
}

pub(super) fn parse(ysmpp: &Ini, p: &mut Problems) -> Ysmpp {
    let mut general = General::default();
    let mut server = Server::default();
    let mut cdr = super::CdrConfig::default();
    let mut http = None;
    let mut http_target = super::HttpTargetConfig::default();
    let mut admin = super::AdminConfig::default();
    let mut cluster = None;
    let mut listeners: Vec<Listener> = Vec::new();
    // [smpp-client] names the client sections; read it first, wherever it stands.
    let mut client_names: Vec<(String, usize)> = Vec::new();
    for s in ysmpp.sections_named("smpp-client") {
        let mut k = Keys::new(FILE, s);
        if let Some(list) = k.get(p, "clients", |v| Ok(value::list(v))) {
            let line = k.line_of("clients");
            client_names.extend(list.into_iter().map(|n| (n, line)));
        }
        k.finish(p);
    }
    let mut clients: Vec<ClientLink> = Vec::new();
    for s in &ysmpp.sections {
        let mut k = Keys::new(FILE, s);
        match s.name.as_str() {
            "smpp-client" => continue,
            name if client_names.iter().any(|(n, _)| n == name) => {
                if clients.iter().any(|c| c.name == name) {
                    p.error(
                        FILE,
                        s.line,
                        "",
                        format!("client section [{name}] is defined twice"),
                    );
                } else if let Some(c) = parse_client(&mut k, p, s) {
                    clients.push(c);
                }
            }
            "general" => parse_general(&mut k, p, &mut general),
            "cdr" => super::cdr::parse(&mut k, p, &mut cdr),
            "http" => http = super::http::parse(&mut k, p, s.line),
            "http-target" => super::http::parse_target(&mut k, p, &mut http_target),
            "admin" => super::admin::parse(&mut k, p, &mut admin),
            "cluster" => cluster = super::cluster::parse(&mut k, p, s.line),
            "smpp-server" => {
                if let Some(b) = k.get(p, "enable", value::boolean) {
                    server.enable = b;
                }
                if let Some(t) = k.get(p, "default-service-type", |v| {
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
                if let Some(l) = parse_listener(&mut k, p, s) {
                    if listeners.iter().any(|o| o.name == l.name) {
                        p.error(
                            FILE,
                            s.line,
                            "",
                            format!("listener {:?} is defined twice", l.name),
                        );
                    } else if let Some(o) = listeners
                        .iter()
                        .find(|o| o.enable && l.enable && o.socket_addr() == l.socket_addr())
                    {
                        p.error(
                            FILE,
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
                p.warn_entries(FILE, s, "outside any [section], ignored");
                continue;
            }
            other => {
                let hint = if s.get("server").is_some() {
                    " (a client section? list it in [smpp-client] clients=)"
                } else {
                    ""
                };
                p.warn(
                    FILE,
                    s.line,
                    "",
                    format!("section [{other}] is not used, ignored{hint}"),
                );
                continue;
            }
        }
        k.finish(p);
    }

    for (name, line) in &client_names {
        if !clients.iter().any(|c| &c.name == name)
            && !ysmpp.sections.iter().any(|s| &s.name == name)
        {
            p.error(
                FILE,
                *line,
                "clients",
                format!("{name:?} has no [{name}] section"),
            );
        }
    }
    // Keep clients= order: it is the order an operator reads and the log reports.
    clients.sort_by_key(|c| client_names.iter().position(|(n, _)| *n == c.name));
    if let Some(r) = &general.default_route {
        if !enabled_client(&clients, r) {
            p.error(
                FILE,
                general_line(ysmpp, "default_route"),
                "default_route",
                format!("{r:?} is not an enabled client in [smpp-client] clients="),
            );
        }
    }
    if server.enable && !listeners.iter().any(|l| l.enable) {
        p.warn(
            FILE,
            0,
            "",
            "the SMPP server is enabled but has no enabled [listenerserver NAME]",
        );
    }
    if let Some(a) = general.admin.filter(|a| !a.ip().is_loopback()) {
        if !admin.has_credentials() {
            p.error(
                FILE,
                general_line(ysmpp, "admin"),
                "admin",
                format!("{a} is beyond loopback: set [admin] token= (or user= and password=) so that the endpoint asks who calls"),
            );
        }
    }
    Ysmpp {
        general,
        server,
        listeners,
        clients,
        cdr,
        http,
        http_target,
        admin,
        cluster,
    }
}

/// Whether `name` is an enabled client link of `clients=`: what `default_route` and
/// yatesmsc.conf's `backup_smpp_gw` may name.
pub(super) fn enabled_client(clients: &[ClientLink], name: &str) -> bool {
    clients.iter().any(|c| c.name == name && c.enabled)
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
    if let Some(m) = k.get(p, "sync", |v| {
        match v.trim().to_ascii_lowercase().as_str() {
            "batch" => Ok(SyncMode::Batch),
            "none" => Ok(SyncMode::None),
            _ => Err(format!("{v:?} is not batch or none")),
        }
    }) {
        g.sync = m;
    }
    if let Some(m) = k.get(p, "log_io", |v| {
        match v.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(LogIo::Auto),
            "direct" => Ok(LogIo::Direct),
            "buffered" => Ok(LogIo::Buffered),
            _ => Err(format!("{v:?} is not auto, direct or buffered")),
        }
    }) {
        g.log_io = m;
    }
    if let Some(d) = k.get(p, "sync_window", value::duration) {
        g.sync_window = d;
    }
    if let Some(n) = k.get(p, "segment_size", |v| match value::size(v)? {
        n if (1 << 20..=1 << 30).contains(&n) => Ok(n),
        _ => Err(format!("{v:?} is out of range (1M to 1G)")),
    }) {
        g.segment_size = n;
    }
    if let Some(n) = k.get(p, "memory_messages", at_least(100, "a number of messages")) {
        g.memory_messages = n;
    }
    if let Some(n) = k.get(p, "queue_limit", positive::<usize>("a number of messages")) {
        g.queue_limit = n;
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
    if let Some(d) = k.get(p, "unmatched_receipt_wait", value::duration) {
        g.unmatched_receipt_wait = d;
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
    if let Some(r) = k.get(p, "default_route", |v| match gateway(v) {
        (None | Some("smppclient"), id) if !id.contains('/') => Ok(id.to_string()),
        _ => Err(format!(
            "{:?}: only smppclient/ID can be a default route (routes come from regexroute.conf)",
            v.trim()
        )),
    }) {
        g.default_route = (!r.is_empty()).then_some(r);
    }
    if let Some(l) = k.get(p, "log_level", |v| {
        crate::logger::level_named(v)
            .ok_or_else(|| format!("{v:?} is not error, warn, info, debug, trace or off"))
    }) {
        g.log_level = Some(l);
    }
    if let Some(a) = k.get(p, "admin", |v| match v.trim() {
        "off" | "no" | "" => Ok(None),
        t => t
            .parse::<SocketAddr>()
            .map(Some)
            .map_err(|_| format!("{v:?} is not ADDRESS:PORT or off")),
    }) {
        g.admin = a;
    }
}

fn parse_listener<'a>(k: &mut Keys<'a>, p: &mut Problems, s: &'a Section) -> Option<Listener> {
    let name = s.name.trim_start_matches("listenerserver").trim();
    if name.is_empty() {
        p.error(
            FILE,
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
    let port = k.get(p, "port", port);
    let sslcontext = k
        .get(p, "sslcontext", |v| Ok(v.trim().to_string()))
        .filter(|c| !c.is_empty());
    if s.get("port").is_none() {
        p.error(
            FILE,
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
                FILE,
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
    let port = k.get(p, "port", port).unwrap_or(2775);
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
        .get(p, "rate", rate("a rate in segments per second"))
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
        .get(p, "reconnect", backoff)
        .unwrap_or((Duration::from_secs(1), Duration::from_secs(60)));
    let coding = k.get(p, "coding", coding).unwrap_or(DEFAULT_CODING);
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
            FILE,
            s.line,
            "ca_file",
            format!("client [{name}] uses TLS with verify=yes: name the CA certificates with ca_file=FILE.pem (or verify=no)"),
        );
    }
    if !tls && (ca_file.is_some() || sni.is_some()) {
        p.warn(
            FILE,
            s.line,
            "sslmode",
            format!("client [{name}]: ca_file and sni have no effect without sslmode=true"),
        );
    }
    if let Some(id) = &system_id {
        if id.len() == 16 {
            p.warn(
                FILE,
                k.line_of("system_id"),
                "system_id",
                "16 characters: SMSCs that keep to SMPP's C16 refuse more than 15",
            );
        }
    }
    if system_password.len() == 9 {
        p.warn(
            FILE,
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
