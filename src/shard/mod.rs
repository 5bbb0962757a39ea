//! A data shard: one glommio executor pinned to a core, owning the SMPP connections it
//! accepts, and routing receipts to receivers on itself or, over the channel mesh, on the
//! shard where the receiver is bound.
//!
//! | file | job |
//! |---|---|
//! | `state` | what shards share: configuration, accounts and their atomic counters, stop flag |
//! | `server` | the per-connection handler: bind, limits, routing, terminating mode and simulator |
//! | `routing` | the shard's route table, decision cache and what a decision means |
//!
//! Every shard accepts on every listener (glommio sets SO_REUSEPORT, so the kernel spreads
//! connections). Nothing here takes a lock on the data path.

pub mod routing;
pub mod server;
pub mod state;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures_rustls::TlsAcceptor;
use glommio::channels::channel_mesh::{MeshBuilder, Senders};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::TcpListener;
use glommio::{spawn_local, GlommioError, ResourceType};
use log::{error, info, warn};

use crate::net::conn::{self, DriverLimits};
use crate::smpp::receipt::{IdKey, MessageState, Receipt};
use crate::smpp::tlv::tag;
use crate::smpp::{
    Address, Body, COctet, CommandId, CommandStatus, DeliverSm, Pdu, Role, Session, SessionConfig,
    Tlvs,
};
use crate::upstream::{self, ForwardCtx, LinkCmd, LocalLink, Outcome, Submission};
use server::ServerHandler;
pub use state::{AccountState, Mode, Shared, SimOptions};

/// A receipt (or any deliver_sm) on its way to a receiver of `account`.
pub struct Delivery {
    pub account: Arc<AccountState>,
    pub body: DeliverSm,
    pub tlvs: Tlvs,
    pub attempts: u8,
    /// For a message one ESME sent to another (`smppserver/ID`) with registered_delivery:
    /// who gets the receipt once the delivery ends. `None` for receipts and MO.
    pub origin: Option<Box<Origin>>,
}

/// The submitter of a message delivered to an ESME, for the receipt of its delivery.
pub struct Origin {
    pub account: Arc<AccountState>,
    /// The id the submitter was given (the gateway message id).
    pub gateway_id: COctet,
    pub source: Address,
    pub dest: Address,
    pub data_coding: u8,
    /// The start of the text, quoted in the receipt.
    pub text: bytes::Bytes,
    pub submitted: std::time::SystemTime,
    /// The submit's registered_delivery (bits 1-0 decide which outcomes get a receipt).
    pub registered_delivery: u8,
}

/// How a delivery ended: the receipt's message_state and the TS 23.040 TP-Status that goes
/// into its `network_error_code` (type 3, GSM) and, in decimal, its `err:` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fate {
    pub state: MessageState,
    pub tp_status: u8,
}

impl Fate {
    /// Acknowledged by the receiving ESME: TP-Status 0x00, short message received by the SME.
    pub const DELIVERED: Fate = Fate {
        state: MessageState::DELIVERED,
        tp_status: 0x00,
    };
    /// The receiving ESME refused it with a permanent error: 0x42, connection rejected by SME.
    pub const REFUSED: Fate = Fate::undeliverable(0x42);
    /// Temporary errors from the receiving ESME until the attempts ran out: 0x61, SME busy.
    pub const BUSY: Fate = Fate::undeliverable(0x61);
    /// No deliver_sm_resp until the attempts ran out: 0x62, no response from SME.
    pub const NO_RESPONSE: Fate = Fate::undeliverable(0x62);
    /// The queue for the receiving account was full: 0x60, congestion.
    pub const CONGESTION: Fate = Fate::undeliverable(0x60);

    const fn undeliverable(tp_status: u8) -> Fate {
        Fate {
            state: MessageState::UNDELIVERABLE,
            tp_status,
        }
    }

    /// TS 23.040's words for the TP-Status.
    pub fn meaning(self) -> &'static str {
        match self.tp_status {
            0x00 => "received by the SME",
            0x42 => "connection rejected by the SME",
            0x60 => "congestion",
            0x61 => "SME busy",
            0x62 => "no response from the SME",
            _ => "other",
        }
    }

    /// Whether a submit's registered_delivery asks for a receipt of this fate: bits 1-0 are
    /// 1 for success or failure, 2 for failure only, 3 for success only (5.0).
    pub fn wanted_by(self, registered_delivery: u8) -> bool {
        let delivered = self.state == MessageState::DELIVERED;
        match registered_delivery & 0x03 {
            1 => true,
            2 => !delivered,
            3 => delivered,
            _ => false,
        }
    }
}

/// Work for one connection from elsewhere in the shard. (Deliveries are the traffic; `Stop`
/// comes once, so the size difference costs nothing worth a box.)
#[allow(clippy::large_enum_variant)]
pub enum Outbound {
    Deliver(Delivery),
    /// The answer to a request this connection's ESME sent, once its upstream answered.
    Respond {
        seq: u32,
        request: CommandId,
        /// For submit_multi: which destination this answer is for.
        part: u16,
        status: CommandStatus,
        message_id: Option<COctet>,
    },
    /// Unbind and close: the gateway is stopping.
    Stop,
}

/// What shards send each other over the mesh.
pub enum ShardMsg {
    /// A delivery for a receiver bound on the destination shard.
    Deliver(Delivery),
    /// A message for a link that has a bound transmitter on the destination shard.
    Submit { link: usize, sub: Submission },
    /// The outcome of a forwarded message, for the shard whose ESME waits for it.
    Outcome { ctx: ForwardCtx, outcome: Outcome },
    /// Remember which gateway message an upstream id stands for (sent to the key's owner).
    MapInsert { key: MapKey, entry: MapEntry },
    /// A receipt from a link, for the owner of its id's key.
    Receipt { key: MapKey, pdu: Pdu },
}

/// An upstream message id as the receipt map knows it: the link and the id's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MapKey {
    pub link: usize,
    pub id: IdKey,
}

impl MapKey {
    /// The shard that keeps this key (a stable hash, so every shard agrees).
    pub fn owner(&self, shards: usize) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ self.link as u64;
        let mut eat = |b: u8| {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        match &self.id {
            IdKey::Number(n) => n.to_le_bytes().into_iter().for_each(&mut eat),
            IdKey::Text(t) => t.iter().copied().for_each(&mut eat),
        }
        (h % shards.max(1) as u64) as usize
    }
}

/// The gateway message an upstream id belongs to.
pub struct MapEntry {
    pub gateway_id: COctet,
    pub account: Arc<AccountState>,
}

/// Octets in a gateway message id.
pub const MESSAGE_ID_LEN: usize = 20;

/// Deliveries (receipts, messages for ESMEs) held per account on one shard while no receiver
/// with room is bound anywhere.
const MAX_PARKED_PER_ACCOUNT: usize = 20_000;
/// Items a connection's inbox holds before senders look elsewhere. (The channel itself is
/// unbounded so that an idle connection's inbox allocates nothing; senders check the bound.)
const INBOX: usize = 1024;

type AccountKey = usize;

/// Deliveries of one account waiting on this shard for a receiver.
struct Parked {
    account: Arc<AccountState>,
    queue: VecDeque<Delivery>,
    /// Deliveries dropped since the queue was last full.
    dropped: u64,
}

/// A connection's inbox, shared by the registries that deliver to it. Deliveries are counted
/// from the moment they are sent until the connection is done with them (acknowledged,
/// refused or handed back), so a slow receiver holds at most [`INBOX`] of them; answers to the
/// ESME's own requests (`Respond`) are never held back behind deliveries.
pub struct ConnInbox {
    pub tx: LocalSender<Outbound>,
    pub deliveries: Cell<usize>,
}

type Inbox = Rc<ConnInbox>;

fn key(a: &Arc<AccountState>) -> AccountKey {
    Arc::as_ptr(a) as usize
}

/// A listener as a shard runs it.
#[derive(Clone)]
pub struct ListenerSpec {
    pub name: String,
    pub addr: SocketAddr,
    pub tls: Option<TlsAcceptor>,
}

/// One shard's own state.
pub struct ShardState {
    pub id: usize,
    pub shared: Arc<Shared>,
    conns: RefCell<HashMap<u64, Inbox>>,
    receivers: RefCell<HashMap<AccountKey, Vec<(u64, Inbox)>>>,
    round_robin: Cell<usize>,
    parked: RefCell<HashMap<AccountKey, Parked>>,
    delayed: RefCell<VecDeque<(Instant, Delivery)>>,
    mesh: Option<Senders<ShardMsg>>,
    /// The client links, as this shard runs them (index = link index).
    pub links: Vec<LocalLink>,
    receipt_map: RefCell<ReceiptMap>,
    /// Receipts whose id is not (yet) in the map: retried briefly, for the map insert may be
    /// on its way over the mesh.
    unmatched: RefCell<VecDeque<(Instant, MapKey, Pdu)>>,
    next_id: Cell<u64>,
    id_arena: RefCell<BytesMut>,
    next_conn: Cell<u64>,
    rng: Cell<u64>,
    submits: Cell<u64>,
    recorder: RefCell<Option<std::io::BufWriter<std::fs::File>>>,
    pub router: RefCell<routing::Router>,
    /// Refusal log lines: the last one written, and how many were held back since.
    refusals: Cell<(Option<Instant>, u64)>,
    /// Messages for ESMEs that ended undelivered, logged the same way.
    undelivered: Cell<(Option<Instant>, u64)>,
}

/// Writes `"{label}: {line}"` at most once a second per `last` (the time of the last line
/// written and how many were held back since); the next line says how many were held back.
/// The line is only built when it is written.
fn log_limited(
    last: &Cell<(Option<Instant>, u64)>,
    label: &str,
    plural: &str,
    line: impl FnOnce() -> String,
) {
    let now = Instant::now();
    let (at, held) = last.get();
    if at.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
        last.set((at, held + 1));
        return;
    }
    if held > 0 {
        info!(
            "{label}: {} (and {held} more {plural} in the last second)",
            line()
        );
    } else {
        info!("{label}: {}", line());
    }
    last.set((Some(now), 0));
}

/// Takes a message back out of a channel error.
fn take_back<T>(e: GlommioError<T>) -> Option<T> {
    match e {
        GlommioError::WouldBlock(ResourceType::Channel(t))
        | GlommioError::Closed(ResourceType::Channel(t)) => Some(t),
        _ => None,
    }
}

thread_local! {
    /// This thread's shard, for the few places that need an `Rc` to spawn with.
    static SHARD: RefCell<Option<Rc<ShardState>>> = const { RefCell::new(None) };
}

/// How long a receipt may wait for its id to arrive in the map.
const UNMATCHED_WAIT: Duration = Duration::from_secs(2);
/// How long an upstream id is remembered for its receipt.
const RECEIPT_MAP_TTL: Duration = Duration::from_secs(72 * 3600);
/// Upstream ids one shard remembers at most (the oldest go first).
const RECEIPT_MAP_MAX: usize = 2_000_000;

/// Upstream ids waiting for their receipts, with their age for expiry.
#[derive(Default)]
struct ReceiptMap {
    /// hashbrown with its default (foldhash, randomly seeded) hasher: about half the cost of
    /// SipHash per insert, and upstream ids cannot pick their buckets.
    entries: hashbrown::HashMap<MapKey, MapEntry>,
    order: VecDeque<(Instant, MapKey)>,
}

impl ReceiptMap {
    fn insert(&mut self, key: MapKey, entry: MapEntry, now: Instant) {
        self.order.push_back((now, key.clone()));
        self.entries.insert(key, entry);
        while self.entries.len() > RECEIPT_MAP_MAX {
            match self.order.pop_front() {
                Some((_, k)) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
    }

    fn get(&self, key: &MapKey) -> Option<&MapEntry> {
        self.entries.get(key)
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, _)) = self.order.front() {
            if now.saturating_duration_since(*t) < RECEIPT_MAP_TTL {
                break;
            }
            if let Some((_, k)) = self.order.pop_front() {
                self.entries.remove(&k);
            }
        }
    }
}

/// An upstream receipt with the gateway's id in place of the upstream's, in the text and in
/// receipted_message_id; everything else (state, error, dates, network_error_code) is kept.
pub fn rewrite_receipt(pdu: &Pdu, gateway_id: &COctet) -> (DeliverSm, Tlvs) {
    let mut body = match &pdu.body {
        Body::DeliverSm(d) => d.clone(),
        Body::DataSm(d) => DeliverSm {
            service_type: d.service_type.clone(),
            source: d.source.clone(),
            dest: d.dest.clone(),
            esm_class: d.esm_class,
            registered_delivery: d.registered_delivery,
            data_coding: d.data_coding,
            ..DeliverSm::default()
        },
        _ => DeliverSm::default(),
    };
    let text = body.short_message.clone();
    if let Some(r) = Receipt::parse(&text) {
        // Splice the new id where the old one stands.
        let start = r.id.as_ptr() as usize - text.as_ptr() as usize;
        let mut out = BytesMut::with_capacity(text.len() + gateway_id.len());
        out.put_slice(&text[..start]);
        out.put_slice(gateway_id.as_bytes());
        out.put_slice(&text[start + r.id.len()..]);
        body.short_message = out.freeze();
    }
    let mut tlvs = pdu.tlvs.clone();
    tlvs.remove(tag::MESSAGE_PAYLOAD);
    if tlvs.get(tag::RECEIPTED_MESSAGE_ID).is_some() {
        tlvs.set_cstr(tag::RECEIPTED_MESSAGE_ID, gateway_id.as_bytes());
    }
    (body, tlvs)
}

impl ShardState {
    /// A gateway message id: start time, shard and a counter, as 20 hex digits. Unique
    /// across shards, and across restarts more than a second apart. Ids are cut from a shared
    /// arena buffer, so the submit path does not allocate per message.
    pub fn next_message_id(&self) -> COctet {
        let n = self.next_id.get();
        self.next_id.set(n.wrapping_add(1));
        let mut digits = [0u8; MESSAGE_ID_LEN];
        let hex = |v: u64, out: &mut [u8]| {
            for (i, d) in out.iter_mut().rev().enumerate() {
                *d = b"0123456789abcdef"[((v >> (4 * i)) & 0xF) as usize];
            }
        };
        hex(self.shared.start_secs as u64, &mut digits[..8]);
        hex(self.id as u64 & 0xFF, &mut digits[8..10]);
        hex(n & 0xFF_FFFF_FFFF, &mut digits[10..]);
        let mut arena = self.id_arena.borrow_mut();
        if arena.capacity() < MESSAGE_ID_LEN {
            *arena = BytesMut::with_capacity(MESSAGE_ID_LEN * 3200);
        }
        arena.put_slice(&digits);
        COctet::from_bytes_unchecked(arena.split_to(MESSAGE_ID_LEN).freeze())
    }

    /// Logs why a message was refused: at most one line a second per shard, saying how many
    /// were held back (a misrouted ESME must not flood the log).
    pub fn log_refusal(&self, why: impl FnOnce() -> String) {
        log_limited(&self.refusals, "refused", "refusals", why);
    }

    /// Counts a submit (the simulator's every-Nth throttling); returns the count.
    pub fn count_submit(&self) -> u64 {
        let n = self.submits.get() + 1;
        self.submits.set(n);
        n
    }

    /// Appends a message's text to the simulator's record file (for tests of order and
    /// loss; not a data-path facility).
    pub fn record(&self, path: &std::path::Path, text: &[u8]) {
        use std::io::Write;
        let mut r = self.recorder.borrow_mut();
        if r.is_none() {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(f) => *r = Some(std::io::BufWriter::new(f)),
                Err(e) => {
                    warn!("cannot record to {}: {e}", path.display());
                    return;
                }
            }
        }
        if let Some(w) = r.as_mut() {
            let _ = w.write_all(text);
            let _ = w.write_all(b"\n");
            let _ = w.flush();
        }
    }

    /// A uniform draw in [0, 100) (xorshift; the simulator's error shares).
    pub fn percent(&self) -> f64 {
        let mut s = self.rng.get();
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.rng.set(s);
        (s >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }

    fn register(&self, conn: u64, tx: Inbox) {
        self.conns.borrow_mut().insert(conn, tx);
    }

    fn unregister(&self, conn: u64) {
        self.conns.borrow_mut().remove(&conn);
    }

    /// A bound receiver or transceiver of `account` on this shard can take deliveries.
    pub fn add_receiver(&self, account: &Arc<AccountState>, conn: u64) {
        let Some(tx) = self.conns.borrow().get(&conn).cloned() else {
            return;
        };
        self.receivers
            .borrow_mut()
            .entry(key(account))
            .or_default()
            .push((conn, tx));
        account.receivers[self.id].fetch_add(1, Ordering::Relaxed);
        self.release_parked(account);
    }

    pub fn remove_receiver(&self, account: &Arc<AccountState>, conn: u64) {
        let mut map = self.receivers.borrow_mut();
        if let Some(list) = map.get_mut(&key(account)) {
            let before = list.len();
            list.retain(|(c, _)| *c != conn);
            if list.len() < before {
                account.receivers[self.id].fetch_sub(1, Ordering::Relaxed);
            }
            if list.is_empty() {
                map.remove(&key(account));
            }
        }
    }

    /// Sends a delivery toward a receiver of its account: on this shard if there is one,
    /// else on a shard that has one, else it waits here for a receiver to bind.
    pub fn route(&self, d: Delivery) {
        if let Err(d) = self.try_deliver(d) {
            self.park(d);
        }
    }

    /// Hands a delivery to a local receiver's inbox or to a shard with a receiver; gives it
    /// back when none has room.
    #[allow(clippy::result_large_err)] // the Err hands the delivery back; no copy is avoided by boxing
    fn try_deliver(&self, mut d: Delivery) -> Result<(), Delivery> {
        let local: Vec<Inbox> = self
            .receivers
            .borrow()
            .get(&key(&d.account))
            .map(|l| l.iter().map(|(_, tx)| tx.clone()).collect())
            .unwrap_or_default();
        if !local.is_empty() {
            let start = self.round_robin.get();
            self.round_robin.set(start.wrapping_add(1));
            for i in 0..local.len() {
                let inbox = &local[(start + i) % local.len()];
                if inbox.deliveries.get() >= INBOX {
                    continue;
                }
                match inbox.tx.try_send(Outbound::Deliver(d)) {
                    Ok(()) => {
                        inbox.deliveries.set(inbox.deliveries.get() + 1);
                        return Ok(());
                    }
                    Err(e) => match take_back(e) {
                        Some(Outbound::Deliver(back)) => d = back,
                        _ => return Ok(()),
                    },
                }
            }
        }
        if let (Some(mesh), Some(peer)) = (&self.mesh, d.account.shard_with_receiver(self.id)) {
            match mesh.try_send_to(peer, ShardMsg::Deliver(d)) {
                Ok(()) => return Ok(()),
                Err(e) => match take_back(e) {
                    Some(ShardMsg::Deliver(back)) => d = back,
                    _ => return Ok(()),
                },
            }
        }
        Err(d)
    }

    fn park(&self, d: Delivery) {
        if let Some(d) = self.park_or_refuse(d) {
            self.settle(d, Fate::CONGESTION);
        }
    }

    /// Queues a delivery for its account on this shard; gives it back when the queue is full.
    fn park_or_refuse(&self, d: Delivery) -> Option<Delivery> {
        let mut parked = self.parked.borrow_mut();
        let p = parked.entry(key(&d.account)).or_insert_with(|| Parked {
            account: d.account.clone(),
            queue: VecDeque::new(),
            dropped: 0,
        });
        if p.queue.len() >= MAX_PARKED_PER_ACCOUNT {
            self.shared
                .counters
                .receipts_dropped
                .fetch_add(1, Ordering::Relaxed);
            p.dropped += 1;
            if p.dropped.is_power_of_two() && p.dropped >= 1 {
                warn!(
                    "{}: {} deliveries wait on shard {} for a receiver with room; {} dropped so far",
                    d.account.system_id, MAX_PARKED_PER_ACCOUNT, self.id, p.dropped
                );
            }
            return Some(d);
        }
        p.queue.push_back(d);
        None
    }

    /// A delivery has ended (acknowledged, refused, or given up on): when it carried a
    /// message from another ESME that asked for a receipt of this outcome, the receipt goes
    /// to that ESME's receivers.
    pub fn settle(&self, d: Delivery, fate: Fate) {
        let Some(o) = d.origin else {
            return;
        };
        if fate != Fate::DELIVERED {
            log_limited(&self.undelivered, "undelivered", "undelivered", || {
                format!(
                    "message {} from {} to {}: {} (TP-Status 0x{:02X}, {})",
                    String::from_utf8_lossy(o.gateway_id.as_bytes()),
                    o.account.system_id,
                    d.account.system_id,
                    fate.state.stat(),
                    fate.tp_status,
                    fate.meaning()
                )
            });
        }
        if fate.wanted_by(o.registered_delivery) {
            self.route(server::receipt(
                &o.account,
                o.gateway_id.as_bytes(),
                &o.source,
                &o.dest,
                o.data_coding,
                &o.text,
                o.submitted,
                fate,
            ));
        }
    }

    /// Delivers parked deliveries of an account, oldest first, until a receiver has no
    /// room.
    fn release_parked(&self, account: &Arc<AccountState>) {
        loop {
            let next = match self.parked.borrow_mut().get_mut(&key(account)) {
                Some(p) => p.queue.pop_front(),
                None => return,
            };
            let Some(d) = next else {
                self.parked.borrow_mut().remove(&key(account));
                return;
            };
            if let Err(d) = self.try_deliver(d) {
                if let Some(p) = self.parked.borrow_mut().get_mut(&key(account)) {
                    p.queue.push_front(d);
                    p.dropped = 0;
                }
                return;
            }
        }
    }

    /// Schedules a delivery for later (the simulator's receipt delay).
    pub fn route_at(&self, at: Instant, d: Delivery) {
        self.delayed.borrow_mut().push_back((at, d));
    }

    /// Periodic work: due delayed deliveries, parked deliveries whose account now has a
    /// receiver on another shard.
    fn tick(&self, now: Instant) {
        if !self.unmatched.borrow().is_empty() {
            self.retry_unmatched(now);
        }
        self.receipt_map.borrow_mut().expire(now);
        loop {
            let due = {
                let mut q = self.delayed.borrow_mut();
                match q.front() {
                    Some((t, _)) if *t <= now => q.pop_front().map(|e| e.1),
                    _ => None,
                }
            };
            match due {
                Some(d) => self.route(d),
                None => break,
            }
        }
        let ready: Vec<Arc<AccountState>> = self
            .parked
            .borrow()
            .values()
            .map(|p| &p.account)
            .filter(|a| {
                a.shard_with_receiver(self.id).is_some()
                    || a.receivers[self.id].load(Ordering::Relaxed) > 0
            })
            .cloned()
            .collect();
        for a in ready {
            self.release_parked(&a);
        }
    }

    /// Sends a message to another shard; when its mesh queue is full, a task waits for room
    /// (the message is never dropped).
    fn send_to(&self, peer: usize, msg: ShardMsg) {
        let Some(mesh) = &self.mesh else { return };
        if let Err(e) = mesh.try_send_to(peer, msg) {
            if let Some(msg) = take_back(e) {
                let shard = self.self_rc();
                spawn_local(async move {
                    if let Some(mesh) = &shard.mesh {
                        let _ = mesh.send_to(peer, msg).await;
                    }
                })
                .detach();
            }
        }
    }

    fn self_rc(&self) -> Rc<ShardState> {
        SHARD
            .with(|s| s.borrow().clone())
            .unwrap_or_else(|| unreachable!("shard state is set at start"))
    }

    /// Hands a message to a link: this shard's queue when it has a bound transmitter of the
    /// link, else the mesh to a shard that has one; with none anywhere the message fails now
    /// as link down.
    pub fn forward(&self, link: usize, sub: Submission) {
        let l = &self.links[link];
        if l.shared.bound_tx[self.id].load(Ordering::Relaxed) > 0 {
            if l.queue.borrow().len() >= upstream::MAX_QUEUED {
                return self.link_outcome(
                    sub.ctx,
                    Outcome::Failed(upstream::Failure::Temporary(CommandStatus::RMSGQFUL)),
                );
            }
            l.queue.borrow_mut().push_back(sub);
            l.shared.queued.fetch_add(1, Ordering::Relaxed);
            l.kick();
        } else if let Some(peer) = l.shared.shard_with_tx(self.id) {
            self.send_to(peer, ShardMsg::Submit { link, sub });
        } else {
            self.link_outcome(sub.ctx, Outcome::Failed(upstream::Failure::LinkDown));
        }
    }

    /// Reports a link's outcome to the shard whose ESME waits for it.
    pub fn link_outcome(&self, ctx: ForwardCtx, outcome: Outcome) {
        if ctx.shard == self.id {
            self.on_outcome(ctx, outcome);
        } else {
            let peer = ctx.shard;
            self.send_to(peer, ShardMsg::Outcome { ctx, outcome });
        }
    }

    fn on_outcome(&self, ctx: ForwardCtx, outcome: Outcome) {
        let (status, message_id) = match outcome {
            Outcome::Accepted(upstream_id) => {
                let gateway_id = ctx.gateway_id.clone();
                let link = &self.links[ctx.link].shared;
                let key = MapKey {
                    link: ctx.link,
                    id: IdKey::new(upstream_id.as_bytes(), link.config.msgid.resp),
                };
                let entry = MapEntry {
                    gateway_id: gateway_id.clone(),
                    account: ctx.account.clone(),
                };
                let owner = key.owner(self.shared.shards);
                if owner == self.id {
                    self.receipt_map
                        .borrow_mut()
                        .insert(key, entry, Instant::now());
                } else {
                    self.send_to(owner, ShardMsg::MapInsert { key, entry });
                }
                self.shared
                    .counters
                    .accepted
                    .fetch_add(1, Ordering::Relaxed);
                (CommandStatus::ROK, Some(gateway_id))
            }
            Outcome::Failed(f) => {
                self.shared
                    .counters
                    .rejected
                    .fetch_add(1, Ordering::Relaxed);
                (f.esme_status(), None)
            }
        };
        if let Some(tx) = self.conns.borrow().get(&ctx.conn) {
            let _ = tx.tx.try_send(Outbound::Respond {
                seq: ctx.seq,
                request: ctx.request,
                part: ctx.part,
                status,
                message_id,
            });
        }
    }

    /// A deliver_sm or data_sm from a link: receipts go back to the account that sent the
    /// message; the status is what the link is answered.
    pub fn on_link_deliver(&self, link: usize, pdu: &Pdu) -> CommandStatus {
        let (esm_class, text) = match &pdu.body {
            Body::DeliverSm(d) => (d.esm_class, &d.short_message[..]),
            Body::DataSm(d) => (
                d.esm_class,
                pdu.tlvs.get(tag::MESSAGE_PAYLOAD).unwrap_or(&[]),
            ),
            _ => return CommandStatus::RINVCMDID,
        };
        let is_receipt = esm_class & 0x3C == 0x04 || esm_class & 0x3C == 0x20;
        let id = pdu
            .tlvs
            .get_cstr(tag::RECEIPTED_MESSAGE_ID)
            .map(<[u8]>::to_vec)
            .or_else(|| {
                is_receipt
                    .then(|| Receipt::parse(text).map(|r| r.id.to_vec()))
                    .flatten()
            });
        let cfg = &self.links[link].shared.config;
        match id {
            Some(id) if is_receipt || pdu.tlvs.get(tag::RECEIPTED_MESSAGE_ID).is_some() => {
                let key = MapKey {
                    link,
                    id: IdKey::new(&id, cfg.msgid.receipt),
                };
                let owner = key.owner(self.shared.shards);
                if owner == self.id {
                    self.on_receipt(key, pdu.clone(), Instant::now());
                } else {
                    self.send_to(
                        owner,
                        ShardMsg::Receipt {
                            key,
                            pdu: pdu.clone(),
                        },
                    );
                }
                CommandStatus::ROK
            }
            _ => self.route_mo(link, pdu),
        }
    }

    /// A mobile-originated message from a link: routed like a submit with module=smppclient;
    /// only `smppserver/ID` targets can take it.
    fn route_mo(&self, link: usize, pdu: &Pdu) -> CommandStatus {
        let cfg = &self.links[link].shared.config;
        let (source, dest) = match &pdu.body {
            Body::DeliverSm(d) => (&d.source, &d.dest),
            Body::DataSm(d) => (&d.source, &d.dest),
            _ => return CommandStatus::RINVCMDID,
        };
        let route = {
            let mut r = self.router.borrow_mut();
            server::fill_params_from(
                &mut r.params,
                pdu,
                source,
                &[dest],
                &cfg.system_id,
                "smppclient",
            );
            r.decide(&self.shared, self.id)
        };
        match route {
            routing::Route::Deliver(account) => match server::as_deliver_sm(&pdu.body) {
                Some(body) => {
                    self.route(Delivery {
                        account,
                        body,
                        tlvs: pdu.tlvs.clone(),
                        attempts: 0,
                        origin: None,
                    });
                    CommandStatus::ROK
                }
                None => CommandStatus::RINVCMDID,
            },
            routing::Route::NoTable => {
                warn!("link {}: a mobile-originated message arrived and there is no regexroute.conf to route it; answered ESME_RX_T_APPN", cfg.name);
                CommandStatus::RX_T_APPN
            }
            routing::Route::Forward(to) => {
                self.log_refusal(|| {
                    format!(
                    "link {}: MO routed to smppclient/{}; MO goes to ESMEs (smppserver/ID) only",
                    cfg.name, self.shared.links[to].config.name
                )
                });
                CommandStatus::RINVDSTADR
            }
            routing::Route::Refuse { status, why } => {
                self.log_refusal(|| format!("link {} MO: {why}", cfg.name));
                self.shared
                    .counters
                    .unrouted
                    .fetch_add(1, Ordering::Relaxed);
                status
            }
        }
    }

    /// A receipt whose key this shard owns: rewritten with the gateway's id and sent to the
    /// account's receivers.
    fn on_receipt(&self, key: MapKey, pdu: Pdu, now: Instant) {
        let entry = self
            .receipt_map
            .borrow()
            .get(&key)
            .map(|e| (e.gateway_id.clone(), e.account.clone()));
        match entry {
            Some((gateway_id, account)) => {
                let (body, tlvs) = rewrite_receipt(&pdu, &gateway_id);
                self.route(Delivery {
                    account,
                    body,
                    tlvs,
                    attempts: 0,
                    origin: None,
                });
            }
            None => self
                .unmatched
                .borrow_mut()
                .push_back((now + UNMATCHED_WAIT, key, pdu)),
        }
    }

    fn on_mesh(&self, msg: ShardMsg) {
        match msg {
            ShardMsg::Deliver(d) => self.route(d),
            ShardMsg::Submit { link, sub } => self.forward(link, sub),
            ShardMsg::Outcome { ctx, outcome } => self.on_outcome(ctx, outcome),
            ShardMsg::MapInsert { key, entry } => {
                self.receipt_map
                    .borrow_mut()
                    .insert(key, entry, Instant::now())
            }
            ShardMsg::Receipt { key, pdu } => self.on_receipt(key, pdu, Instant::now()),
        }
    }

    /// Receipts that found no id: tried again while their wait lasts, then reported.
    fn retry_unmatched(&self, now: Instant) {
        let waiting: Vec<(Instant, MapKey, Pdu)> = self.unmatched.borrow_mut().drain(..).collect();
        for (deadline, key, pdu) in waiting {
            if self.receipt_map.borrow().get(&key).is_some() {
                self.on_receipt(key, pdu, now);
            } else if now < deadline {
                self.unmatched.borrow_mut().push_back((deadline, key, pdu));
            } else {
                let link = &self.links[key.link].shared.config.name;
                warn!(
                    "link {link}: receipt for an unknown message id {:?}; dropped",
                    key.id
                );
                self.shared
                    .counters
                    .receipts_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn session_config(&self) -> SessionConfig {
        let g = &self.shared.config.general;
        SessionConfig {
            max_pdu_size: g.max_pdu_size,
            window: g.window,
            response_timeout: g.response_timeout,
            session_init_timeout: Some(g.session_init_timeout),
            enquire_link_interval: g.enquire_link_interval,
            enquire_link_timeout: g.enquire_link_timeout,
            inactivity_timeout: g.inactivity_timeout,
            interface_version: 0x34,
        }
    }
}

/// What a shard reports when it stops.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardReport {
    pub id: usize,
    pub connections: u64,
}

/// Runs one shard until the gateway stops.
pub async fn run(
    shared: Arc<Shared>,
    mesh: MeshBuilder<ShardMsg, glommio::channels::channel_mesh::Full>,
    listeners: Vec<ListenerSpec>,
) -> ShardReport {
    let (senders, mut receivers) = match mesh.join().await {
        Ok(pair) => pair,
        Err(_) => {
            error!("cannot join the shard mesh");
            shared.stopping.store(true, Ordering::Relaxed);
            return ShardReport::default();
        }
    };
    let id = senders.peer_id();
    let shard = Rc::new(ShardState {
        id,
        shared: shared.clone(),
        conns: RefCell::new(HashMap::new()),
        receivers: RefCell::new(HashMap::new()),
        round_robin: Cell::new(0),
        parked: RefCell::new(HashMap::new()),
        delayed: RefCell::new(VecDeque::new()),
        mesh: Some(senders),
        links: shared
            .links
            .iter()
            .map(|l| LocalLink::new(l.clone()))
            .collect(),
        receipt_map: RefCell::new(ReceiptMap::default()),
        unmatched: RefCell::new(VecDeque::new()),
        next_id: Cell::new(0),
        id_arena: RefCell::new(BytesMut::new()),
        next_conn: Cell::new(0),
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407)),
        submits: Cell::new(0),
        recorder: RefCell::new(None),
        router: RefCell::new(routing::Router::new(0x2545_F491_4F6C_DD1D ^ id as u64)),
        refusals: Cell::new((None, 0)),
        undelivered: Cell::new((None, 0)),
    });

    SHARD.with(|s| *s.borrow_mut() = Some(shard.clone()));

    // Messages from other shards.
    for (_, rx) in receivers.streams() {
        let shard = shard.clone();
        spawn_local(async move {
            while let Some(m) = rx.recv().await {
                shard.on_mesh(m);
            }
        })
        .detach();
    }

    // This shard's bind slots of every link: slot i runs on shard i mod shards.
    let live_slots = Rc::new(Cell::new(0usize));
    for (li, link) in shared.links.iter().enumerate() {
        if !link.config.enabled {
            continue;
        }
        for slot in (0..link.config.binds).filter(|s| s % shared.shards == id) {
            let types: &[crate::smpp::BindType] = match link.config.bind {
                crate::config::LinkBind::Transmitter => &[crate::smpp::BindType::Transmitter],
                crate::config::LinkBind::Receiver => &[crate::smpp::BindType::Receiver],
                crate::config::LinkBind::Transceiver => &[crate::smpp::BindType::Transceiver],
                crate::config::LinkBind::Pair => &[
                    crate::smpp::BindType::Transmitter,
                    crate::smpp::BindType::Receiver,
                ],
            };
            for &bt in types {
                let (tx, rx) = local_channel::new_unbounded::<LinkCmd>();
                shard.links[li].slots.borrow_mut().push(Rc::new(tx));
                live_slots.set(live_slots.get() + 1);
                let (shard, live) = (shard.clone(), live_slots.clone());
                spawn_local(async move {
                    upstream::run_slot(shard, li, slot, bt, rx).await;
                    live.set(live.get() - 1);
                })
                .detach();
            }
        }
    }

    let mut accept_tasks = Vec::new();
    let accepted = Rc::new(Cell::new(0u64));
    for spec in listeners {
        let listener = match TcpListener::bind(spec.addr) {
            Ok(l) => l,
            Err(e) => {
                error!(
                    "listener {:?}: cannot listen on {}: {e}",
                    spec.name, spec.addr
                );
                shared.stopping.store(true, Ordering::Relaxed);
                continue;
            }
        };
        if id == 0 {
            info!(
                "listener {:?} on {} ({})",
                spec.name,
                spec.addr,
                if spec.tls.is_some() { "TLS" } else { "plain" }
            );
        }
        let shard = shard.clone();
        let accepted = accepted.clone();
        accept_tasks.push(spawn_local(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        warn!("listener {:?}: accept failed: {e}", spec.name);
                        glommio::timer::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                accepted.set(accepted.get() + 1);
                let peer = stream.peer_addr().ok();
                let total = shard.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
                if total > shard.shared.config.general.max_connections || shard.shared.is_stopping()
                {
                    shard.shared.connections.fetch_sub(1, Ordering::Relaxed);
                    warn!(
                        "refusing connection from {peer:?}: {} connections is the limit",
                        shard.shared.config.general.max_connections
                    );
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let shard = shard.clone();
                let tls = spec.tls.clone();
                spawn_local(async move {
                    serve(shard.clone(), stream, peer, tls).await;
                    shard.shared.connections.fetch_sub(1, Ordering::Relaxed);
                })
                .detach();
            }
        }));
    }

    // Periodic work and the stop flag.
    let mut stop_sent = false;
    let mut stop_deadline = None;
    loop {
        glommio::timer::sleep(Duration::from_millis(5)).await;
        let now = Instant::now();
        shard.tick(now);
        if shared.is_stopping() {
            if !stop_sent {
                stop_sent = true;
                for t in accept_tasks.drain(..) {
                    drop(t.cancel());
                }
                let conns: Vec<Inbox> = shard.conns.borrow().values().cloned().collect();
                for tx in conns {
                    let _ = tx.tx.try_send(Outbound::Stop);
                }
                for l in &shard.links {
                    for s in l.slots.borrow().iter() {
                        let _ = s.try_send(LinkCmd::Stop);
                    }
                }
                stop_deadline = Some(
                    now + shared
                        .config
                        .general
                        .response_timeout
                        .min(Duration::from_secs(10)),
                );
            }
            let open = shard.conns.borrow().len() + live_slots.get();
            if open == 0 || stop_deadline.is_some_and(|d| now >= d) {
                if open > 0 {
                    warn!("shard {id}: {open} sessions did not unbind in time; closing them");
                }
                break;
            }
        }
    }
    ShardReport {
        id,
        connections: accepted.get(),
    }
}

/// One accepted connection, plain or TLS, until it closes.
async fn serve(
    shard: Rc<ShardState>,
    stream: glommio::net::TcpStream,
    peer: Option<SocketAddr>,
    tls: Option<TlsAcceptor>,
) {
    let conn = shard.next_conn.get();
    shard.next_conn.set(conn + 1);
    let (tx, rx) = local_channel::new_unbounded();
    let inbox = Rc::new(ConnInbox {
        tx,
        deliveries: Cell::new(0),
    });
    shard.register(conn, inbox.clone());
    let now = Instant::now();
    let session = Session::new(Role::Smsc, shard.session_config(), now);
    let handler = ServerHandler::new(shard.clone(), conn, peer, inbox);
    let limits = DriverLimits {
        write_timeout: shard.shared.config.general.response_timeout,
    };
    match tls {
        None => conn::drive(stream, session, handler, &rx, limits).await,
        // Boxed: a TLS session's state is several KiB, which plain sessions should not carry.
        Some(acceptor) => {
            Box::pin(async {
                let handshake = glommio::timer::timeout(
                    shard.shared.config.general.session_init_timeout,
                    async { acceptor.accept(stream).await.map_err(Into::into) },
                );
                match handshake.await {
                    Ok(tls_stream) => conn::drive(tls_stream, session, handler, &rx, limits).await,
                    Err(e) => info!("TLS handshake with {peer:?} failed: {e}"),
                }
            })
            .await
        }
    }
    shard.unregister(conn);
}
