//! Several nodes as one gateway, over NATS (`[cluster]` of ysmpp.conf).
//!
//! | file | job |
//! |---|---|
//! | `wire` | subjects, hand-offs, answers and announcements as bytes (pure) |
//! | `bridge` | the NATS client on its own thread (a single-threaded tokio runtime) |
//! | `leases` | which node binds each upstream link (JetStream KV), for the bridge |
//! | this file | what shards and the bridge say to each other, and the node's cluster view |
//!
//! A message for an ESME (a receipt, an MO, a message routed to `smppserver/ID`) that has
//! no receiver bound on this node is handed to a node that has one: a NATS request to the
//! ESME's subject, answered once the other node's log has committed it. Until then the
//! message stays in this node's log, so a lost answer gives a duplicate (dropped there by
//! node and message id), never a loss. "No responders" means no node holds a receiver of
//! it: the message stays held here and goes when a node announces a receiver of it (or at
//! the next periodic try). Shards never run tokio: they talk to the bridge over bounded
//! channels that work across runtimes, and a shard never waits for NATS.

pub mod bridge;
mod leases;
pub mod wire;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use crate::config::ClusterConfig;
use crate::ids::{MessageId, ShardId};

/// Commands a shard gives the bridge waits in a queue this long at most; beyond it a hand-off
/// is refused for now (the message stays held and is tried again).
pub const BRIDGE_QUEUE: usize = 8192;
/// What the bridge gives one shard.
pub const SHARD_QUEUE: usize = 4096;

/// What shards ask of the bridge.
pub enum ToBridge {
    /// Hand message `id` (its hand-off encoded) to the node that takes `to`; the result goes
    /// back to `shard`.
    HandOff {
        shard: ShardId,
        id: MessageId,
        to: Dest,
        payload: Bytes,
    },
    /// Ask the other nodes about a receipt that matches no message here (`payload`: a
    /// [`wire::encode_receipt_ask`]); whether one took it goes back to `shard` as `token`.
    AskReceipt {
        shard: ShardId,
        token: u64,
        payload: Bytes,
    },
    /// A receiver of `system_id` bound (`up`) or went on this node.
    Receiver { system_id: Bytes, up: bool },
    /// The answer to the hand-off (or question) the bridge gave a shard as `token`.
    Answer { token: u64, answer: wire::Answer },
}

/// Where a hand-off goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// To a node with a receiver of this ESME (its system_id).
    Esme(Bytes),
    /// To the node that holds the lease on this upstream link (its name).
    Link(String),
}

/// How a hand-off went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandedOff {
    /// Node `0` committed it: it is that node's now.
    Committed(String),
    /// No node holds a receiver of the ESME.
    NoResponders,
    /// The node that took it had no room.
    Full,
    /// Refused, not answered in time, or NATS is not reachable: why.
    Failed(String),
}

/// What the bridge gives a shard.
pub enum FromBridge {
    /// How the hand-off of message `id` went.
    Handed { id: MessageId, result: HandedOff },
    /// A message from another node: log it, deliver it, answer `token` once committed.
    Adopt {
        token: u64,
        handoff: Box<wire::Handoff>,
    },
    /// A node announced a receiver of `system_id`: messages held for it go now (empty: every
    /// held message, for the ESMEs and the links of other nodes, is offered again).
    BoundElsewhere { system_id: Bytes },
    /// Another node asks about a receipt: take it if it is for a message here and answer
    /// `token` once it is logged; say nothing otherwise.
    Receipt {
        token: u64,
        ask: Box<wire::ReceiptAsk>,
    },
    /// Whether another node took the receipt this shard asked about as `token`.
    Asked { token: u64, taken: bool },
    /// Which links this node may bind changed (see [`Cluster::link_here`]).
    Leases,
}

/// Who owns a link's binds, as this node last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseView {
    /// The owner's node name (empty: nobody, or not known yet).
    pub owner: String,
    /// Whether this node holds it (and so binds the link).
    pub mine: bool,
}

/// The node's view of the link leases.
#[derive(Default)]
pub struct Leases {
    /// The first round has decided (until then no link binds: leases may be in force).
    pub settled: bool,
    /// Leases are in force (the KV bucket is there); without them every node binds its links.
    pub active: bool,
    /// NATS has been away longer than a lease: this node binds all its links (no other node
    /// can be told otherwise) and says so.
    pub alone: bool,
    pub links: std::collections::BTreeMap<String, LeaseView>,
}

/// Counters of the node's cluster traffic (for `/status` and metrics).
#[derive(Default)]
pub struct Stats {
    pub connected: AtomicBool,
    pub handoffs_out: AtomicU64,
    pub handoffs_in: AtomicU64,
    pub duplicates_in: AtomicU64,
    pub no_responders: AtomicU64,
    pub failed_out: AtomicU64,
    pub refused_in: AtomicU64,
    /// Nodes heard from (announcements).
    pub peers: Mutex<BTreeSet<String>>,
    /// Why NATS is not reachable (empty when it is).
    pub last_error: Mutex<String>,
    pub receipts_asked: AtomicU64,
    pub receipts_taken_elsewhere: AtomicU64,
    pub receipts_taken_here: AtomicU64,
    pub lease_changes: AtomicU64,
    /// Since when NATS is away (none while connected). Set by the client's event callback,
    /// which runs beside the bridge loop: a loop busy with a slow request does not delay it.
    pub away_since: Mutex<Option<std::time::Instant>>,
}

/// The node's handle on the cluster, shared by shards, the admin endpoint and the bridge.
pub struct Cluster {
    pub config: ClusterConfig,
    tx: flume::Sender<ToBridge>,
    /// Each shard takes its receiver once, when it starts.
    shard_rx: Mutex<Vec<Option<flume::Receiver<FromBridge>>>>,
    pub stats: std::sync::Arc<Stats>,
    /// Link leases, as the bridge last saw them (read by shards only when `FromBridge::Leases`
    /// says they changed, and by the admin endpoint).
    pub leases: Mutex<Leases>,
    /// The names of this node's upstream links (the bridge takes leases on them).
    pub links: Mutex<Vec<String>>,
    /// Messages held here for ESMEs and links of other nodes, per shard (set by the shards).
    pub held: Box<[AtomicU64]>,
}

impl Cluster {
    /// The bridge's side of the channels, for [`bridge::start`].
    fn new(config: ClusterConfig, shards: usize) -> (Cluster, bridge::Ends) {
        let (tx, rx) = flume::bounded(BRIDGE_QUEUE);
        let (to_shards, shard_rx): (Vec<_>, Vec<_>) = (0..shards.max(1))
            .map(|_| flume::bounded(SHARD_QUEUE))
            .unzip();
        let stats = std::sync::Arc::new(Stats::default());
        (
            Cluster {
                config,
                tx,
                shard_rx: Mutex::new(shard_rx.into_iter().map(Some).collect()),
                stats: stats.clone(),
                leases: Mutex::new(Leases::default()),
                links: Mutex::new(Vec::new()),
                held: (0..shards.max(1)).map(|_| AtomicU64::new(0)).collect(),
            },
            bridge::Ends {
                rx,
                to_shards,
                stats,
            },
        )
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.config.node
    }

    /// Shard `shard`'s end of what the bridge sends (once).
    pub fn take_receiver(&self, shard: ShardId) -> Option<flume::Receiver<FromBridge>> {
        self.shard_rx
            .lock()
            .ok()?
            .get_mut(shard)
            .and_then(Option::take)
    }

    /// Gives the bridge a command without waiting; `Err` gives it back when the bridge's
    /// queue is full (or the bridge is gone).
    #[allow(clippy::result_large_err)] // the command comes back to its sender
    pub fn send(&self, cmd: ToBridge) -> Result<(), ToBridge> {
        self.tx.try_send(cmd).map_err(|e| e.into_inner())
    }

    /// Whether this node may bind link `name` now: leases are not in force, this node holds
    /// its lease, or NATS has been away longer than a lease (and not before the bridge has
    /// found out which).
    pub fn link_here(&self, name: &str) -> bool {
        let Ok(l) = self.leases.lock() else {
            return true;
        };
        l.settled && (!l.active || l.alone || l.links.get(name).is_some_and(|v| v.mine))
    }

    /// Tells the bridge which upstream links this node has (at the start and after a reload).
    pub fn set_links(&self, names: Vec<String>) {
        if let Ok(mut l) = self.links.lock() {
            *l = names;
        }
    }

    /// Whether the bridge is connected to a NATS server now.
    pub fn connected(&self) -> bool {
        self.stats.connected.load(Ordering::Relaxed)
    }

    /// Sets the cluster's metrics to what the counters say (before a scrape renders them).
    pub fn publish_metrics(&self) {
        let s = &self.stats;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metrics::gauge!("smppgw_cluster_connected").set(f64::from(u8::from(self.connected())));
        let peers = s.peers.lock().map_or(0, |p| p.len());
        metrics::gauge!("smppgw_cluster_peers_seen").set(peers as f64);
        let held: u64 = self.held.iter().map(|h| h.load(Ordering::Relaxed)).sum();
        metrics::gauge!("smppgw_cluster_held_for_remote").set(held as f64);
        if let Ok(l) = self.leases.lock() {
            for (name, v) in &l.links {
                metrics::gauge!("smppgw_cluster_lease_mine", "link" => name.clone())
                    .set(f64::from(u8::from(v.mine || !l.active || l.alone)));
            }
        }
        for (result, v) in [
            ("asked", n(&s.receipts_asked)),
            ("taken_elsewhere", n(&s.receipts_taken_elsewhere)),
            ("taken_here", n(&s.receipts_taken_here)),
        ] {
            metrics::counter!("smppgw_cluster_receipt_questions_total", "result" => result)
                .absolute(v);
        }
        metrics::counter!("smppgw_cluster_lease_changes_total").absolute(n(&s.lease_changes));
        for (dir, result, v) in [
            ("out", "committed", n(&s.handoffs_out)),
            ("out", "no_responders", n(&s.no_responders)),
            ("out", "failed", n(&s.failed_out)),
            ("in", "committed", n(&s.handoffs_in)),
            ("in", "duplicate", n(&s.duplicates_in)),
            ("in", "refused", n(&s.refused_in)),
        ] {
            metrics::counter!("smppgw_cluster_handoffs_total", "direction" => dir, "result" => result)
                .absolute(v);
        }
    }

    /// What `/health` says about the cluster (the node serves its own ESMEs without NATS,
    /// so this is a warning, not a failure).
    pub fn health_warning(&self) -> Option<String> {
        let alone = self.leases.lock().is_ok_and(|l| l.alone);
        (!self.connected()).then(|| {
            let why = self.stats.last_error.lock().map(|e| e.clone()).unwrap_or_default();
            format!(
                "cluster {}: NATS not reachable{}; messages for ESMEs and links of other nodes are held{}",
                self.config.name,
                if why.is_empty() { String::new() } else { format!(" ({why})") },
                if alone {
                    "; longer than a lease: this node binds all its links"
                } else {
                    ""
                }
            )
        })
    }

    /// The `/status` view.
    pub fn status_json(&self) -> serde_json::Value {
        let s = &self.stats;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "node": self.config.node,
            "cluster": self.config.name,
            "nats": self.config.nats,
            "connected": self.connected(),
            "last_error": s.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
            "peers_seen": s.peers.lock().map(|p| p.iter().cloned().collect::<Vec<_>>()).unwrap_or_default(),
            "handoffs_out": n(&s.handoffs_out),
            "handoffs_in": n(&s.handoffs_in),
            "duplicates_in": n(&s.duplicates_in),
            "no_responders": n(&s.no_responders),
            "handoffs_failed": n(&s.failed_out),
            "handoffs_refused": n(&s.refused_in),
            "held_for_remote": self.held.iter().map(|h| h.load(Ordering::Relaxed)).sum::<u64>(),
            "receipts_asked": n(&s.receipts_asked),
            "receipts_taken_elsewhere": n(&s.receipts_taken_elsewhere),
            "receipts_taken_here": n(&s.receipts_taken_here),
            "leases": self.leases.lock().map(|l| serde_json::json!({
                "settled": l.settled,
                "active": l.active,
                "alone": l.alone,
                "lease": crate::config::value::duration_text(self.config.lease),
                "links": l.links.iter().map(|(k, v)| (k.clone(), serde_json::json!({
                    "owner": v.owner,
                    "mine": v.mine,
                }))).collect::<serde_json::Map<_, _>>(),
            })).unwrap_or_default(),
        })
    }
}
