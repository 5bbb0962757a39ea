//! State shared by all shards: the configuration, the accounts with their live counters, the
//! connection count, the stop flag. Everything here is read-mostly and lock-free on the data
//! path (atomics); the account registry's lock is taken only at bind time, and only in
//! simulator mode, where accounts appear on first bind.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{Account, Config};
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

/// A generic cell rate limiter (a token bucket kept as one atomic "theoretical arrival
/// time"): `rate` per second with a burst of one second's worth.
pub struct RateLimiter {
    interval_ns: u64,
    burst_ns: u64,
    tat: AtomicU64,
    epoch: Instant,
}

impl RateLimiter {
    /// `None` when `rate` is 0 (no limit).
    pub fn new(rate: f64, epoch: Instant) -> Option<RateLimiter> {
        (rate > 0.0).then(|| {
            let interval_ns = (1e9 / rate).max(1.0) as u64;
            RateLimiter {
                interval_ns,
                burst_ns: 1_000_000_000u64.max(interval_ns),
                tat: AtomicU64::new(0),
                epoch,
            }
        })
    }

    /// When `n` tokens will be there (now, if they are).
    pub fn available_at(&self, n: u32, now: Instant) -> Instant {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let next = self.tat.load(Ordering::Relaxed).max(now_ns) + self.interval_ns * n as u64;
        let ready_ns = next.saturating_sub(self.burst_ns);
        self.epoch + Duration::from_nanos(ready_ns.max(now_ns))
    }

    /// Takes `n` tokens if there are; false means throttle. More than a second's worth at
    /// once costs a second's worth (a full bucket), so that it can pass at all.
    pub fn try_take(&self, n: u32, now: Instant) -> bool {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let cost = (self.interval_ns * n as u64).min(self.burst_ns);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now_ns);
            let next = start + cost;
            if next > now_ns + self.burst_ns {
                return false;
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(t) => tat = t,
            }
        }
    }
}

/// One account and its live counters.
pub struct AccountState {
    pub system_id: String,
    /// Its regfile section; `None` for accounts the simulator made up.
    pub config: Option<Account>,
    pub binds: AtomicU32,
    /// Receiver and transceiver binds per shard, so any shard can find where to deliver.
    pub receivers: Box<[AtomicU32]>,
    pub rate: Option<RateLimiter>,
}

impl AccountState {
    fn new(
        system_id: String,
        config: Option<Account>,
        shards: usize,
        epoch: Instant,
    ) -> AccountState {
        let rate = config
            .as_ref()
            .and_then(|a| RateLimiter::new(a.rate, epoch));
        AccountState {
            system_id,
            config,
            binds: AtomicU32::new(0),
            receivers: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            rate,
        }
    }

    /// A shard other than `me` with a receiver of this account, starting after `me`.
    pub fn shard_with_receiver(&self, me: usize) -> Option<usize> {
        let n = self.receivers.len();
        (1..n)
            .map(|i| (me + i) % n)
            .find(|&s| self.receivers[s].load(Ordering::Relaxed) > 0)
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

/// Totals kept across shards, for the log and the exit summary.
#[derive(Default)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub receipts_sent: AtomicU64,
    pub receipts_acked: AtomicU64,
    pub receipts_dropped: AtomicU64,
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
    /// Seconds since 1970 at start: the high part of every message id.
    pub start_secs: u32,
    pub connections: AtomicUsize,
    pub stopping: AtomicBool,
    pub counters: Counters,
    /// The client links, in `clients=` order.
    pub links: Vec<Arc<crate::upstream::LinkShared>>,
    /// The link `default_route` names.
    pub default_link: Option<usize>,
    /// regexroute.conf, when the configuration directory has one.
    pub routes: RouteSlot,
    accounts: Mutex<HashMap<String, Arc<AccountState>>>,
    configured: Vec<Arc<AccountState>>,
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
        let links: Vec<Arc<crate::upstream::LinkShared>> = config
            .clients
            .iter()
            .zip(tls.into_iter().chain(std::iter::repeat(None)))
            .enumerate()
            .map(|(i, (c, tls))| {
                Arc::new(crate::upstream::LinkShared::new(
                    i,
                    c.clone(),
                    shards,
                    tls,
                    epoch,
                ))
            })
            .collect();
        let default_link = config
            .general
            .default_route
            .as_ref()
            .and_then(|r| config.clients.iter().position(|c| &c.name == r));
        let configured: Vec<Arc<AccountState>> = config
            .accounts
            .iter()
            .map(|a| {
                Arc::new(AccountState::new(
                    a.system_id.clone(),
                    Some(a.clone()),
                    shards,
                    epoch,
                ))
            })
            .collect();
        Shared {
            config,
            mode,
            shards,
            epoch,
            start_secs,
            connections: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            counters: Counters::default(),
            links,
            default_link,
            routes: RouteSlot::default(),
            accounts: Mutex::new(HashMap::new()),
            configured,
        }
    }

    /// The account a bind names: from regfile.conf, or (simulator) made on first use.
    pub fn account(&self, system_id: &str) -> Option<Arc<AccountState>> {
        if let Some(a) = self.configured.iter().find(|a| a.system_id == system_id) {
            return Some(a.clone());
        }
        match self.mode {
            Mode::Terminating => None,
            Mode::Simulator(_) => {
                let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
                Some(
                    map.entry(system_id.to_string())
                        .or_insert_with(|| {
                            Arc::new(AccountState::new(
                                system_id.to_string(),
                                None,
                                self.shards,
                                self.epoch,
                            ))
                        })
                        .clone(),
                )
            }
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xFF);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_a_burst_of_one_second_then_the_rate() {
        let t0 = Instant::now();
        let r = RateLimiter::new(10.0, t0).unwrap();
        let granted = (0..20).filter(|_| r.try_take(1, t0)).count();
        assert_eq!(granted, 10);
        assert!(!r.try_take(1, t0));
        assert!(r.try_take(1, t0 + Duration::from_millis(101)));
        assert!(RateLimiter::new(0.0, t0).is_none());
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"demo", b"demo"));
        assert!(!constant_time_eq(b"demo", b"demO"));
        assert!(!constant_time_eq(b"demo", b"demo1"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
