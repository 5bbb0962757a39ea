//! The bridge: one thread with a single-threaded tokio runtime and the NATS client. It turns
//! shards' commands into NATS requests and publications, and NATS traffic into work for the
//! shards. Nothing on it blocks a shard: both directions are bounded channels, and a shard
//! only ever tries to send.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_nats::{Client, ConnectOptions, Event, RequestErrorKind, ServerAddr, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use log::{debug, info, warn};
use tokio::sync::{mpsc, Semaphore};

use super::wire::{self, Answer};
use super::{Cluster, Dest, FromBridge, HandedOff, Stats, ToBridge};
use crate::config::ClusterConfig;

/// Hand-offs in flight at once; beyond it a hand-off comes back at once as without room (the
/// message stays held and is offered again).
const IN_FLIGHT: usize = 1024;
/// Message keys (node, id) committed here that a repeated hand-off is recognised by.
const REMEMBERED: usize = 200_000;

/// The bridge's ends of the channels.
pub struct Ends {
    pub(super) rx: flume::Receiver<ToBridge>,
    pub(super) to_shards: Vec<flume::Sender<FromBridge>>,
    pub(super) stats: Arc<Stats>,
}

/// Starts the bridge thread for `config` with `shards` shards. It connects in the background
/// (and keeps trying): a node whose NATS is not reachable starts and serves its own ESMEs.
pub fn start(config: &ClusterConfig, shards: usize) -> Result<Arc<Cluster>, String> {
    let urls: Vec<ServerAddr> = config
        .nats
        .iter()
        .map(|u| u.parse().map_err(|e| format!("[cluster] nats={u}: {e}")))
        .collect::<Result<_, _>>()?;
    let (cluster, ends) = Cluster::new(config.clone(), shards);
    let cluster = Arc::new(cluster);
    let shared = cluster.clone();
    let cfg = config.clone();
    std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    warn!("cluster: cannot start the NATS bridge's runtime: {e}");
                    return;
                }
            };
            rt.block_on(run(cfg, urls, ends, shared));
        })
        .map_err(|e| format!("cannot start the cluster bridge thread: {e}"))?;
    info!(
        "cluster {}: node {} over NATS at {} (hand-offs wait {:?} for a commit)",
        config.name,
        config.node,
        config.nats.join(", "),
        config.handoff_timeout
    );
    Ok(cluster)
}

async fn connect(
    cfg: &ClusterConfig,
    urls: Vec<ServerAddr>,
    events: mpsc::UnboundedSender<Event>,
    stats: Arc<Stats>,
) -> Result<Client, String> {
    let (name, node) = (cfg.name.clone(), cfg.node.clone());
    let mut opts = ConnectOptions::new()
        .name(format!("smppgw {}", cfg.node))
        .retry_on_initial_connect()
        .request_timeout(Some(cfg.handoff_timeout))
        .event_callback(move |ev| {
            // The connection's state is kept here, in the order the client reports it, and
            // not in the bridge loop, which may be waiting on a request NATS will never
            // answer (a lease renewal sent just before the server went away).
            connection_changed(&name, &node, &stats, &ev);
            let events = events.clone();
            async move {
                let _ = events.send(ev);
            }
        });
    if let Some(creds) = &cfg.credentials {
        opts = opts
            .credentials_file(creds)
            .await
            .map_err(|e| format!("[cluster] credentials={creds}: {e}"))?;
    }
    if let Some(ca) = &cfg.ca_file {
        opts = opts.add_root_certificates(ca.into());
    }
    if cfg.nats.iter().any(|u| u.starts_with("tls://")) {
        opts = opts.require_tls(true);
    }
    opts.connect(urls).await.map_err(|e| e.to_string())
}

/// Keeps the connection's state in `stats` (connected, since when away, the last error) and
/// says in the log when it changes. Called by the NATS client for each event, in order.
fn connection_changed(name: &str, node: &str, stats: &Stats, ev: &Event) {
    match ev {
        Event::Connected => {
            stats.connected.store(true, Ordering::Relaxed);
            if let Ok(mut a) = stats.away_since.lock() {
                *a = None;
            }
            if let Ok(mut l) = stats.last_error.lock() {
                l.clear();
            }
            info!("cluster {name}: node {node} connected to NATS");
        }
        Event::Disconnected | Event::Closed => {
            stats.connected.store(false, Ordering::Relaxed);
            if let Ok(mut a) = stats.away_since.lock() {
                a.get_or_insert_with(std::time::Instant::now);
            }
            if let Ok(mut l) = stats.last_error.lock() {
                *l = format!("{ev}");
            }
            warn!(
                "cluster {name}: node {node} lost NATS ({ev}); messages for ESMEs bound elsewhere are held until it is back"
            );
        }
        other => {
            if let Ok(mut l) = stats.last_error.lock() {
                *l = format!("{other}");
            }
            warn!("cluster {name}: NATS: {other}");
        }
    }
}

/// A hand-off (or a question about a receipt) given to a shard, waiting for its answer.
struct Pending {
    reply: Option<async_nats::Subject>,
    /// The hand-off's (node, id); none for a question, which is answered only when taken
    /// (the node that has the receipt's message answers; the others say nothing).
    key: Option<(String, u128)>,
}

pub(super) struct Bridge {
    pub(super) cfg: ClusterConfig,
    pub(super) client: Client,
    pub(super) ends: Ends,
    /// Receivers bound on this node, per system_id, and the subscription that takes
    /// hand-offs for it.
    local: HashMap<Bytes, (usize, Option<tokio::task::JoinHandle<()>>)>,
    pub(super) requests: mpsc::UnboundedSender<async_nats::Message>,
    pending: HashMap<u64, Pending>,
    next_token: u64,
    /// Keys committed here, oldest first, and the set of them.
    seen: HashSet<(String, u128)>,
    seen_order: VecDeque<(String, u128)>,
    in_adoption: HashSet<(String, u128)>,
    next_shard: usize,
    in_flight: Arc<Semaphore>,
    pub(super) shared: Arc<Cluster>,
    pub(super) held: super::leases::Held,
}

async fn run(cfg: ClusterConfig, urls: Vec<ServerAddr>, ends: Ends, shared: Arc<Cluster>) {
    let (etx, mut events) = mpsc::unbounded_channel();
    if let Ok(mut a) = ends.stats.away_since.lock() {
        *a = Some(std::time::Instant::now());
    }
    let client = match connect(&cfg, urls, etx, ends.stats.clone()).await {
        Ok(c) => c,
        Err(e) => {
            warn!("cluster: cannot use NATS: {e}; this node runs alone");
            if let Ok(mut l) = ends.stats.last_error.lock() {
                *l = e;
            }
            return run_alone(&shared, &ends);
        }
    };
    let mut announcements = match client.subscribe(wire::bound_subject(&cfg.name)).await {
        Ok(s) => s,
        Err(e) => {
            warn!("cluster: cannot subscribe to announcements: {e}; this node runs alone");
            return run_alone(&shared, &ends);
        }
    };
    let (rtx, mut requests) = mpsc::unbounded_channel();
    match client.subscribe(wire::receipt_subject(&cfg.name)).await {
        Ok(sub) => {
            tokio::spawn(forward(sub, rtx.clone()));
        }
        Err(e) => warn!("cluster: cannot subscribe to questions about receipts: {e}"),
    }
    let mut leases = tokio::time::interval(cfg.lease / 3);
    leases.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut b = Bridge {
        cfg,
        client,
        ends,
        local: HashMap::new(),
        requests: rtx,
        pending: HashMap::new(),
        next_token: 0,
        seen: HashSet::new(),
        seen_order: VecDeque::new(),
        in_adoption: HashSet::new(),
        next_shard: 0,
        in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        shared,
        held: super::leases::Held::default(),
    };
    let rx = b.ends.rx.clone();
    loop {
        tokio::select! {
            cmd = rx.recv_async() => match cmd {
                Ok(cmd) => b.command(cmd).await,
                Err(_) => return, // the node stopped
            },
            Some(ev) = events.recv() => b.event(ev).await,
            Some(m) = announcements.next() => b.announced(&m.payload),
            Some(m) = requests.recv() => b.request(m).await,
            _ = leases.tick() => b.lease_round().await,
        }
    }
}

impl Bridge {
    async fn command(&mut self, cmd: ToBridge) {
        match cmd {
            ToBridge::HandOff {
                shard,
                id,
                to: dest,
                payload,
            } => {
                let to = self.ends.to_shards[shard % self.ends.to_shards.len()].clone();
                // Never wait here: the loop also carries the answers other nodes wait for.
                let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                    let _ = to.try_send(FromBridge::Handed {
                        id,
                        result: HandedOff::Full,
                    });
                    return;
                };
                let client = self.client.clone();
                let subject = match &dest {
                    Dest::Esme(system_id) => wire::esme_subject(&self.cfg.name, system_id),
                    Dest::Link(name) => wire::link_subject(&self.cfg.name, name),
                };
                let stats = self.ends.stats.clone();
                tokio::spawn(async move {
                    let result = match client.request(subject, payload).await {
                        Ok(m) => match Answer::decode(&m.payload) {
                            Answer::Committed => {
                                stats.handoffs_out.fetch_add(1, Ordering::Relaxed);
                                HandedOff::Committed(
                                    m.headers
                                        .as_ref()
                                        .and_then(|h| h.get("node"))
                                        .map_or_else(String::new, |v| v.to_string()),
                                )
                            }
                            Answer::Full => HandedOff::Full,
                            Answer::Refused(why) => HandedOff::Failed(why),
                        },
                        Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                            stats.no_responders.fetch_add(1, Ordering::Relaxed);
                            HandedOff::NoResponders
                        }
                        Err(e) => HandedOff::Failed(e.to_string()),
                    };
                    if matches!(result, HandedOff::Failed(_) | HandedOff::Full) {
                        stats.failed_out.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = to.send_async(FromBridge::Handed { id, result }).await;
                    drop(permit);
                });
            }
            ToBridge::AskReceipt {
                shard,
                token,
                payload,
            } => {
                let to = self.ends.to_shards[shard % self.ends.to_shards.len()].clone();
                let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                    let _ = to.try_send(FromBridge::Asked {
                        token,
                        taken: false,
                    });
                    return;
                };
                let client = self.client.clone();
                let subject = wire::receipt_subject(&self.cfg.name);
                let stats = self.ends.stats.clone();
                stats.receipts_asked.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let taken = match client.request(subject, payload).await {
                        Ok(m) => Answer::decode(&m.payload) == Answer::Committed,
                        Err(_) => false,
                    };
                    if taken {
                        stats
                            .receipts_taken_elsewhere
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = to.send_async(FromBridge::Asked { token, taken }).await;
                    drop(permit);
                });
            }
            ToBridge::Receiver { system_id, up } => {
                if up {
                    self.receiver_up(system_id).await;
                } else {
                    self.receiver_down(system_id);
                }
            }
            ToBridge::Answer { token, answer } => {
                let Some(p) = self.pending.remove(&token) else {
                    return;
                };
                let Some(key) = p.key else {
                    // A question about a receipt: only the node that took it answers.
                    if answer == Answer::Committed {
                        self.ends
                            .stats
                            .receipts_taken_here
                            .fetch_add(1, Ordering::Relaxed);
                        self.answer(p.reply, answer).await;
                    }
                    return;
                };
                self.in_adoption.remove(&key);
                if answer == Answer::Committed {
                    self.ends.stats.handoffs_in.fetch_add(1, Ordering::Relaxed);
                    self.remember(key);
                } else {
                    self.ends.stats.refused_in.fetch_add(1, Ordering::Relaxed);
                }
                self.answer(p.reply, answer).await;
            }
        }
    }

    async fn answer(&self, reply: Option<async_nats::Subject>, answer: Answer) {
        let Some(reply) = reply else { return };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("node", self.cfg.node.as_str());
        if let Err(e) = self
            .client
            .publish_with_headers(reply, headers, answer.encode())
            .await
        {
            debug!("cluster: an answer to a hand-off was not sent: {e}");
        }
    }

    fn remember(&mut self, key: (String, u128)) {
        if self.seen.insert(key.clone()) {
            self.seen_order.push_back(key);
            while self.seen_order.len() > REMEMBERED {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }

    async fn receiver_up(&mut self, system_id: Bytes) {
        let entry = self.local.entry(system_id.clone()).or_insert((0, None));
        entry.0 += 1;
        if entry.0 > 1 {
            return;
        }
        let subject = wire::esme_subject(&self.cfg.name, &system_id);
        match self
            .client
            .queue_subscribe(subject.clone(), wire::QUEUE.into())
            .await
        {
            Ok(sub) => {
                let requests = self.requests.clone();
                entry.1 = Some(tokio::spawn(forward(sub, requests)));
                debug!("cluster: taking hand-offs on {subject}");
            }
            Err(e) => warn!("cluster: cannot subscribe to {subject}: {e}"),
        }
        self.announce(&system_id).await;
    }

    fn receiver_down(&mut self, system_id: Bytes) {
        if let Some(entry) = self.local.get_mut(&system_id) {
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 {
                if let Some((_, Some(task))) = self.local.remove(&system_id) {
                    // Dropping the subscriber unsubscribes: other nodes' hand-offs go
                    // elsewhere (or wait) from now on.
                    task.abort();
                }
            }
        }
    }

    async fn announce(&self, system_id: &[u8]) {
        let msg = wire::encode_bound(&self.cfg.node, system_id);
        if let Err(e) = self
            .client
            .publish(wire::bound_subject(&self.cfg.name), msg)
            .await
        {
            debug!("cluster: an announcement was not sent: {e}");
        }
    }

    /// What the bridge does when the connection changes (its state and log lines are
    /// `connection_changed`'s).
    async fn event(&mut self, ev: Event) {
        if !matches!(ev, Event::Connected) {
            return;
        }
        // Receivers bound while NATS was away: other nodes may hold messages for them.
        let ids: Vec<Bytes> = self.local.keys().cloned().collect();
        for id in ids {
            self.announce(&id).await;
        }
        // And this node may hold messages for receivers bound elsewhere meanwhile.
        for tx in &self.ends.to_shards {
            let _ = tx.try_send(FromBridge::BoundElsewhere {
                system_id: Bytes::new(),
            });
        }
        // Leases at once (not at the next round).
        self.lease_round().await;
    }

    fn announced(&mut self, payload: &[u8]) {
        let Some((node, system_id)) = wire::decode_bound(payload) else {
            return;
        };
        if node == self.cfg.node {
            return;
        }
        if let Ok(mut p) = self.ends.stats.peers.lock() {
            if !p.contains(node) {
                info!("cluster {}: node {node} seen", self.cfg.name);
                p.insert(node.to_string());
            }
        }
        let system_id = Bytes::copy_from_slice(system_id);
        for tx in &self.ends.to_shards {
            let _ = tx.try_send(FromBridge::BoundElsewhere {
                system_id: system_id.clone(),
            });
        }
    }

    async fn request(&mut self, m: async_nats::Message) {
        if m.payload.starts_with(b"SGR1") {
            return self.receipt_question(m);
        }
        let handoff = match wire::decode_handoff(&m.payload) {
            Ok(h) => h,
            Err(why) => {
                warn!("cluster: a hand-off on {} refused: {why}", m.subject);
                self.ends.stats.refused_in.fetch_add(1, Ordering::Relaxed);
                return self.answer(m.reply, Answer::Refused(why)).await;
            }
        };
        let key = (handoff.node.clone(), handoff.msg.id.to_u128());
        if self.seen.contains(&key) {
            // Committed here before: its sender missed the answer.
            self.ends
                .stats
                .duplicates_in
                .fetch_add(1, Ordering::Relaxed);
            return self.answer(m.reply, Answer::Committed).await;
        }
        if self.in_adoption.contains(&key) {
            // Being logged now: the sender asked again before the first answer; the answer
            // to the first goes to its first request, and this one times out and asks again.
            return;
        }
        let token = self.next_token;
        self.next_token += 1;
        let shards = self.ends.to_shards.len();
        let shard = self.next_shard % shards;
        self.next_shard = self.next_shard.wrapping_add(1);
        match self.ends.to_shards[shard].try_send(FromBridge::Adopt {
            token,
            handoff: Box::new(handoff),
        }) {
            Ok(()) => {
                self.in_adoption.insert(key.clone());
                self.pending.insert(
                    token,
                    Pending {
                        reply: m.reply,
                        key: Some(key),
                    },
                );
            }
            Err(_) => self.answer(m.reply, Answer::Full).await,
        }
    }
}

/// The bridge cannot work: the node binds its links as if alone.
fn run_alone(shared: &Cluster, ends: &Ends) {
    if let Ok(mut l) = shared.leases.lock() {
        l.settled = true;
        l.active = false;
    }
    for tx in &ends.to_shards {
        let _ = tx.try_send(FromBridge::Leases);
    }
}

impl Bridge {
    /// Another node asks about a receipt: a shard looks for its message (and answers only
    /// when it has it).
    fn receipt_question(&mut self, m: async_nats::Message) {
        let ask = match wire::decode_receipt_ask(&m.payload) {
            Ok(a) => a,
            Err(why) => {
                warn!("cluster: a question about a receipt refused: {why}");
                return;
            }
        };
        if ask.node == self.cfg.node {
            return; // this node's own question
        }
        let token = self.next_token;
        self.next_token += 1;
        let shard = self.next_shard % self.ends.to_shards.len();
        self.next_shard = self.next_shard.wrapping_add(1);
        if self.ends.to_shards[shard]
            .try_send(FromBridge::Receipt {
                token,
                ask: Box::new(ask),
            })
            .is_ok()
        {
            self.pending.insert(
                token,
                Pending {
                    reply: m.reply,
                    key: None,
                },
            );
        }
    }
}

/// Passes a subscription's messages to the bridge's loop.
pub(super) async fn forward(mut sub: Subscriber, to: mpsc::UnboundedSender<async_nats::Message>) {
    while let Some(m) = sub.next().await {
        if to.send(m).is_err() {
            return;
        }
    }
}
