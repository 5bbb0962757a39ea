//! The ESME accounts as the running gateway sees them: regfile.conf's sections with their live
//! counters (binds, receivers per shard) and rate buckets, addressed by [`AccountId`] so that
//! the data path never looks an account up by name.
//!
//! A reload ([`Accounts::apply`]) changes them in place: an account keeps its id (and its
//! binds) while its settings change; a new one takes a free slot; a removed one is marked, so
//! its shards unbind its sessions, and keeps its slot (a later reload that brings it back gets
//! the same id). Settings are swapped, not locked: a bind or a message reads them without
//! writing a shared cache line.
//!
//! The simulator accepts any system_id: its accounts are made on first bind, under a lock
//! taken only at bind time, in slots reserved at start (so a lookup by id stays lock-free).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::config::Account;
use crate::ids::AccountId;
use crate::limit::ShardedRate;

/// Accounts the simulator can make up at most.
const SIM_ACCOUNTS: usize = 4096;

/// Accounts reloads can add beyond those at start.
const ADDED_ACCOUNTS: usize = 4096;

/// One account and its live counters.
pub struct AccountState {
    pub id: AccountId,
    pub system_id: String,
    /// `smppserver/SYSTEM_ID`, as routes and the message log name it (static: its clones count nothing).
    pub target: bytes::Bytes,
    /// `http/SYSTEM_ID`: the origin its HTTP submits are logged with (static, as `target`).
    pub http_origin: bytes::Bytes,
    /// Its regfile section, as last loaded; `None` for accounts the simulator made up.
    config: ArcSwapOption<Account>,
    /// Gone from regfile.conf (a reload): no new binds; its shards unbind its sessions.
    removed: AtomicBool,
    pub binds: AtomicU32,
    /// Receiver and transceiver binds per shard, so any shard can find where to deliver.
    pub receivers: Box<[AtomicU32]>,
    /// `rate`, split between the shards by the binds each serves (0: no limit).
    pub rate: ShardedRate,
}

impl AccountState {
    fn new(
        id: AccountId,
        system_id: String,
        config: Option<Account>,
        shards: usize,
        epoch: Instant,
    ) -> AccountState {
        let rate = ShardedRate::new(config.as_ref().map_or(0.0, |a| a.rate), shards, epoch);
        AccountState {
            id,
            target: crate::ids::static_name(format!("smppserver/{system_id}")),
            http_origin: crate::ids::static_name(format!("http/{system_id}")),
            system_id,
            config: ArcSwapOption::new(config.map(Arc::new)),
            removed: AtomicBool::new(false),
            binds: AtomicU32::new(0),
            receivers: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            rate,
        }
    }

    /// Its regfile section as last loaded (`None`: a simulator account).
    pub fn config(&self) -> Option<Arc<Account>> {
        self.config.load_full()
    }

    /// What data_coding 0 means to this account's ESMEs (without taking a reference).
    pub fn coding(&self) -> Option<crate::text::Charset> {
        self.config.load().as_ref().map(|c| c.coding)
    }

    /// Its receipt policy for long messages.
    pub fn receipts(&self) -> Option<crate::config::ReceiptPolicy> {
        self.config.load().as_ref().map(|c| c.receipts)
    }

    /// Whether a reload removed it.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// A shard other than `me` with a receiver of this account, starting after `me`.
    pub fn shard_with_receiver(&self, me: usize) -> Option<usize> {
        let n = self.receivers.len();
        (1..n)
            .map(|i| (me + i) % n)
            .find(|&s| self.receivers[s].load(Ordering::Relaxed) > 0)
    }

    /// Whether a receiver of this account is bound on any shard.
    pub fn has_receiver(&self) -> bool {
        self.receivers.iter().any(|r| r.load(Ordering::Relaxed) > 0)
    }
}

/// What a reload did to the accounts, by system_id.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AccountChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// With the keys that changed.
    pub changed: Vec<(String, Vec<&'static str>)>,
}

impl AccountChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Every account, by id and by name.
pub struct Accounts {
    slots: Box<[OnceLock<Arc<AccountState>>]>,
    /// regfile.conf's accounts now (removed ones are not here).
    by_name: ArcSwap<HashMap<String, AccountId>>,
    /// Every regfile account ever loaded, removed or not (reloads only).
    known: Mutex<HashMap<String, AccountId>>,
    /// Slots used by regfile accounts (the first `used`; simulator accounts come after
    /// `ADDED_ACCOUNTS` spare ones).
    used: AtomicUsize,
    reserved: usize,
    /// Simulator accounts made so far, by name (bind time only).
    made: Mutex<HashMap<String, AccountId>>,
    simulated: bool,
    shards: usize,
    epoch: Instant,
}

impl Accounts {
    /// The accounts of regfile.conf; `simulated`: any system_id may bind and gets an account.
    pub fn new(configured: &[Account], simulated: bool, shards: usize, epoch: Instant) -> Accounts {
        let reserved = configured.len() + ADDED_ACCOUNTS;
        let extra = if simulated { SIM_ACCOUNTS } else { 0 };
        let slots: Box<[OnceLock<Arc<AccountState>>]> =
            (0..reserved + extra).map(|_| OnceLock::new()).collect();
        let mut by_name = HashMap::new();
        for (i, a) in configured.iter().enumerate() {
            let _ = slots[i].set(Arc::new(AccountState::new(
                i,
                a.system_id.clone(),
                Some(a.clone()),
                shards,
                epoch,
            )));
            by_name.insert(a.system_id.clone(), i);
        }
        Accounts {
            slots,
            known: Mutex::new(by_name.clone()),
            by_name: ArcSwap::from_pointee(by_name),
            used: AtomicUsize::new(configured.len()),
            reserved,
            made: Mutex::new(HashMap::new()),
            simulated,
            shards,
            epoch,
        }
    }

    /// The accounts of regfile.conf as loaded last (not the removed ones).
    pub fn configured(&self) -> impl Iterator<Item = &Arc<AccountState>> {
        let used = self.used.load(Ordering::Acquire).min(self.slots.len());
        self.slots[..used]
            .iter()
            .filter_map(|s| s.get())
            .filter(|a| !a.is_removed())
    }

    pub fn get(&self, id: AccountId) -> Option<&Arc<AccountState>> {
        self.slots.get(id).and_then(|s| s.get())
    }

    /// The account of regfile.conf with this system_id (or a simulator account made before).
    pub fn id_of(&self, system_id: &str) -> Option<AccountId> {
        if let Some(&id) = self.by_name.load().get(system_id) {
            return Some(id);
        }
        if !self.simulated {
            return None;
        }
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(system_id)
            .copied()
    }

    /// The regfile account of this name, removed or not.
    pub fn any_named(&self, system_id: &str) -> Option<&Arc<AccountState>> {
        let id = *self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(system_id)?;
        self.get(id)
    }

    /// The account a bind names: from regfile.conf, or (simulator) made on first use.
    pub fn for_bind(&self, system_id: &str) -> Option<Arc<AccountState>> {
        if let Some(&id) = self.by_name.load().get(system_id) {
            return self.get(id).cloned();
        }
        if !self.simulated {
            return None;
        }
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        let id = match made.get(system_id) {
            Some(&id) => id,
            None => {
                let id = self.reserved + made.len();
                let slot = self.slots.get(id)?;
                let _ = slot.set(Arc::new(AccountState::new(
                    id,
                    system_id.to_string(),
                    None,
                    self.shards,
                    self.epoch,
                )));
                made.insert(system_id.to_string(), id);
                id
            }
        };
        self.get(id).cloned()
    }

    /// Why `apply` would refuse these accounts (more new ones than slots left), if it would.
    pub fn check_room(&self, accounts: &[Account]) -> Result<(), String> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        self.room_for(&known, accounts).map(|_| ())
    }

    /// The slots in use now, if `accounts` fit beside them; else why not.
    fn room_for(
        &self,
        known: &HashMap<String, AccountId>,
        accounts: &[Account],
    ) -> Result<usize, String> {
        let new_names = accounts
            .iter()
            .filter(|a| !known.contains_key(&a.system_id))
            .count();
        let used = self.used.load(Ordering::Acquire);
        if used + new_names > self.reserved {
            return Err(format!(
                "regfile.conf: {new_names} new accounts, but only {} more can be added without a restart",
                self.reserved - used
            ));
        }
        Ok(used)
    }

    /// Installs regfile.conf as loaded again: settings change in place (binds stay), new
    /// accounts take free slots, removed ones are marked (their shards unbind them). Called by
    /// the control shard only. Fails, changing nothing, when more accounts were added than
    /// slots are left.
    pub fn apply(&self, accounts: &[Account]) -> Result<AccountChanges, String> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let used = self.room_for(&known, accounts)?;
        let mut changes = AccountChanges::default();
        let mut by_name = HashMap::with_capacity(accounts.len());
        let mut next = used;
        for a in accounts {
            let id = match known.get(&a.system_id) {
                Some(&id) => id,
                None => {
                    let id = next;
                    next += 1;
                    let _ = self.slots[id].set(Arc::new(AccountState::new(
                        id,
                        a.system_id.clone(),
                        Some(a.clone()),
                        self.shards,
                        self.epoch,
                    )));
                    known.insert(a.system_id.clone(), id);
                    changes.added.push(a.system_id.clone());
                    by_name.insert(a.system_id.clone(), id);
                    continue;
                }
            };
            by_name.insert(a.system_id.clone(), id);
            let Some(state) = self.get(id) else { continue };
            let old = state.config();
            if state.removed.swap(false, Ordering::Relaxed) {
                changes.added.push(a.system_id.clone());
            } else if let Some(old) = &old {
                let keys = old.changed_keys(a);
                if !keys.is_empty() {
                    changes.changed.push((a.system_id.clone(), keys));
                }
            }
            if old.as_deref() != Some(a) {
                state.config.store(Some(Arc::new(a.clone())));
                if state.rate.total() != a.rate.max(0.0) {
                    state.rate.set_total(a.rate);
                }
            }
        }
        for (name, &id) in known.iter() {
            if by_name.contains_key(name) {
                continue;
            }
            if let Some(state) = self.get(id) {
                if !state.removed.swap(true, Ordering::Relaxed) {
                    changes.removed.push(name.clone());
                }
            }
        }
        changes.removed.sort();
        self.used.store(next, Ordering::Release);
        self.by_name.store(Arc::new(by_name));
        Ok(changes)
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
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"demo", b"demo"));
        assert!(!constant_time_eq(b"demo", b"demO"));
        assert!(!constant_time_eq(b"demo", b"demo1"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn simulator_accounts_are_made_once_and_found_by_id() {
        let a = Accounts::new(&[], true, 2, Instant::now());
        let x = a.for_bind("x").unwrap();
        assert_eq!(a.for_bind("x").unwrap().id, x.id);
        assert_eq!(a.id_of("x"), Some(x.id));
        assert_eq!(a.get(x.id).unwrap().system_id, "x");
        let strict = Accounts::new(&[], false, 2, Instant::now());
        assert!(strict.for_bind("x").is_none());
    }
}
