//! A data shard: one glommio executor pinned to a core, owning the SMPP connections it
//! accepts, its bind slots of the client links, its slice of the message log and the flow of
//! the messages in it.
//!
//! | file | job |
//! |---|---|
//! | `state` | what shards share: configuration, links, accounts, route table, counters, stop flag |
//! | `esme` | an ESME's connection: bind, limits, intake of messages, deliveries to it |
//! | `sim` | what the simulator does with a message (acknowledge, refuse, throttle, receipt) |
//! | `messages` | the flow and the log: attempts, outcomes, commits, receipts and MO from links |
//! | `routing` | the shard's route table, decision cache, parameters, what a decision means |
//! | `start` | a shard's start (spool, log, links, listeners, timers) and each SMPP connection's task |
//!
//! Every shard accepts on every listener (glommio sets SO_REUSEPORT), and hands each new
//! connection to the shard that serves the fewest (the kernel's hash alone can put every bind
//! on one core); a connection then stays on its shard. Nothing here takes a lock on the data
//! path. Shards talk over the channel
//! mesh: deliveries for a receiver bound elsewhere, submissions for a link bound elsewhere,
//! outcomes for the shard that owns a message, receipt lookups.

mod cdr;
mod cluster;
pub mod endpoints;
pub mod esme;
mod http;
mod http_out;
mod inbound;
pub mod intake;
pub mod messages;
mod reports;
pub mod routing;
pub mod sim;
mod start;
pub mod state;
mod unmatched;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_rustls::TlsAcceptor;
use glommio::channels::channel_mesh::{MeshBuilder, Senders};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::TcpListener;
use glommio::{spawn_local, GlommioError, ResourceType};
use log::{error, info, warn};

use crate::flow::receipt::UpstreamReceipt;
use crate::flow::{Flow, IdGen, Incoming, Outcome, Target};
use crate::ids::{AccountId, LinkId, MessageId, ShardId, MESSAGE_ID_LEN};
use crate::net::conn::{self, DriverLimits};
use crate::smpp::receipt::IdKey;
use crate::smpp::{
    Body, COctet, CommandStatus, DeliverSm, Pdu, Role, Session, SessionConfig, Tlvs,
};
use crate::store::log::{LogConfig, MessageLog};
use crate::store::ShardSpool;
use crate::upstream::{self, InboundReply, LinkCmd, LinkSink, LocalLink, Submission};
use esme::EsmeHandler;
use messages::{now_ms, Messages, Reply, StoreLog};
pub use start::{run, ShardReport, ShardStart};
pub use state::{Mode, Shared, SimOptions};

/// A deliver_sm for a receiver of `account`: message `id`, whose flow lives on the shard
/// that owns the id.
pub struct Delivery {
    pub id: MessageId,
    pub account: AccountId,
    pub body: DeliverSm,
    pub tlvs: Tlvs,
}

/// Work for one connection from elsewhere in the shard.
pub enum Outbound {
    Deliver(Delivery),
    /// An answer to a request this connection's peer sent, once what it waited for is done.
    Respond {
        seq: u32,
        status: CommandStatus,
        body: Body,
    },
    /// Unbind and close: the gateway is stopping.
    Stop,
}

/// What shards send each other over the mesh.
pub enum ShardMsg {
    /// A delivery for a receiver bound on the destination shard.
    Deliver(Delivery),
    /// A message for a link that has a bound transmitter on the destination shard.
    Submit { link: LinkId, sub: Submission },
    /// How an attempt went, for the shard that owns the message.
    Outcome { id: MessageId, outcome: Outcome },
    /// Is this receipt for one of your messages?
    ReceiptLookup {
        from: ShardId,
        token: u64,
        link: LinkId,
        key: IdKey,
        receipt: UpstreamReceipt,
        pdu: Pdu,
    },
    /// The answer; `found` comes once the receipt is logged.
    ReceiptFound { token: u64, found: bool },
    /// A connection accepted on listener `listener` of another shard, to be served here.
    Serve {
        stream: glommio::net::AcceptedTcpStream,
        listener: usize,
    },
}

/// A shard holds the answers to new submits while this many messages wait for room at links
/// that are up, and lets them go below the low mark.
const BACKLOG_HIGH: usize = 4096;
const BACKLOG_LOW: usize = 2048;

/// Deliveries a connection holds (sent and waiting in its inbox) before senders look
/// elsewhere. (The channel itself is unbounded so that an idle connection's inbox allocates
/// nothing; senders check the bound.)
const INBOX: usize = 1024;

/// A connection's inbox. Deliveries are counted from the moment they are sent until the
/// connection is done with them (answered, or handed back), so a slow receiver holds at most
/// [`INBOX`] of them; answers to the peer's own requests are never held back behind them.
pub struct ConnInbox {
    pub tx: LocalSender<Outbound>,
    pub deliveries: Cell<usize>,
    /// The account bound on it (a reload that removes the account unbinds it).
    pub account: Cell<Option<AccountId>>,
}

type Inbox = Rc<ConnInbox>;

/// A TLS context's server configuration, swapped by a reload (new handshakes take the new
/// certificate; sessions up keep theirs).
pub type TlsSlot = Arc<arc_swap::ArcSwap<rustls::ServerConfig>>;

/// A listener as a shard runs it.
#[derive(Clone)]
pub struct ListenerSpec {
    pub name: String,
    pub addr: SocketAddr,
    pub tls: Option<TlsSlot>,
    /// The HTTP API's listener (with its request limits), not an SMPP one.
    pub http: Option<crate::http::Limits>,
}

/// One shard's own state.
pub struct ShardState {
    pub id: ShardId,
    pub shared: Arc<Shared>,
    /// The spool directory (where this shard's segments are).
    pub spool: String,
    conns: RefCell<HashMap<u64, Inbox>>,
    receivers: RefCell<HashMap<AccountId, Vec<(u64, Inbox)>>>,
    round_robin: Cell<usize>,
    /// When messages held for ESMEs bound nowhere are next offered to the cluster (ms).
    cluster_retry: Cell<u64>,
    /// When the bridge last said a receiver was announced (ms).
    cluster_announced: Cell<u64>,
    /// Links whose lease another node holds (cluster only): their messages are handed there.
    leased_elsewhere: RefCell<hashbrown::HashSet<LinkId>>,
    mesh: Option<Senders<ShardMsg>>,
    /// Messages for a peer whose mesh queue was full, in order (see `send_to`).
    overflow: RefCell<Vec<std::collections::VecDeque<ShardMsg>>>,
    /// The client links, as this shard runs them (index = link id; reloads add to it).
    links: RefCell<Vec<Rc<LocalLink>>>,
    /// Link slots running on this shard (the stop waits for them).
    live_slots: Rc<Cell<usize>>,
    /// The configuration snapshot this shard runs (`Shared::live` as of its last tick): the
    /// data path reads it here, without an atomic per message.
    live: RefCell<Arc<state::Live>>,
    pub msgs: Messages,
    /// Answers held while the backlog is high (see `hold_answer`), with their LSNs.
    held: RefCell<Vec<(u64, messages::Waiter)>>,
    id_arena: RefCell<BytesMut>,
    next_conn: Cell<u64>,
    rng: Cell<u64>,
    pub sim: sim::SimState,
    pub router: RefCell<routing::Router>,
    /// Refusal log lines: the last one written, and how many were held back since.
    refusals: Cell<(Option<Instant>, u64)>,
    /// Messages that ended undelivered, logged the same way.
    undelivered: Cell<(Option<Instant>, u64)>,
    /// The TLS acceptor of each listener (by index; `None`: plain), for connections other
    /// shards hand over.
    listener_tls: RefCell<Vec<Option<TlsSlot>>>,
    /// CDR legs not yet handed to the control shard.
    cdrs: RefCell<Vec<crate::cdr::Cdr>>,
    /// Ends whose CDR the file does not hold durably yet, and the last end's number.
    cdr_marks: RefCell<std::collections::VecDeque<cdr::Mark>>,
    cdr_next: Cell<u64>,
    /// A lost end's LSN: segments from it on are kept until a restart.
    cdr_frozen: Cell<Option<u64>>,
    /// This shard's metric handles (when a recorder is installed).
    pub metrics: Option<crate::metrics::ShardMetrics>,
    /// Test hook (`SMPPGW_TEST_STALL`): block this shard's thread once, to show /health.
    stall: Cell<Option<(Instant, Duration)>>,
    /// Connections to HTTP targets.
    http_out: http_out::HttpOut,
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

impl ShardState {
    /// A message id as the ESME sees it, cut from an arena buffer (no allocation per message).
    pub fn id_text(&self, id: MessageId) -> COctet {
        let mut arena = self.id_arena.borrow_mut();
        if arena.capacity() < MESSAGE_ID_LEN {
            *arena = BytesMut::with_capacity(MESSAGE_ID_LEN * 3200);
        }
        arena.extend_from_slice(&id.to_hex());
        COctet::from_bytes_unchecked(arena.split_to(MESSAGE_ID_LEN).freeze())
    }

    /// Logs why a message was refused: at most one line a second per shard, saying how many
    /// were held back (a misrouted ESME must not flood the log).
    pub fn log_refusal(&self, why: impl FnOnce() -> String) {
        log_limited(&self.refusals, "refused", "refusals", why);
    }

    /// Logs why a message has no route (it is accepted and ends undeliverable), the same way.
    pub fn log_unrouted(&self, why: impl FnOnce() -> String) {
        log_limited(&self.refusals, "no route", "without a route", why);
    }

    /// Logs a message that ended undelivered, the same way.
    pub fn log_undelivered(&self, line: impl FnOnce() -> String) {
        log_limited(&self.undelivered, "undelivered", "undelivered", line);
    }

    /// A uniform draw in [0, 100) (xorshift; jitter and the simulator's error shares).
    pub fn percent(&self) -> f64 {
        let mut s = self.rng.get();
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.rng.set(s);
        (s >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }

    /// A concatenation reference for a long message this shard cuts into parts.
    pub fn concat_reference(&self) -> u16 {
        (self.percent() * 655.36) as u16
    }

    /// The configuration snapshot this shard runs.
    pub fn live(&self) -> std::cell::Ref<'_, Arc<state::Live>> {
        self.live.borrow()
    }

    /// Link `i` as this shard runs it.
    pub fn link(&self, i: LinkId) -> Option<Rc<LocalLink>> {
        self.links.borrow().get(i).cloned()
    }

    /// Starts this shard's bind slots of link `li` (slot i runs on shard i mod shards) under
    /// the link's generation now; none when it is disabled or removed.
    fn start_link_slots(self: &Rc<Self>, li: LinkId) {
        let Some(local) = self.link(li) else { return };
        let generation = local.shared.generation();
        local.generation.set(generation);
        *local.address.borrow_mut() = LocalLink::address_of(&local.shared);
        let cfg = local.shared.config();
        local.msgid.set(cfg.msgid);
        if !cfg.enabled || local.shared.is_removed() {
            return;
        }
        let shards = self.shared.shards;
        for slot in (0..cfg.binds).filter(|s| s % shards == self.id) {
            let types: &[crate::smpp::BindType] = match cfg.bind {
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
                let tx = Rc::new(tx);
                local.slots.borrow_mut().push(tx.clone());
                self.live_slots.set(self.live_slots.get() + 1);
                let (sink, local, live, id) = (
                    self.clone() as Rc<dyn LinkSink>,
                    local.clone(),
                    self.live_slots.clone(),
                    self.id,
                );
                let max_pdu = self.shared.config.general.max_pdu_size;
                spawn_local(async move {
                    upstream::run_slot(sink, local, id, slot, bt, tx, rx, max_pdu, generation)
                        .await;
                    live.set(live.get() - 1);
                })
                .detach();
            }
        }
    }

    /// A reload installed a new configuration: the flow takes the new policy and backup,
    /// sessions of removed accounts are unbound, changed links get new slots, new links
    /// start. Runs on the shard's tick when the version moved.
    fn apply_reload(self: &Rc<Self>) {
        if self.shared.live.load().version == self.live().version {
            return;
        }
        *self.live.borrow_mut() = self.shared.live.load_full();
        self.msgs
            .flow
            .borrow_mut()
            .set_policy(self.shared.policy(), self.shared.backup());
        // Accounts gone from regfile.conf: their sessions here unbind.
        let gone: Vec<Inbox> = self
            .conns
            .borrow()
            .values()
            .filter(|c| {
                c.account
                    .get()
                    .and_then(|a| self.shared.accounts.get(a))
                    .is_some_and(|a| a.is_removed())
            })
            .cloned()
            .collect();
        for c in gone {
            let _ = c.tx.try_send(Outbound::Stop);
        }
        // Links: new ones get a local side; changed or removed ones lose their slots (they
        // unbind; what was in flight goes back to the queue) and changed ones get new slots.
        for li in 0..self.shared.links.len() {
            let known = self.links.borrow().len() > li;
            if !known {
                let Some(shared) = self.shared.links.get(li) else {
                    break;
                };
                self.links
                    .borrow_mut()
                    .push(Rc::new(LocalLink::new(shared.clone())));
                self.start_link_slots(li);
                continue;
            }
            let Some(local) = self.link(li) else { continue };
            if local.generation.get() == local.shared.generation() {
                continue;
            }
            for s in local.slots.borrow_mut().drain(..) {
                let _ = s.try_send(LinkCmd::Stop);
            }
            self.start_link_slots(li);
        }
    }

    fn register(&self, conn: u64, tx: Inbox) {
        self.conns.borrow_mut().insert(conn, tx);
    }

    fn unregister(&self, conn: u64) {
        self.conns.borrow_mut().remove(&conn);
    }

    /// Whether the shard's backlog for its links is over its high-water mark (answers to new
    /// submits are then held; see `EsmeHandler::answer_after`).
    pub fn backlog_high(&self) -> bool {
        !self.held.borrow().is_empty() || self.msgs.flow.borrow().backlog() >= BACKLOG_HIGH
    }

    /// Holds an answer until the backlog is below its low-water mark (and `lsn` is durable).
    pub fn hold_answer(&self, lsn: u64, w: messages::Waiter) {
        self.held.borrow_mut().push((lsn, w));
    }

    /// Lets the held answers go once the backlog is below the low-water mark.
    pub fn release_intake(&self) {
        if self.held.borrow().is_empty() || self.msgs.flow.borrow().backlog() >= BACKLOG_LOW {
            return;
        }
        let held = std::mem::take(&mut *self.held.borrow_mut());
        for (lsn, w) in held {
            self.after(lsn, w);
        }
    }

    /// Sends an answer to connection `conn` (dropped if it is gone).
    pub fn respond(&self, conn: u64, seq: u32, status: CommandStatus, body: Body) {
        if let Some(tx) = self.conns.borrow().get(&conn) {
            let _ = tx.tx.try_send(Outbound::Respond { seq, status, body });
        }
    }

    /// A bound receiver or transceiver of `account` on this shard can take deliveries.
    pub fn add_receiver(&self, account: AccountId, conn: u64) {
        let Some(tx) = self.conns.borrow().get(&conn).cloned() else {
            return;
        };
        self.receivers
            .borrow_mut()
            .entry(account)
            .or_default()
            .push((conn, tx));
        if let Some(a) = self.shared.accounts.get(account) {
            a.receivers[self.id].fetch_add(1, Ordering::Relaxed);
        }
        self.cluster_receiver(account, true);
        self.msgs
            .flow
            .borrow_mut()
            .target_up(Target::Esme(account), now_ms());
        self.run_flow();
    }

    pub fn remove_receiver(&self, account: AccountId, conn: u64) {
        let mut map = self.receivers.borrow_mut();
        if let Some(list) = map.get_mut(&account) {
            let before = list.len();
            list.retain(|(c, _)| *c != conn);
            if list.len() < before {
                if let Some(a) = self.shared.accounts.get(account) {
                    a.receivers[self.id].fetch_sub(1, Ordering::Relaxed);
                }
                self.cluster_receiver(account, false);
            }
            if list.is_empty() {
                map.remove(&account);
            }
        }
    }

    /// Sends a delivery toward a receiver of its account: on this shard if one has room, else
    /// on a shard that has a receiver; reports the message unreachable when none is bound,
    /// or without room when none has any.
    pub fn deliver(&self, d: Delivery) {
        let d = match self.deliver_here(d) {
            Ok(()) => return,
            Err((d, _)) => d,
        };
        let peer = self
            .shared
            .accounts
            .get(d.account)
            .and_then(|a| a.shard_with_receiver(self.id));
        match (&self.mesh, peer) {
            (Some(_), Some(peer)) => self.send_to(peer, ShardMsg::Deliver(d)),
            _ => {
                let outcome = if self.receivers.borrow().contains_key(&d.account) {
                    Outcome::NoRoom
                } else {
                    Outcome::Unreachable
                };
                self.report(d.id, outcome);
            }
        }
    }

    /// A delivery for a receiver on this shard; given back with what stopped it.
    #[allow(clippy::result_large_err)] // the Err hands the delivery back
    fn deliver_here(&self, mut d: Delivery) -> Result<(), (Delivery, Outcome)> {
        // Sending on a connection's channel runs nothing of the connection's, so the
        // receivers can stay borrowed meanwhile (no list copied per delivery).
        let receivers = self.receivers.borrow();
        let Some(local) = receivers.get(&d.account).filter(|l| !l.is_empty()) else {
            return Err((d, Outcome::Unreachable));
        };
        let start = self.round_robin.get();
        self.round_robin.set(start.wrapping_add(1));
        for i in 0..local.len() {
            let inbox = &local[(start + i) % local.len()].1;
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
        Err((d, Outcome::NoRoom))
    }

    /// Sends a message to another shard, in order: when its mesh queue is full, the message
    /// waits in this shard's overflow queue for that peer, drained by one task, and so does
    /// every later message to that peer until the overflow is empty (an outcome and the
    /// receipt lookup that follows it never overtake each other). Never dropped.
    pub fn send_to(&self, peer: ShardId, msg: ShardMsg) {
        let Some(mesh) = &self.mesh else { return };
        let mut overflow = self.overflow.borrow_mut();
        let Some(q) = overflow.get_mut(peer) else {
            return;
        };
        if !q.is_empty() {
            q.push_back(msg);
            return;
        }
        match mesh.try_send_to(peer, msg) {
            Ok(()) => {}
            Err(e) => {
                if let Some(msg) = take_back(e) {
                    q.push_back(msg);
                    drop(overflow);
                    let shard = self.self_rc();
                    spawn_local(async move { shard.drain_overflow(peer).await }).detach();
                }
            }
        }
    }

    /// Sends what waits for `peer`, in order, waiting for room as needed.
    async fn drain_overflow(&self, peer: ShardId) {
        let Some(mesh) = &self.mesh else { return };
        loop {
            let next = self
                .overflow
                .borrow_mut()
                .get_mut(peer)
                .and_then(|q| q.pop_front());
            let Some(msg) = next else { return };
            if mesh.send_to(peer, msg).await.is_err() {
                return;
            }
        }
    }

    fn self_rc(&self) -> Rc<ShardState> {
        SHARD
            .with(|s| s.borrow().clone())
            .unwrap_or_else(|| unreachable!("shard state is set at start"))
    }

    fn on_mesh(&self, msg: ShardMsg) {
        match msg {
            ShardMsg::Deliver(d) => {
                if let Err((d, outcome)) = self.deliver_here(d) {
                    self.report(d.id, outcome);
                }
            }
            ShardMsg::Submit { link, sub } => self.submit(link, sub),
            ShardMsg::Outcome { id, outcome } => self.report(id, outcome),
            ShardMsg::ReceiptLookup {
                from,
                token,
                link,
                key,
                receipt,
                pdu,
            } => self.on_receipt_lookup(from, token, link, key, receipt, pdu),
            ShardMsg::ReceiptFound { token, found } => self.on_receipt_found(token, found),
            ShardMsg::Serve { stream, listener } => {
                let tls = self.listener_tls.borrow().get(listener).cloned().flatten();
                self.self_rc()
                    .serve_accepted(stream.bind_to_executor(), tls);
            }
        }
    }

    /// The shard a new connection should be served on: this one, unless another serves
    /// fewer connections (counted as served from now on).
    fn pick_server(&self) -> ShardId {
        let served = &self.shared.served;
        let mine = served[self.id].load(Ordering::Relaxed);
        let (best, least) = served
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.load(Ordering::Relaxed)))
            .min_by_key(|&(i, n)| (n, i != self.id))
            .unwrap_or((self.id, mine));
        let pick = if least < mine && self.mesh.is_some() {
            best
        } else {
            self.id
        };
        served[pick].fetch_add(1, Ordering::Relaxed);
        pick
    }

    /// Serves a connection on this shard until it closes.
    fn serve_accepted(self: Rc<Self>, stream: glommio::net::TcpStream, tls: Option<TlsSlot>) {
        let peer = stream.peer_addr().ok();
        let _ = stream.set_nodelay(true);
        spawn_local(async move {
            start::serve(self.clone(), stream, peer, tls).await;
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            self.shared.served[self.id].fetch_sub(1, Ordering::Relaxed);
        })
        .detach();
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

    /// Brings back the messages the spool held for this shard.
    fn restore(&self, mut spool: ShardSpool) {
        self.cdr_replayed(std::mem::take(&mut spool.ended));
        let now = now_ms();
        let n = spool.live.len();
        for live in spool.live {
            let m = &live.message;
            let target = self.shared.target_named(&m.target);
            if target.is_none() {
                warn!(
                    "message {} was for {}, which the configuration no longer has; it ends undeliverable",
                    m.id,
                    String::from_utf8_lossy(&m.target)
                );
            }
            let origin = self.shared.target_named(&m.origin).and_then(|t| match t {
                Target::Esme(a) => Some(a),
                Target::Link(_) | Target::Http(_) => None,
            });
            let zero = origin
                .and_then(|a| self.shared.accounts.get(a))
                .and_then(|a| a.coding())
                .unwrap_or(crate::text::Charset::Gsm7);
            let receipt_key =
                m.forwarded
                    .as_ref()
                    .and_then(|f| match self.shared.target_named(&f.link) {
                        Some(Target::Link(l)) => Some((
                            l,
                            IdKey::new(&f.upstream_id, self.shared.links[l].config().msgid.resp),
                        )),
                        _ => None,
                    });
            let mut msg = live.message.clone();
            if target.is_none() && msg.pdu.is_empty() {
                // It ends now, and its receipt quotes it: its body comes back first.
                match self.read_body_now(live.snapshot) {
                    Ok(pdu) => msg.pdu = pdu,
                    Err(e) => warn!("message {}: its body cannot be read back ({e})", msg.id),
                }
            }
            let inc = Incoming {
                msg,
                target,
                origin,
                zero,
            };
            self.msgs
                .flow
                .borrow_mut()
                .restore(&self.msgs.log, live, inc, receipt_key, now);
        }
        if n > 0 {
            info!(
                "shard {}: {n} messages from the spool resumed ({} wait for receipts)",
                self.id,
                self.msgs.flow.borrow().awaiting_receipts()
            );
        }
        self.run_flow();
    }

    /// Periodic work.
    fn tick(&self, now: Instant) {
        self.flow_tick(now);
        self.cluster_tick();
        self.sim.flush();
        self.flush_cdrs();
        self.advance_cdr_marks();
        for i in 0..self.links.borrow().len() {
            if let Some(l) = self.link(i) {
                l.strand_check(self, self.id, now);
            }
        }
        self.shared.heartbeats[self.id].store(
            now.duration_since(self.shared.epoch).as_millis() as u64,
            Ordering::Relaxed,
        );
        self.shared.pending[self.id].store(self.msgs.flow.borrow().len() as u64, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            let flow = self.msgs.flow.borrow();
            m.pending.set(flow.len() as f64);
            m.link_backlog.set(flow.backlog() as f64);
            m.awaiting_receipts.set(flow.awaiting_receipts() as f64);
        }
        if let Some((at, d)) = self.stall.get() {
            if now >= at {
                self.stall.set(None);
                warn!(
                    "shard {}: stalling {d:?} (SMPPGW_TEST_STALL test hook)",
                    self.id
                );
                std::thread::sleep(d);
            }
        }
    }
}

impl LinkSink for ShardState {
    fn outcome(&self, link: LinkId, id: MessageId, outcome: upstream::Outcome) {
        let outcome = match outcome {
            upstream::Outcome::Accepted(upstream_id) => {
                let radix = self
                    .link(link)
                    .map_or(crate::smpp::receipt::IdRadix::Hex, |l| l.msgid.get().resp);
                Outcome::Accepted {
                    key: IdKey::new(upstream_id.as_bytes(), radix),
                    upstream_id: upstream_id.bytes().clone(),
                }
            }
            upstream::Outcome::Failed(upstream::Failure::Temporary(s)) => Outcome::Temporary(s),
            upstream::Outcome::Failed(upstream::Failure::Permanent(s)) => Outcome::Permanent(s),
            upstream::Outcome::Failed(upstream::Failure::Timeout) => Outcome::Timeout,
            upstream::Outcome::Failed(upstream::Failure::LinkDown) => Outcome::Unreachable,
        };
        self.report(id, outcome);
    }

    fn inbound(&self, link: LinkId, pdu: Pdu, reply: InboundReply) {
        self.link_inbound(link, pdu, Reply::Slot(reply));
    }

    fn stopping(&self) -> bool {
        self.shared.is_stopping()
    }

    fn draw(&self) -> f64 {
        self.percent()
    }

    fn may_bind(&self, link: LinkId) -> bool {
        self.shared
            .cluster
            .as_ref()
            .is_none_or(|c| c.link_here(&self.shared.links[link].name))
    }
}
