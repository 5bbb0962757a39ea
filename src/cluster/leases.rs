//! Link leases (see the README's Cluster section): which node binds each upstream link, kept
//! in a JetStream KV bucket by the bridge (create, compare-and-set renewals every third of a
//! lease, take-over when an entry expires), and the node's own view of them for the shards.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use log::{debug, info, warn};

use super::bridge::{forward, Bridge};
use super::wire;
use super::{FromBridge, LeaseView};

/// A lease this node holds.
pub(super) struct Lease {
    /// The revision of its entry this node last wrote.
    rev: u64,
    /// When it was last written (when the write was sent).
    renewed: Instant,
    /// The subscription taking the link's hand-offs.
    handoffs: Option<tokio::task::JoinHandle<()>>,
}

/// The leases this node holds and how it holds them.
#[derive(Default)]
pub(super) struct Held {
    /// The bucket, once there (JetStream may be off on the server).
    pub(super) kv: Option<kv::Store>,
    /// Whether the missing bucket was reported.
    pub(super) reported: bool,
    /// The leases held, by link name.
    pub(super) mine: HashMap<String, Lease>,
}

impl Bridge {
    /// Takes, renews or gives up the leases on this node's links (every third of a lease,
    /// and when NATS comes back).
    pub(super) async fn lease_round(&mut self) {
        let lease = self.cfg.lease;
        if !self.ends.stats.connected.load(Ordering::Relaxed) {
            let long = self
                .ends
                .stats
                .away_since
                .lock()
                .is_ok_and(|a| a.is_some_and(|t| t.elapsed() >= lease));
            if long && self.set_alone(true) {
                warn!(
                    "cluster {}: NATS away longer than a lease ({}): node {} binds all its links until it is back",
                    self.cfg.name,
                    crate::config::value::duration_text(lease),
                    self.cfg.node
                );
            }
            return;
        }
        let Some(kv) = self.bucket().await else {
            // No leases: every node binds its links.
            let first = self.shared.leases.lock().is_ok_and(|mut l| {
                let first = !l.settled || l.active;
                l.settled = true;
                l.active = false;
                first
            });
            if first {
                self.leases_changed();
            }
            return;
        };
        let names = self
            .shared
            .links
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let mut views = std::collections::BTreeMap::new();
        let mut changed = false;
        for name in &names {
            // NATS went away during the round: what was not renewed waits for it (the lease
            // logic above decides when this node stops waiting).
            if !self.ends.stats.connected.load(Ordering::Relaxed) {
                return;
            }
            let key = wire::lease_key(name);
            let had = self.held.mine.get(name).map(|m| m.rev);
            // Taken before asking: the entry expires a lease after it was written, which is
            // no earlier than this.
            let asked = Instant::now();
            let renewed = match had {
                Some(rev) => kv
                    .update(&key, self.cfg.node.clone().into(), rev)
                    .await
                    .ok(),
                None => None,
            };
            let (rev, owner) = match renewed {
                Some(rev) => (Some(rev), self.cfg.node.clone()),
                None => self.take(&kv, &key).await,
            };
            let mine = match (self.held.mine.get_mut(name), rev) {
                (Some(m), Some(rev)) => {
                    m.rev = rev;
                    m.renewed = asked;
                    true
                }
                (None, Some(rev)) => {
                    info!(
                        "cluster {}: node {} holds the lease on link {name}: it binds the link",
                        self.cfg.name, self.cfg.node
                    );
                    let handoffs = self.take_link_handoffs(name).await;
                    self.held.mine.insert(
                        name.clone(),
                        Lease {
                            rev,
                            renewed: asked,
                            handoffs,
                        },
                    );
                    changed = true;
                    true
                }
                // Not renewed, and no other node holds it: NATS did not answer in time (a
                // busy or restarting server). The lease is this node's until it would
                // expire; only then, or when another node has it, is it given up.
                (Some(m), None)
                    if (owner.is_empty() || owner == self.cfg.node)
                        && m.renewed.elapsed() < lease =>
                {
                    debug!(
                        "cluster {}: the lease on link {name} was not renewed this round (last renewed {:?} ago)",
                        self.cfg.name,
                        m.renewed.elapsed()
                    );
                    true
                }
                (Some(_), None) => {
                    warn!(
                        "cluster {}: node {} lost the lease on link {name} (owner now: {}): it unbinds the link",
                        self.cfg.name,
                        self.cfg.node,
                        if owner.is_empty() { "none" } else { &owner }
                    );
                    if let Some(Lease {
                        handoffs: Some(task),
                        ..
                    }) = self.held.mine.remove(name)
                    {
                        task.abort();
                    }
                    changed = true;
                    false
                }
                (None, None) => false,
            };
            views.insert(
                name.clone(),
                LeaseView {
                    mine,
                    owner: if mine { self.cfg.node.clone() } else { owner },
                },
            );
        }
        // Links gone from this node's configuration: their leases are given up.
        let gone: Vec<String> = self
            .held
            .mine
            .keys()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(held) = self.held.mine.remove(&name) {
                if let Some(t) = held.handoffs {
                    t.abort();
                }
                let _ = kv.delete(wire::lease_key(&name)).await;
                changed = true;
            }
        }
        let was_alone = self.set_alone(false);
        if was_alone {
            info!(
                "cluster {}: NATS is back: node {} binds only the links it holds leases on",
                self.cfg.name, self.cfg.node
            );
        }
        let mut first = false;
        if let Ok(mut l) = self.shared.leases.lock() {
            first = !l.active || !l.settled;
            l.settled = true;
            l.active = true;
            changed |= l.links != views;
            l.links = views;
        }
        if changed || was_alone || first {
            self.ends
                .stats
                .lease_changes
                .fetch_add(1, Ordering::Relaxed);
            self.leases_changed();
        }
    }

    /// Takes the lease `key` when nobody holds it (or this node did, before it restarted):
    /// its revision when taken, and the owner seen.
    async fn take(&self, kv: &kv::Store, key: &str) -> (Option<u64>, String) {
        let me = &self.cfg.node;
        if let Ok(rev) = kv.create(key, me.clone().into()).await {
            return (Some(rev), me.clone());
        }
        match kv.entry(key).await {
            Ok(Some(e)) if e.operation == kv::Operation::Put => {
                let owner = String::from_utf8_lossy(&e.value).into_owned();
                if &owner == me {
                    // This node's from before it restarted: it is this node's again.
                    if let Ok(rev) = kv.update(key, me.clone().into(), e.revision).await {
                        return (Some(rev), owner);
                    }
                }
                (None, owner)
            }
            _ => (None, String::new()),
        }
    }

    /// Hand-offs for link `name` come to this node while it holds the lease.
    async fn take_link_handoffs(&self, name: &str) -> Option<tokio::task::JoinHandle<()>> {
        let subject = wire::link_subject(&self.cfg.name, name);
        match self
            .client
            .queue_subscribe(subject.clone(), wire::QUEUE.into())
            .await
        {
            Ok(sub) => Some(tokio::spawn(forward(sub, self.requests.clone()))),
            Err(e) => {
                warn!("cluster: cannot subscribe to {subject}: {e}");
                None
            }
        }
    }

    /// The lease bucket: opened, or made when missing. None when JetStream is not there
    /// (leases are then not in force: every node binds its links).
    async fn bucket(&mut self) -> Option<kv::Store> {
        if let Some(kv) = &self.held.kv {
            return Some(kv.clone());
        }
        let mut js = async_nats::jetstream::new(self.client.clone());
        // A renewal not answered within a quarter of a lease is of no use, and a bridge
        // waiting on it longer (JetStream's own default is 5 s a request) would renew its
        // other leases late.
        js.set_timeout(
            (self.cfg.lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)),
        );
        let bucket = wire::lease_bucket(&self.cfg.name);
        let made = match js.get_key_value(&bucket).await {
            Ok(kv) => Ok(kv),
            Err(_) => {
                js.create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    description: "smppgw link leases".into(),
                    history: 1,
                    max_age: self.cfg.lease,
                    storage: async_nats::jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
            }
        };
        match made {
            Ok(kv) => {
                info!(
                    "cluster {}: link leases in the JetStream bucket {bucket} (lease {})",
                    self.cfg.name,
                    crate::config::value::duration_text(self.cfg.lease)
                );
                self.held.kv = Some(kv.clone());
                Some(kv)
            }
            Err(e) => {
                if !self.held.reported {
                    self.held.reported = true;
                    warn!(
                        "cluster {}: no JetStream bucket {bucket} for link leases ({e}); run nats-server with JetStream (-js): until then every node binds its links, and receipts that land on another node are found by asking",
                        self.cfg.name
                    );
                }
                None
            }
        }
    }

    /// Sets whether the node binds all its links for want of NATS; whether that changed.
    fn set_alone(&mut self, alone: bool) -> bool {
        let changed = self
            .shared
            .leases
            .lock()
            .map(|mut l| {
                l.settled |= alone;
                std::mem::replace(&mut l.alone, alone) != alone
            })
            .unwrap_or(false);
        if changed {
            self.leases_changed();
        }
        changed
    }

    fn leases_changed(&self) {
        for tx in &self.ends.to_shards {
            let _ = tx.try_send(FromBridge::Leases);
        }
    }
}
