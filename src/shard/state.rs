//! State shared by all shards: the configuration, the accounts and links with their live
//! counters, the route table, the connection count, the stop flag. Everything here is
//! read-mostly and lock-free on the data path (atomics); the route table's lock is taken once
//! per reload.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::flow::{Policy, Target};
use crate::ids::LinkId;
use crate::route::RouteTable;

/// How the server treats messages.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Terminating gateway: accounts from regfile.conf; every message is accepted and, when
    /// asked, receipted as delivered.
    Terminating,
    /// SMSC simulator: any system_id and password bind; acks, receipts, errors and
    /// throttling as configured.
    Simulator(SimOptions),
}

/// What the simulator does with each message.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Delay before the receipt.
    pub receipt_delay: Duration,
    /// Share (0-100) of submits answered with a temporary error (ESME_RMSGQFUL).
    pub temp_error_pct: f64,
    /// Share (0-100) of submits answered with a permanent error (ESME_RSUBMITFAIL).
    pub perm_error_pct: f64,
    /// Messages per second per session before ESME_RTHROTTLED (0: no limit).
    pub throttle: f64,
    /// Answer every Nth submit (per shard) ESME_RTHROTTLED (0: never).
    pub throttle_every: u32,
    /// How message ids are written: in submit_sm_resp, and in receipts.
    pub msgid: (crate::smpp::receipt::IdRadix, crate::smpp::receipt::IdRadix),
    /// Append the text of every accepted message to this file, one line each.
    pub record: Option<std::path::PathBuf>,
}

impl Default for SimOptions {
    fn default() -> Self {
        use crate::smpp::receipt::IdRadix;
        SimOptions {
            receipt_delay: Duration::ZERO,
            temp_error_pct: 0.0,
            perm_error_pct: 0.0,
            throttle: 0.0,
            throttle_every: 0,
            msgid: (IdRadix::Hex, IdRadix::Hex),
            record: None,
        }
    }
}

/// The running route table. Shards compare `version` (one relaxed load per message) with the
/// version they cache and take the lock only when it changed, which is once per reload.
#[derive(Default)]
pub struct RouteSlot {
    version: AtomicU64,
    table: Mutex<Option<Arc<RouteTable>>>,
}

impl RouteSlot {
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn current(&self) -> Option<Arc<RouteTable>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Installs a compiled table (its version must be new).
    pub fn install(&self, table: RouteTable) {
        let version = table.version;
        *self.table.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(table));
        self.version.store(version, Ordering::Release);
    }
}

/// One shard's counters, for the log and the exit summary (summed over the shards by
/// [`Shared::total`]). Each shard writes only its own, on a cache line of its own: no line
/// is written by two cores per message.
#[derive(Default)]
#[repr(align(128))]
pub struct Counters {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    /// deliver_sm sent to ESMEs (messages, receipts, MO), and acknowledged.
    pub deliveries_sent: AtomicU64,
    pub deliveries_acked: AtomicU64,
    /// Messages that ended delivered (or forwarded), and undelivered.
    pub delivered: AtomicU64,
    pub undelivered: AtomicU64,
    /// Receipts from links that no message waited for (answered and dropped), and those
    /// refused for now with ESME_RX_T_APPN (the upstream delivers them again).
    pub receipts_unmatched: AtomicU64,
    pub receipts_deferred: AtomicU64,
    /// Messages refused because the route file sent them nowhere the gateway serves.
    pub unrouted: AtomicU64,
    pub binds: AtomicU64,
    pub bind_failures: AtomicU64,
    /// Socket reads and writes of closed connections, and the PDUs those reads carried.
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub frames_in: AtomicU64,
}

/// What all shards share.
pub struct Shared {
    pub config: Arc<Config>,
    pub mode: Mode,
    pub shards: usize,
    pub epoch: Instant,
    /// Seconds since 1970 at start, after every id the spool holds: the high part of every
    /// new message id.
    pub start_secs: u32,
    pub connections: AtomicUsize,
    /// Connections each shard serves (accepted there, or handed to it): a listener hands a new
    /// connection to the shard that serves the fewest (SO_REUSEPORT alone can put every bind
    /// on one core).
    pub served: Vec<AtomicUsize>,
    pub stopping: AtomicBool,
    /// Per shard (see [`Shared::counters`]).
    per_shard: Vec<Counters>,
    /// The client links: `clients=` order, then links reloads added.
    pub links: Links,
    /// regexroute.conf, when the configuration directory has one.
    pub routes: RouteSlot,
    pub accounts: Accounts,
    /// What a reload changes that is not an account, a link or a route (see [`Live`]).
    pub live: ArcSwap<Live>,
    /// Flows report attempts (CDRs or metrics want them).
    pub legs: bool,
    /// Where CDRs go (`[cdr] file`), when they are written.
    pub cdr: Option<crate::cdr::Sink>,
    /// The CDR file is to be opened again (SIGHUP, SIGUSR1: logrotate moved it).
    pub cdr_reopen: AtomicBool,
    /// Per shard: the number of its last `final` or `receipt` leg the CDR file holds durably
    /// (the CDR writer moves it after each fdatasync).
    pub cdr_durable: Vec<AtomicU64>,
    /// Per shard: the number of its first end leg that was lost (dropped because the writer
    /// fell behind, or never written); `u64::MAX`: none. The checkpoint stops before it.
    pub cdr_hole: Vec<AtomicU64>,
    /// The places in the message log up to which every final's CDR is durable, as shards
    /// worked them out from `cdr_durable` (the CDR writer keeps them in its checkpoint file).
    pub cdr_passed: Mutex<crate::store::CdrCheckpoint>,
    /// Shards keep metrics (a Prometheus recorder is installed).
    pub metrics: bool,
    /// When each shard last ticked (ms since `epoch`): the admin endpoint's health check.
    pub heartbeats: Vec<AtomicU64>,
    /// Listeners that could not be opened.
    pub listeners_failed: AtomicUsize,
    /// Messages not final, per shard (as of its last tick).
    pub pending: Vec<AtomicU64>,
    /// The HTTP endpoints messages were routed to.
    pub endpoints: super::endpoints::Endpoints,
    /// How https targets are verified (`[http-target]`).
    pub http_tls: Option<Arc<rustls::ClientConfig>>,
    /// The cluster this node is part of (`[cluster]`), when it is.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl Shared {
    /// `tls` holds each client link's TLS configuration (same order as `config.clients`).
    pub fn new(
        config: Arc<Config>,
        mode: Mode,
        shards: usize,
        start_secs: u32,
        tls: Vec<Option<Arc<rustls::ClientConfig>>>,
    ) -> Shared {
        let epoch = Instant::now();
        let links = Links::new(config.clients.len());
        for (i, (c, tls)) in config
            .clients
            .iter()
            .zip(tls.into_iter().chain(std::iter::repeat(None)))
            .enumerate()
        {
            links.push(crate::upstream::LinkShared::new(
                i,
                c.clone(),
                shards,
                tls,
                epoch,
            ));
        }
        let simulated = matches!(mode, Mode::Simulator(_));
        let accounts = Accounts::new(&config.accounts, simulated, shards, epoch);
        let live = Live::new(config.clone(), 1, &links, &accounts);
        Shared {
            live: ArcSwap::from_pointee(live),
            legs: false,
            config,
            mode,
            shards,
            epoch,
            start_secs,
            connections: AtomicUsize::new(0),
            served: (0..shards.max(1)).map(|_| AtomicUsize::new(0)).collect(),
            stopping: AtomicBool::new(false),
            per_shard: (0..shards.max(1)).map(|_| Counters::default()).collect(),
            links,
            routes: RouteSlot::default(),
            accounts,
            cdr: None,
            cdr_reopen: AtomicBool::new(false),
            cdr_durable: (0..shards.max(1)).map(|_| AtomicU64::new(0)).collect(),
            cdr_hole: (0..shards.max(1))
                .map(|_| AtomicU64::new(u64::MAX))
                .collect(),
            cdr_passed: Mutex::new(Default::default()),
            metrics: false,
            heartbeats: (0..shards.max(1)).map(|_| AtomicU64::new(0)).collect(),
            listeners_failed: AtomicUsize::new(0),
            pending: (0..shards.max(1)).map(|_| AtomicU64::new(0)).collect(),
            endpoints: Default::default(),
            http_tls: None,
            cluster: None,
        }
    }

    /// The counters shard `shard` writes.
    pub fn counters(&self, shard: crate::ids::ShardId) -> &Counters {
        &self.per_shard[shard % self.per_shard.len()]
    }

    /// One counter summed over the shards.
    pub fn total(&self, which: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        self.per_shard
            .iter()
            .map(|c| which(c).load(Ordering::Relaxed))
            .sum()
    }

    /// The retry, failover and validity policy now, as flows run it.
    pub fn policy(&self) -> Policy {
        Policy {
            legs: self.legs,
            ..self.live.load().policy.clone()
        }
    }

    /// `backup_smpp_gw` now, as flows take it.
    pub fn backup(&self) -> Option<(Target, bytes::Bytes)> {
        self.live
            .load()
            .backup
            .as_ref()
            .map(|(t, name)| (*t, bytes::Bytes::from(name.clone())))
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Whether a target can take messages now: a link the control shard says is up (a bound
    /// transmitter on some shard), an account with a bound receiver on any shard.
    pub fn reachable(&self, t: Target) -> bool {
        match t {
            // Owned by the control shard (`LinkShared::update_health`), read here.
            Target::Link(l) => self.links.get(l).is_some_and(|l| l.is_healthy()),
            Target::Esme(a) => self.accounts.get(a).is_some_and(|a| a.has_receiver()),
            // Tried each time: an endpoint that fails is retried with backoff.
            Target::Http(_) => true,
        }
    }

    /// A target by the name route rules and records use (`smppclient/ID`, `smppserver/ID`,
    /// `http/ID` for an account submitting over HTTP, or a URL).
    pub fn target_named(&self, name: &[u8]) -> Option<Target> {
        if name.starts_with(b"http://")
            || name.starts_with(b"https://")
            || name.starts_with(b"GET ")
        {
            return self.endpoints.for_target(name).map(Target::Http);
        }
        let name = std::str::from_utf8(name).ok()?;
        match name.split_once('/')? {
            ("smppclient", id) => self.links.position(id).map(Target::Link),
            ("smppserver" | "http", id) => self.accounts.id_of(id).map(Target::Esme),
            _ => None,
        }
    }

    /// The name of a target, as routes and the message log write it.
    pub fn target_bytes(&self, t: Target) -> bytes::Bytes {
        match t {
            Target::Link(l) => self.links.get(l).map(|l| l.target.clone()),
            Target::Esme(a) => self.accounts.get(a).map(|a| a.target.clone()),
            Target::Http(h) => self.endpoints.get(h).map(|e| e.key.clone()),
        }
        .unwrap_or_else(|| bytes::Bytes::from_static(b"?"))
    }

    /// What data_coding 0 means to a target.
    pub fn coding_of(&self, t: Target) -> crate::text::Charset {
        match t {
            Target::Link(l) => self.links.get(l).map(|l| l.config().coding),
            Target::Esme(a) => self.accounts.get(a).and_then(|a| a.coding()),
            // Text goes to HTTP decoded: no transcoding on the way.
            Target::Http(_) => None,
        }
        .unwrap_or(crate::text::Charset::Gsm7)
    }

    /// What data_coding 0 means to the end a record names (`smppserver/ID`, `smppclient/ID`).
    pub fn coding_named(&self, name: &[u8]) -> crate::text::Charset {
        self.target_named(name)
            .map_or(crate::text::Charset::Gsm7, |t| self.coding_of(t))
    }

    /// The name of a target, for the log.
    pub fn target_name(&self, t: Target) -> String {
        String::from_utf8_lossy(&self.target_bytes(t)).into_owned()
    }
}

/// What a reload changes as one snapshot: the newest configuration, and what is worked out
/// from it for the data path. Shards read it per message without a lock (`Shared::live`);
/// keys read at start only (listeners, shards, the spool, most of `[general]`) come from
/// `Shared::config` and need a restart.
pub struct Live {
    /// 1 at start, one more per reload that installed something.
    pub version: u64,
    /// When it was loaded.
    pub loaded_at: std::time::SystemTime,
    pub config: Arc<Config>,
    /// Retries, failover, validity (yatesmsc.conf and ysmpp.conf `[general]`).
    pub policy: Policy,
    /// `backup_smpp_gw`, resolved, with the name records write.
    pub backup: Option<(Target, String)>,
    /// The link `default_route` names.
    pub default_link: Option<LinkId>,
    /// Every account and link reads data_coding 0 the same way: no text is ever transcoded.
    pub uniform_coding: bool,
}

impl Live {
    /// Works out the snapshot of `config` (the links and accounts are installed already).
    pub fn new(config: Arc<Config>, version: u64, links: &Links, accounts: &Accounts) -> Live {
        let y = &config.yatesmsc;
        let g = &config.general;
        let policy = Policy {
            retries: y.retries,
            retry_min_ms: y.retry_interval_min.as_millis() as u64,
            retry_max_ms: y.retry_interval_max.as_millis() as u64,
            esme_retry_ms: g.delivery_retry.as_millis() as u64,
            trusted: y.smppgw_trusted,
            validity_ms: y.validity.as_millis() as u64,
            max_validity_ms: y.max_validity.as_millis() as u64,
            memory_messages: g.memory_messages,
            ..Policy::default()
        };
        let backup = y.backup.as_ref().and_then(|b| match b {
            crate::config::Backup::Client(name) => links
                .position(name)
                .map(|i| (Target::Link(i), format!("smppclient/{name}"))),
            crate::config::Backup::Server(name) => accounts
                .id_of(name)
                .map(|a| (Target::Esme(a), format!("smppserver/{name}"))),
        });
        let default_link = g.default_route.as_ref().and_then(|r| links.position(r));
        let mut codings = config
            .accounts
            .iter()
            .map(|a| a.coding)
            .chain(config.clients.iter().map(|c| c.coding));
        let uniform_coding = match codings.next() {
            Some(first) => codings.all(|c| c == first),
            None => true,
        };
        Live {
            version,
            loaded_at: std::time::SystemTime::now(),
            config,
            policy,
            backup,
            default_link,
            uniform_coding,
        }
    }
}

/// Links reloads can add beyond those at start.
const ADDED_LINKS: usize = 256;

/// The client links by id: a fixed set of slots filled in order, so that ids stay put and a
/// lookup takes no lock while reloads add links.
pub struct Links {
    slots: Box<[std::sync::OnceLock<Arc<crate::upstream::LinkShared>>]>,
    len: AtomicUsize,
}

impl Links {
    pub fn new(configured: usize) -> Links {
        Links {
            slots: (0..configured + ADDED_LINKS)
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            len: AtomicUsize::new(0),
        }
    }

    pub fn get(&self, i: LinkId) -> Option<&Arc<crate::upstream::LinkShared>> {
        self.slots.get(i).and_then(|s| s.get())
    }

    /// Every link, removed ones too (ids are positions).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<crate::upstream::LinkShared>> {
        let n = self.len.load(Ordering::Acquire).min(self.slots.len());
        self.slots[..n].iter().filter_map(|s| s.get())
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The link of this name, unless a reload removed it.
    pub fn position(&self, name: &str) -> Option<LinkId> {
        self.iter().position(|l| l.name == name && !l.is_removed())
    }

    /// The link of this name, removed or not.
    pub fn find(&self, name: &str) -> Option<&Arc<crate::upstream::LinkShared>> {
        self.iter().find(|l| l.name == name)
    }

    /// Adds a link (its `index` must be `len()`); the control shard only. `None` when every
    /// slot is taken.
    pub fn push(&self, link: crate::upstream::LinkShared) -> Option<LinkId> {
        let i = self.len.load(Ordering::Acquire);
        self.slots.get(i)?.set(Arc::new(link)).ok()?;
        self.len.store(i + 1, Ordering::Release);
        Some(i)
    }

    /// Slots left for links a reload adds.
    pub fn room(&self) -> usize {
        self.slots.len() - self.len()
    }
}

impl std::ops::Index<LinkId> for Links {
    type Output = Arc<crate::upstream::LinkShared>;

    fn index(&self, i: LinkId) -> &Self::Output {
        match self.get(i) {
            Some(l) => l,
            None => panic!("no link {i}"),
        }
    }
}
