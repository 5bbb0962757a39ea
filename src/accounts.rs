//! The ESME accounts as the running gateway sees them: regfile.conf's sections with their live
//! counters (binds, receivers per shard) and rate buckets, addressed by [`AccountId`] so that
//! the data path never looks an account up by name.
//!
//! The simulator accepts any system_id: its accounts are made on first bind, under a lock
//! taken only at bind time, in slots reserved at start (so a lookup by id stays lock-free).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::config::Account;
use crate::ids::AccountId;
use crate::limit::ShardedRate;

/// Accounts the simulator can make up at most.
const SIM_ACCOUNTS: usize = 4096;

/// One account and its live counters.
pub struct AccountState {
    pub id: AccountId,
    pub system_id: String,
    /// `smppserver/SYSTEM_ID`, as routes and the message log name it (shared, not copied).
    pub target: bytes::Bytes,
    /// Its regfile section; `None` for accounts the simulator made up.
    pub config: Option<Account>,
    pub binds: AtomicU32,
    /// Receiver and transceiver binds per shard, so any shard can find where to deliver.
    pub receivers: Box<[AtomicU32]>,
    /// `rate`, split between the shards by the binds each serves.
    pub rate: Option<ShardedRate>,
}

impl AccountState {
    fn new(
        id: AccountId,
        system_id: String,
        config: Option<Account>,
        shards: usize,
        epoch: Instant,
    ) -> AccountState {
        let rate = config
            .as_ref()
            .and_then(|a| ShardedRate::new(a.rate, shards, epoch));
        AccountState {
            id,
            target: bytes::Bytes::from(format!("smppserver/{system_id}")),
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

    /// Whether a receiver of this account is bound on any shard.
    pub fn has_receiver(&self) -> bool {
        self.receivers.iter().any(|r| r.load(Ordering::Relaxed) > 0)
    }
}

/// Every account, by id and by name.
pub struct Accounts {
    slots: Box<[OnceLock<Arc<AccountState>>]>,
    by_name: HashMap<String, AccountId>,
    configured: usize,
    /// Simulator accounts made so far, by name (bind time only).
    made: Mutex<HashMap<String, AccountId>>,
    simulated: bool,
    shards: usize,
    epoch: Instant,
}

impl Accounts {
    /// The accounts of regfile.conf; `simulated`: any system_id may bind and gets an account.
    pub fn new(configured: &[Account], simulated: bool, shards: usize, epoch: Instant) -> Accounts {
        let extra = if simulated { SIM_ACCOUNTS } else { 0 };
        let slots: Box<[OnceLock<Arc<AccountState>>]> = (0..configured.len() + extra)
            .map(|_| OnceLock::new())
            .collect();
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
            by_name,
            configured: configured.len(),
            made: Mutex::new(HashMap::new()),
            simulated,
            shards,
            epoch,
        }
    }

    /// The accounts of regfile.conf.
    pub fn configured(&self) -> impl Iterator<Item = &Arc<AccountState>> {
        self.slots[..self.configured].iter().filter_map(|s| s.get())
    }

    pub fn get(&self, id: AccountId) -> Option<&Arc<AccountState>> {
        self.slots.get(id).and_then(|s| s.get())
    }

    /// The account of regfile.conf with this system_id (or a simulator account made before).
    pub fn id_of(&self, system_id: &str) -> Option<AccountId> {
        if let Some(&id) = self.by_name.get(system_id) {
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

    /// The account a bind names: from regfile.conf, or (simulator) made on first use.
    pub fn for_bind(&self, system_id: &str) -> Option<Arc<AccountState>> {
        if let Some(&id) = self.by_name.get(system_id) {
            return self.get(id).cloned();
        }
        if !self.simulated {
            return None;
        }
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        let id = match made.get(system_id) {
            Some(&id) => id,
            None => {
                let id = self.configured + made.len();
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
