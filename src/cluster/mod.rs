//! Several nodes as one gateway, over NATS (`[cluster]` of ysmpp.conf).
//!
//! | file | job |
//! |---|---|
//! | `wire` | subjects, hand-offs, answers and announcements as bytes (pure) |
//! | `bridge` | the NATS client on its own thread (a single-threaded tokio runtime) |
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
    /// Hand message `id` (its hand-off encoded) to a node with a receiver of `system_id`;
    /// the result goes back to `shard`.
    HandOff {
        shard: ShardId,
        id: MessageId,
        system_id: Bytes,
        payload: Bytes,
    },
    /// A receiver of `system_id` bound (`up`) or went on this node.
    Receiver { system_id: Bytes, up: bool },
    /// The answer to the hand-off the bridge gave a shard as `token`.
    Answer { token: u64, answer: wire::Answer },
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
    /// A node announced a receiver of `system_id`: messages held for it go now.
    BoundElsewhere { system_id: Bytes },
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
}

/// The node's handle on the cluster, shared by shards, the admin endpoint and the bridge.
pub struct Cluster {
    pub config: ClusterConfig,
    tx: flume::Sender<ToBridge>,
    /// Each shard takes its receiver once, when it starts.
    shard_rx: Mutex<Vec<Option<flume::Receiver<FromBridge>>>>,
    pub stats: std::sync::Arc<Stats>,
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
        (!self.connected()).then(|| {
            let why = self.stats.last_error.lock().map(|e| e.clone()).unwrap_or_default();
            format!(
                "cluster {}: NATS not reachable{}; messages for ESMEs bound on other nodes are held",
                self.config.name,
                if why.is_empty() { String::new() } else { format!(" ({why})") }
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
        })
    }
}
